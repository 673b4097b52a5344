//! The fifteen ruleset formats, each described once: its name in the settings, the files it
//! writes for the ruleset's families, and for each file the grammar its loader reads (line limit,
//! comment marker, what a line may be). Every fact comes from an exhaustive `match`, so a new
//! format does not compile until it has files and grammars, and `render::firewall::loadable`
//! refuses a file that none of the ruleset's formats names.

use crate::core::ranges::Family;

/// Declares [`Format`] with [`Format::ALL`] and [`Format::name`] from one list, so every
/// variant is in `ALL` (the settings know a format by its name there) and has a name.
macro_rules! formats {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// An output format.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        pub enum Format {
            $($(#[$doc])* $variant,)*
        }

        impl Format {
            /// Every format, in the order files are written.
            pub const ALL: &'static [Format] = &[$(Format::$variant),*];

            /// The name used in the settings.
            pub fn name(self) -> &'static str {
                match self {
                    $(Format::$variant => $name,)*
                }
            }
        }
    };
}

formats! {
    /// `<name>.nft`.
    Nft = "nft",
    /// `<name>.ipset`.
    Ipset = "ipset",
    /// `<name>.iptables` and `<name>.ip6tables` (need `ipset`).
    Iptables = "iptables",
    /// `<name>.csv`.
    Csv = "csv",
    /// `<name>.ipv4.txt`, `<name>.ipv6.txt`, `<name>.txt`.
    Txt = "txt",
    /// `<name>.squid.conf`: `acl` lines for a Squid proxy.
    Squid = "squid",
    /// `<name>.junos.txt`: Junos `set policy-options prefix-list` commands.
    Junos = "junos",
    /// `<name>.rsc`: a MikroTik RouterOS script of address-list entries.
    RouterOs = "routeros",
    /// `<name>.asa.txt`: a Cisco ASA/FTD `object-group network`.
    CiscoAsa = "cisco-asa",
    /// `<name>.fortios.conf`: FortiOS addresses and address groups.
    FortiOs = "fortios",
    /// `<name>.checkpoint.json`: Check Point Generic Data Center JSON.
    Checkpoint = "checkpoint",
    /// `<name>.ps1`: Windows Defender Firewall rules.
    PowerShell = "powershell",
    /// `<name>.azure.tf`: Terraform `azurerm_ip_group` resources.
    TerraformAzure = "terraform-azure",
    /// `<name>.aws.tf`: Terraform `aws_ec2_managed_prefix_list` resources.
    TerraformAws = "terraform-aws",
    /// `<name>.json`.
    Json = "json",
}

/// What reads a file, and so what each of its lines may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grammar {
    /// `ipset restore`: `create`/`flush`/`add`/`swap`/`destroy` of the ruleset's own sets.
    Ipset,
    /// `iptables-restore`/`ip6tables-restore`: `*filter`, the ruleset's chain, `COMMIT`.
    Iptables,
    /// `nft -f`: nft syntax of tagwall's own characters.
    Nft,
    /// A firewall polling a URL: one CIDR a line.
    List,
    /// A spreadsheet: the header row, then one row of the eleven columns per entry.
    Csv,
    /// Squid's configuration parser: `acl` lines.
    Squid,
    /// Junos `load set`.
    Junos,
    /// RouterOS `/import`.
    RouterOs,
    /// The Cisco ASA CLI.
    Asa,
    /// The FortiOS CLI.
    FortiOs,
    /// PowerShell.
    PowerShell,
    /// Terraform (HCL).
    Terraform,
    /// A JSON reader: the whole file is one JSON document.
    Json,
}

impl Grammar {
    /// The longest line the loader reads whole (`None`: the reader has no line buffer).
    pub fn line_limit(self) -> Option<usize> {
        match self {
            Grammar::Ipset | Grammar::FortiOs => Some(1022),
            Grammar::Iptables => Some(10_238),
            Grammar::Nft | Grammar::Squid | Grammar::Terraform | Grammar::PowerShell => Some(4096),
            Grammar::List => Some(64),
            Grammar::Junos | Grammar::RouterOs => Some(1024),
            Grammar::Asa => Some(512),
            Grammar::Csv | Grammar::Json => None,
        }
    }

