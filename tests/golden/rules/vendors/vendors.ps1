# tagwall 0.1.0 ruleset vendors: Public ServiceTags of 2025-01-13 (id:2, changeNumber 11)
# content sha256 a2f9348eb2ae7c0f9e1e583b69c34c5728b662e2aa7d876214a50215eea14c5c
# tags: AzureCloud
# IPv4: 2 entries, 196608 addresses
# IPv6: 1 entries, 16777216 /64s
# warning: AzureCloud is multi-tenant: these addresses are shared by all Azure customers, so allowing them is not a
#   security boundary; prefer FQDN rules or narrower tags where the firewall can
# Generated file: edit tagwall.toml, not this file.
# Run as Administrator on the Windows host (PowerShell 5.1 or 7):
#   powershell -ExecutionPolicy Bypass -File .\vendors.ps1 [-WhatIf]
# Rules of group tagwall-vendors with at most 1000 remote addresses each; the new ones are added before the old ones go.

[CmdletBinding(SupportsShouldProcess = $true)]
param()
$ErrorActionPreference = 'Stop'
$Group = 'tagwall-vendors'
$Chunks = [System.Collections.Generic.List[string[]]]::new()
$Stamp = 'aaf1f52c'
$Chunks.Add([string[]]@(
    '20.0.0.0/15',
    '20.2.0.0/16',
    '2603:1000::/40'
))
$i = 0
foreach ($chunk in $Chunks) {
    $i++
    $name = "$Group-$Stamp-$i"
    if (-not (Get-NetFirewallRule -Name $name -ErrorAction SilentlyContinue)) {
        if ($PSCmdlet.ShouldProcess($name, 'New-NetFirewallRule')) {
            New-NetFirewallRule -Name $name -DisplayName $name -Group $Group -Direction Outbound -Action Allow -Protocol TCP -RemotePort '443','80' -RemoteAddress $chunk -Profile Any | Out-Null
        }
    }
}
Get-NetFirewallRule -Group $Group -ErrorAction SilentlyContinue |
    Where-Object { -not $_.Name.StartsWith("$Group-$Stamp-") } |
    ForEach-Object {
        if ($PSCmdlet.ShouldProcess($_.Name, 'Remove-NetFirewallRule')) {
            Remove-NetFirewallRule -Name $_.Name
        }
    }
