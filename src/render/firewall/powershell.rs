//! `<name>.ps1`: the ruleset as a Windows Defender Firewall script (the Entra private network
//! connector runs on Windows Server). Its rules live in one group, `tagwall-<name>`: the script
//! creates the rules of this list first — named `tagwall-<name>-<8 hex digits of the entries'
//! digest>-<n>`, at most [`CHUNK`] remote addresses each — then removes every other rule of the
//! group, so there is never a moment without rules and running it twice changes nothing. It
//! honours `-WhatIf` and `-Confirm`.

use std::io::{self, Write};

use crate::rules::allowlist::Allowlist;
use crate::rules::format::Format;
use crate::rules::ruleset::{Direction, Protocol, Ruleset};

use crate::render::firewall::comment::header;

/// The most remote addresses tagwall puts in one rule ([`Format::object_limit`]).
pub const CHUNK: usize = Format::PowerShell.object_limit_of();

/// The rule group.
pub fn group(r: &Ruleset) -> String {
    format!("tagwall-{}", r.name)
}

/// The `New-NetFirewallRule` arguments for the ruleset's traffic.
fn traffic(r: &Ruleset) -> String {
    let (direction, port) = match r.direction {
        Direction::Egress => ("Outbound", "-RemotePort"),
        Direction::Ingress => ("Inbound", "-LocalPort"),
    };
    let protocol = match r.protocol {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
        Protocol::Any => "Any",
    };
    let mut args = format!("-Direction {direction} -Action Allow -Protocol {protocol}");
    if !r.ports.is_empty() {
        let ports: Vec<String> = r.ports.iter().map(|p| format!("'{p}'")).collect();
        args.push_str(&format!(" {port} {}", ports.join(",")));
    }
    args
}

/// The script's lines after the address lists: the same for every list of the ruleset.
pub fn body(r: &Ruleset) -> Vec<String> {
    let traffic = traffic(r);
    [
        "$i = 0".to_string(),
        "foreach ($chunk in $Chunks) {".into(),
        "    $i++".into(),
        "    $name = \"$Group-$Stamp-$i\"".into(),
        "    if (-not (Get-NetFirewallRule -Name $name -ErrorAction SilentlyContinue)) {".into(),
        "        if ($PSCmdlet.ShouldProcess($name, 'New-NetFirewallRule')) {".into(),
        format!("            New-NetFirewallRule -Name $name -DisplayName $name -Group $Group {traffic} -RemoteAddress $chunk -Profile Any | Out-Null"),
        "        }".into(),
        "    }".into(),
        "}".into(),
        "Get-NetFirewallRule -Group $Group -ErrorAction SilentlyContinue |".into(),
        "    Where-Object { -not $_.Name.StartsWith(\"$Group-$Stamp-\") } |".into(),
        "    ForEach-Object {".into(),
        "        if ($PSCmdlet.ShouldProcess($_.Name, 'Remove-NetFirewallRule')) {".into(),
        "            Remove-NetFirewallRule -Name $_.Name".into(),
        "        }".into(),
        "    }".into(),
    ]
    .to_vec()
}

/// The script's lines before the address lists (`$Stamp` apart).
pub fn preamble(r: &Ruleset) -> Vec<String> {
    vec![
        "[CmdletBinding(SupportsShouldProcess = $true)]".into(),
        "param()".into(),
        "$ErrorActionPreference = 'Stop'".into(),
        format!("$Group = '{}'", group(r)),
        "$Chunks = [System.Collections.Generic.List[string[]]]::new()".into(),
    ]
}

/// Writes the PowerShell script.
pub fn write(out: &mut impl Write, a: &Allowlist) -> io::Result<()> {
    let r = a.ruleset;
    header(out, a, "#")?;
    super::note(
        out,
        "#",
        "Run as Administrator on the Windows host (PowerShell 5.1 or 7):",
    )?;
    super::note(
        out,
        "#",
        &format!(
            "  powershell -ExecutionPolicy Bypass -File .\\{}.ps1 [-WhatIf]",
            r.name
        ),
    )?;
    super::note(
        out,
        "#",
        &format!(
            "Rules of group {} with at most {CHUNK} remote addresses each; the new ones are added before the old ones go.",
            group(r)
        ),
    )?;
    writeln!(out)?;
    for line in preamble(r) {
        writeln!(out, "{line}")?;
    }
    writeln!(out, "$Stamp = '{}'", super::entries_stamp(a))?;
    let all: Vec<String> = a
        .sets
        .iter()
        .flat_map(|s| s.entries.iter().map(|e| e.net.to_string()))
        .collect();
    for chunk in all.chunks(CHUNK) {
        writeln!(out, "$Chunks.Add([string[]]@(")?;
        let last = chunk.len() - 1;
        for (i, net) in chunk.iter().enumerate() {
            writeln!(out, "    '{net}'{}", if i == last { "" } else { "," })?;
        }
        writeln!(out, "))")?;
    }
    for line in body(r) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}
