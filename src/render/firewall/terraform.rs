//! `<name>.azure.tf` and `<name>.aws.tf`: the ruleset as Terraform resources for cloud
//! firewalls, split to each service's hard limit, one family per resource.
//!
//! - Azure: `azurerm_ip_group` of at most [`AZURE_IP_GROUP`] CIDRs each (IPv4 only: IP Groups
//!   hold no IPv6), named `tw-<name>-v4-<n>`, with variables for the resource group and location.
//! - AWS: `aws_ec2_managed_prefix_list` of at most [`AWS_PREFIX_LIST`] entries each, per
//!   family (`address_family` IPv4 or IPv6), `max_entries` the entries it holds.

use std::io::{self, Write};

use ipnet::IpNet;

use crate::core::ranges::Family;
use crate::rules::allowlist::Allowlist;
use crate::rules::format::Format;
use crate::rules::ruleset::{family_suffix, Ruleset};

use super::nets;
use crate::render::firewall::comment::header;

/// The most CIDRs an Azure IP Group holds ([`Format::object_limit`]).
pub const AZURE_IP_GROUP: usize = Format::TerraformAzure.object_limit_of();
/// The most entries an AWS managed prefix list holds ([`Format::object_limit`]).
pub const AWS_PREFIX_LIST: usize = Format::TerraformAws.object_limit_of();

/// The ruleset's name as an HCL identifier part (`-` becomes `_`): two rulesets with the same
/// one would write the same variable and output names (`config check` refuses them).
pub fn ident(r: &Ruleset) -> String {
    r.name.replace('-', "_")
}

/// The resource of part `n` (1-based) of a family: (HCL label, cloud name).
pub fn part(r: &Ruleset, family: Family, n: usize) -> (String, String) {
    let f = family_suffix(family);
    (
        format!("tw_{}_{f}_{n}", ident(r)),
        format!("tw-{}-{f}-{n}", r.name),
    )
}

fn cidr_list(out: &mut impl Write, nets: &[IpNet]) -> io::Result<()> {
    writeln!(out, "  cidrs = [")?;
    for n in nets {
        writeln!(out, "    \"{n}\",")?;
    }
    writeln!(out, "  ]")
}

/// Writes `<name>.azure.tf`.
pub fn write_azure(out: &mut impl Write, a: &Allowlist) -> io::Result<()> {
    let r = a.ruleset;
    let id = ident(r);
    let v4 = nets(a, Family::V4);
    header(out, a, "#")?;
    super::note(
        out,
        "#",
        "Use: put in a Terraform module with the azurerm provider; set the two variables. Each",
    )?;
    super::note(out, "#", &format!("IP Group holds at most {AZURE_IP_GROUP} CIDRs; reference them all (output tw_{id}_ip_group_ids)."))?;
    if r.has(Family::V6) {
        super::note(
            out,
            "#",
            &format!(
                "Azure IP Groups hold IPv4 only: the {} IPv6 entries of this ruleset are not here.",
                nets(a, Family::V6).len()
            ),
        )?;
    }
    writeln!(out)?;
    for (var, what) in [
        ("resource_group_name", "The resource group of the IP Groups"),
        ("location", "The Azure region of the IP Groups"),
    ] {
        writeln!(out, "variable \"tw_{id}_{var}\" {{")?;
        writeln!(out, "  type        = string")?;
        writeln!(
            out,
            "  description = \"{what} of tagwall ruleset {}\"",
            r.name
        )?;
        writeln!(out, "}}")?;
        writeln!(out)?;
    }
    let mut labels = Vec::new();
    for (i, chunk) in v4.chunks(AZURE_IP_GROUP).enumerate() {
        let (label, name) = part(r, Family::V4, i + 1);
        writeln!(out, "resource \"azurerm_ip_group\" \"{label}\" {{")?;
        writeln!(out, "  name                = \"{name}\"")?;
        writeln!(
            out,
            "  resource_group_name = var.tw_{id}_resource_group_name"
        )?;
        writeln!(out, "  location            = var.tw_{id}_location")?;
        cidr_list(out, chunk)?;
        writeln!(out, "}}")?;
        writeln!(out)?;
        labels.push(format!("azurerm_ip_group.{label}.id"));
    }
    writeln!(out, "output \"tw_{id}_ip_group_ids\" {{")?;
    // One label a line: thousands of groups never make a line over the 4 KiB limit.
    writeln!(out, "  value = [")?;
    for label in &labels {
        writeln!(out, "    {label},")?;
    }
    writeln!(out, "  ]")?;
    writeln!(out, "}}")
}

/// Writes `<name>.aws.tf`.
pub fn write_aws(out: &mut impl Write, a: &Allowlist) -> io::Result<()> {
    let r = a.ruleset;
    let id = ident(r);
    header(out, a, "#")?;
    super::note(out, "#", "Use: put in a Terraform module with the aws provider. Each prefix list holds one family and")?;
    super::note(out, "#", &format!("at most {AWS_PREFIX_LIST} entries; a security group rule that references one counts its max_entries"))?;
    super::note(
        out,
        "#",
        "against the group's rule quota (output tw_{id}_prefix_list_ids).",
    )?;
    writeln!(out)?;
    let mut labels = Vec::new();
    for family in super::families(a) {
        let family_name = match family {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        };
        for (i, chunk) in nets(a, family).chunks(AWS_PREFIX_LIST).enumerate() {
            let (label, name) = part(r, family, i + 1);
            writeln!(
                out,
                "resource \"aws_ec2_managed_prefix_list\" \"{label}\" {{"
            )?;
            writeln!(out, "  name           = \"{name}\"")?;
            writeln!(out, "  address_family = \"{family_name}\"")?;
            writeln!(out, "  max_entries    = {}", chunk.len())?;
            for n in chunk {
                writeln!(out, "  entry {{")?;
                writeln!(out, "    cidr = \"{n}\"")?;
                writeln!(out, "  }}")?;
            }
            writeln!(out, "}}")?;
            writeln!(out)?;
            labels.push(format!("aws_ec2_managed_prefix_list.{label}.id"));
        }
    }
    writeln!(out, "output \"tw_{id}_prefix_list_ids\" {{")?;
    // One label a line: thousands of groups never make a line over the 4 KiB limit.
    writeln!(out, "  value = [")?;
    for label in &labels {
        writeln!(out, "    {label},")?;
    }
    writeln!(out, "  ]")?;
    writeln!(out, "}}")
}