    /// What starts a comment line (`None`: the format has no comments).
    pub fn comment(self) -> Option<char> {
        match self {
            Grammar::Asa => Some('!'),
            Grammar::Csv | Grammar::Json => None,
            _ => Some('#'),
        }
    }
}

/// One file a format writes: what follows `<name>.` in its name, the family it holds (`None`:
/// every family), and its grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileKind {
    /// What follows `<name>.`.
    pub suffix: &'static str,
    /// The one family the file holds, if it holds one.
    pub family: Option<Family>,
    /// What its loader reads.
    pub grammar: Grammar,
}

/// A [`FileKind`] as a constant expression (so `&[…]` of them is `'static`): `kind!(suffix,
/// Grammar)` for a file of every family, `kind!(suffix, Family, Grammar)` for one family's.
macro_rules! kind {
    ($suffix:literal, $grammar:ident) => {
        FileKind {
            suffix: $suffix,
            family: None,
            grammar: Grammar::$grammar,
        }
    };
    ($suffix:literal, $family:ident, $grammar:ident) => {
        FileKind {
            suffix: $suffix,
            family: Some(Family::$family),
            grammar: Grammar::$grammar,
        }
    };
}

impl Format {
    /// The formats of a ruleset that names none: the Linux loaders, CSV, the lists and JSON.
    /// The vendor formats are written only when asked for.
    pub const DEFAULT: [Format; 6] = [
        Format::Nft,
        Format::Ipset,
        Format::Iptables,
        Format::Csv,
        Format::Txt,
        Format::Json,
    ];

    /// Every file this format can write, whatever the families (the `.txt` parts that
    /// `split_entries` adds are [`Format::part_family`]'s).
    fn kinds(self) -> &'static [FileKind] {
        match self {
            Format::Nft => &[kind!("nft", Nft)],
            Format::Ipset => &[kind!("ipset", Ipset)],
            Format::Iptables => &[
                kind!("iptables", V4, Iptables),
                kind!("ip6tables", V6, Iptables),
            ],
            Format::Csv => &[kind!("csv", Csv)],
            Format::Txt => &[
                kind!("ipv4.txt", V4, List),
                kind!("ipv6.txt", V6, List),
                kind!("txt", List),
            ],
            Format::Squid => &[kind!("squid.conf", Squid)],
            Format::Junos => &[kind!("junos.txt", Junos)],
            Format::RouterOs => &[kind!("rsc", RouterOs)],
            Format::CiscoAsa => &[kind!("asa.txt", Asa)],
            Format::FortiOs => &[kind!("fortios.conf", FortiOs)],
            Format::Checkpoint => &[kind!("checkpoint.json", Json)],
            Format::PowerShell => &[kind!("ps1", PowerShell)],
            Format::TerraformAzure => &[kind!("azure.tf", Terraform)],
            Format::TerraformAws => &[kind!("aws.tf", Terraform)],
            Format::Json => &[kind!("json", Json)],
        }
    }

    /// The files this format writes for `families`, in the order they are written.
    pub fn files(self, families: &[Family]) -> impl Iterator<Item = FileKind> + '_ {
        self.kinds()
            .iter()
            .filter(move |k| k.family.is_none_or(|f| families.contains(&f)))
            .copied()
    }

    /// What follows `<name>.` in the names of the files this format writes for `families`.
    pub fn suffixes(self, families: &[Family]) -> Vec<&'static str> {
        self.files(families).map(|k| k.suffix).collect()
    }

    /// The family of a `.txt` part, `<family>.part-<k>.txt` (k ≥ 1, no leading zero), that
    /// `split_entries` makes; `None` for any other suffix or format.
    pub fn part_family(self, suffix: &str) -> Option<Family> {
        if self != Format::Txt {
            return None;
        }
        let (family, rest) = suffix.split_once(".part-")?;
        let k = rest.strip_suffix(".txt")?;
        let number = !k.is_empty() && !k.starts_with('0') && k.bytes().all(|b| b.is_ascii_digit());
        let family = [Family::V4, Family::V6]
            .into_iter()
            .find(|f| f.key() == family)?;
        number.then_some(family)
    }

    /// The most entries one object of the format's target holds, where the writer cuts a list
    /// into several objects: FortiOS address groups (600 on small models of FortiOS 6 and 7,
    /// more on larger ones), Azure IP Groups (5,000 CIDRs), AWS managed prefix lists (1,000
    /// entries), Windows Firewall rules (1,000 remote addresses: Windows takes more, but such
    /// rules get slow to add and to evaluate). `None`: one object takes the whole list (nft and
    /// ipset sets grow; the others are lists, not objects).
    pub const fn object_limit(self) -> Option<usize> {
        match self {
            Format::FortiOs => Some(600),
            Format::TerraformAzure => Some(5000),
            Format::TerraformAws | Format::PowerShell => Some(1000),
            Format::Nft
            | Format::Ipset
            | Format::Iptables
            | Format::Csv
            | Format::Txt
            | Format::Squid
            | Format::Junos
            | Format::RouterOs
            | Format::CiscoAsa
            | Format::Checkpoint
            | Format::Json => None,
        }
    }

    /// [`Format::object_limit`] of a format that has one, for the writer's constants: a format
    /// without one fails to compile there.
    pub const fn object_limit_of(self) -> usize {
        match self.object_limit() {
            Some(n) => n,
            None => panic!("the format has no object limit"),
        }
    }
}

