# tagwall 0.1.0 ruleset vendors: Public ServiceTags of 2025-01-13 (id:2, changeNumber 11)
# content sha256 a2f9348eb2ae7c0f9e1e583b69c34c5728b662e2aa7d876214a50215eea14c5c
# tags: AzureCloud
# IPv4: 2 entries, 196608 addresses
# IPv6: 1 entries, 16777216 /64s
# warning: AzureCloud is multi-tenant: these addresses are shared by all Azure customers, so allowing them is not a
#   security boundary; prefer FQDN rules or narrower tags where the firewall can
# Generated file: edit tagwall.toml, not this file.
# Use: put in a Terraform module with the azurerm provider; set the two variables. Each
# IP Group holds at most 5000 CIDRs; reference them all (output tw_vendors_ip_group_ids).
# Azure IP Groups hold IPv4 only: the 1 IPv6 entries of this ruleset are not here.

variable "tw_vendors_resource_group_name" {
  type        = string
  description = "The resource group of the IP Groups of tagwall ruleset vendors"
}

variable "tw_vendors_location" {
  type        = string
  description = "The Azure region of the IP Groups of tagwall ruleset vendors"
}

resource "azurerm_ip_group" "tw_vendors_v4_1" {
  name                = "tw-vendors-v4-1"
  resource_group_name = var.tw_vendors_resource_group_name
  location            = var.tw_vendors_location
  cidrs = [
    "20.0.0.0/15",
    "20.2.0.0/16",
  ]
}

output "tw_vendors_ip_group_ids" {
  value = [
    azurerm_ip_group.tw_vendors_v4_1.id,
  ]
}
