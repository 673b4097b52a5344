# tagwall 0.1.0 ruleset vendors: Public ServiceTags of 2025-01-13 (id:2, changeNumber 11)
# content sha256 a2f9348eb2ae7c0f9e1e583b69c34c5728b662e2aa7d876214a50215eea14c5c
# tags: AzureCloud
# IPv4: 2 entries, 196608 addresses
# IPv6: 1 entries, 16777216 /64s
# warning: AzureCloud is multi-tenant: these addresses are shared by all Azure customers, so allowing them is not a
#   security boundary; prefer FQDN rules or narrower tags where the firewall can
# Generated file: edit tagwall.toml, not this file.
# Load: upload, then `/import file-name=vendors.rsc`.
# Use: a filter rule with dst-address-list={list}. Between the removal and the last add the
# list is incomplete: import in a quiet moment.

/ip firewall address-list remove [find where list="tw-vendors" comment="tagwall-vendors"]
/ip firewall address-list add list=tw-vendors address=20.0.0.0/15 comment=tagwall-vendors
/ip firewall address-list add list=tw-vendors address=20.2.0.0/16 comment=tagwall-vendors
/ipv6 firewall address-list remove [find where list="tw-vendors" comment="tagwall-vendors"]
/ipv6 firewall address-list add list=tw-vendors address=2603:1000::/40 comment=tagwall-vendors
