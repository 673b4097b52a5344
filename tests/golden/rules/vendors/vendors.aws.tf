# tagwall 0.1.0 ruleset vendors: Public ServiceTags of 2025-01-13 (id:2, changeNumber 11)
# content sha256 a2f9348eb2ae7c0f9e1e583b69c34c5728b662e2aa7d876214a50215eea14c5c
# tags: AzureCloud
# IPv4: 2 entries, 196608 addresses
# IPv6: 1 entries, 16777216 /64s
# warning: AzureCloud is multi-tenant: these addresses are shared by all Azure customers, so allowing them is not a
#   security boundary; prefer FQDN rules or narrower tags where the firewall can
# Generated file: edit tagwall.toml, not this file.
# Use: put in a Terraform module with the aws provider. Each prefix list holds one family and
# at most 1000 entries; a security group rule that references one counts its max_entries
# against the group's rule quota (output tw_{id}_prefix_list_ids).

resource "aws_ec2_managed_prefix_list" "tw_vendors_v4_1" {
  name           = "tw-vendors-v4-1"
  address_family = "IPv4"
  max_entries    = 2
  entry {
    cidr = "20.0.0.0/15"
  }
  entry {
    cidr = "20.2.0.0/16"
  }
}

resource "aws_ec2_managed_prefix_list" "tw_vendors_v6_1" {
  name           = "tw-vendors-v6-1"
  address_family = "IPv6"
  max_entries    = 1
  entry {
    cidr = "2603:1000::/40"
  }
}

output "tw_vendors_prefix_list_ids" {
  value = [
    aws_ec2_managed_prefix_list.tw_vendors_v4_1.id,
    aws_ec2_managed_prefix_list.tw_vendors_v6_1.id,
  ]
}