/// The grammar of `file` in a ruleset called `name` writing `formats` for `families`: `None`
/// when none of the formats writes a file of that name.
pub fn grammar_of(
    name: &str,
    formats: &[Format],
    families: &[Family],
    file: &str,
) -> Option<Grammar> {
    let suffix = file.strip_prefix(name)?.strip_prefix('.')?;
    formats.iter().find_map(|&format| {
        let named = format.files(families).find(|k| k.suffix == suffix);
        match (named, format.part_family(suffix)) {
            (Some(kind), _) => Some(kind.grammar),
            (None, Some(family)) if families.contains(&family) => Some(Grammar::List),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_names_its_files_once() {
        let both = [Family::V4, Family::V6];
        let mut seen = std::collections::BTreeSet::new();
        for f in Format::ALL {
            for k in f.files(&both) {
                assert!(seen.insert(k.suffix), "{} twice", k.suffix);
            }
        }
        assert_eq!(Format::Iptables.suffixes(&[Family::V6]), ["ip6tables"]);
        assert_eq!(Format::Txt.suffixes(&[Family::V4]), ["ipv4.txt", "txt"]);
    }

    #[test]
    fn grammars_are_found_by_the_formats_a_ruleset_writes() {
        let v4 = [Family::V4];
        let txt = [Format::Txt];
        assert_eq!(
            grammar_of("web", &txt, &v4, "web.ipv4.txt"),
            Some(Grammar::List)
        );
        assert_eq!(
            grammar_of("web", &txt, &v4, "web.ipv4.part-3.txt"),
            Some(Grammar::List)
        );
        assert_eq!(grammar_of("web", &txt, &v4, "web.ipv6.part-3.txt"), None);
        assert_eq!(grammar_of("web", &txt, &v4, "web.ipv4.part-03.txt"), None);
        assert_eq!(grammar_of("web", &txt, &v4, "web.ipv6.txt"), None);
        assert_eq!(grammar_of("web", &txt, &v4, "web.nft"), None);
        assert_eq!(grammar_of("web", &txt, &v4, "other.txt"), None);
        assert_eq!(
            grammar_of("web", &[Format::Csv], &v4, "web.csv"),
            Some(Grammar::Csv)
        );
        assert_eq!(
            grammar_of("web", &[Format::Checkpoint], &v4, "web.checkpoint.json"),
            Some(Grammar::Json)
        );
        assert_eq!(
            grammar_of("web", &[Format::Json], &v4, "web.checkpoint.json"),
            None
        );
    }
}
