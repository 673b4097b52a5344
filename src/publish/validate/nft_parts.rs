//! An `.nft` file cut into files that `nft -c -f` can check one small batch at a time.
//!
//! `nft -f` sends a whole file to the kernel as one netlink batch in one `sendmsg`. Root raises
//! the socket's send buffer to fit (`SO_SNDBUFFORCE`); an unprivileged user in a user namespace
//! cannot, so the batch must fit `net.core.wmem_max` (212,992 bytes by default): about 2,000
//! interval elements. Past that the kernel answers "Message too long" and a check made as the
//! unprivileged user the deploy files name would refuse every large list (`AzureCloud` holds
//! ~3,000 entries). The published file stays one transaction; only the check is cut: every
//! part holds the whole structure (table, sets, flushes, chain and rules) and a slice of the
//! elements, so every line of the file is checked by nft. What nft would see only across
//! slices — elements of one interval set that overlap — is checked here, whole.

use std::collections::BTreeMap;

use ipnet::IpNet;

/// Elements per checked part: about 100 KB of netlink messages (an IPv6 interval element takes
/// ~100 bytes), half of what the default `wmem_max` lets an unprivileged `nft` send.
pub const ELEMENTS_PER_PART: usize = 1000;

/// One piece of the file: a line kept in every part, or an `add element` block.
enum Piece<'a> {
    Line(&'a str),
    Elements {
        header: &'a str,
        elements: Vec<&'a str>,
    },
}

/// The files to check instead of `text`: `text` itself when it holds at most `per_part`
/// elements, else parts of at most `per_part` elements each. An error says why the whole file
/// cannot be loaded (overlapping elements) or that it is not tagwall's layout.
pub fn parts(text: &str, per_part: usize) -> Result<Vec<String>, String> {
    let pieces = pieces(text)?;
    no_overlaps(&pieces)?;
    let total: usize = pieces
        .iter()
        .map(|p| match p {
            Piece::Elements { elements, .. } => elements.len(),
            Piece::Line(_) => 0,
        })
        .sum();
    if total <= per_part {
        return Ok(vec![text.to_string()]);
    }
    let per_part = per_part.max(1);
    Ok((0..total.div_ceil(per_part))
        .map(|k| part(&pieces, k * per_part..(k + 1) * per_part))
        .collect())
}

/// The file's lines, with each `add element … {` block gathered.
fn pieces(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut open: Option<(&str, Vec<&str>)> = None;
    for (i, line) in text.lines().enumerate() {
        match open.as_mut() {
            None if line.starts_with("add element ") && line.ends_with(" {") => {
                open = Some((line, Vec::new()));
            }
            None => pieces.push(Piece::Line(line)),
            Some(_) if line == "}" => {
                let (header, elements) = open.take().expect("open block");
                pieces.push(Piece::Elements { header, elements });
            }
            Some((_, elements)) => {
                let element = line.trim().trim_end_matches(',');
                if element.is_empty() || element.contains([' ', ',', '{', '}']) {
                    return Err(format!(
                        "line {}: {:?} is not one element per line as tagwall writes them",
                        i + 1,
                        crate::core::text::quoted(line, 60)
                    ));
                }
                elements.push(element);
            }
        }
    }
    if open.is_some() {
        return Err("an `add element` block is not closed".into());
    }
    Ok(pieces)
}

/// Refuses elements of one set that overlap: nft refuses them in one batch ("conflicting
/// intervals specified"), and parts would not see two of them in different parts.
fn no_overlaps(pieces: &[Piece<'_>]) -> Result<(), String> {
    let mut sets: BTreeMap<&str, Vec<IpNet>> = BTreeMap::new();
    for piece in pieces {
        if let Piece::Elements { header, elements } = piece {
            let nets = sets.entry(header).or_default();
            for e in elements {
                nets.push(
                    e.parse().map_err(|_| {
                        format!("{} is not a CIDR", crate::core::text::quoted(e, 60))
                    })?,
                );
            }
        }
    }
    for (header, nets) in &mut sets {
        nets.sort_unstable();
        for pair in nets.windows(2) {
            if pair[0].contains(&pair[1].network()) {
                return Err(format!(
                    "{} and {} overlap in `{}`: an nft interval set refuses overlapping elements (aggregate = false keeps nested prefixes: set aggregate = true for the nft format)",
                    pair[0], pair[1], header.trim_end_matches(" {")
                ));
            }
        }
    }
    Ok(())
}

/// The file with only the elements whose index (over the whole file) is in `range`.
fn part(pieces: &[Piece<'_>], range: std::ops::Range<usize>) -> String {
    let mut out = String::new();
    let mut index = 0;
    for piece in pieces {
        match piece {
            Piece::Line(line) => {
                out.push_str(line);
                out.push('\n');
            }
            Piece::Elements { header, elements } => {
                let start = range.start.clamp(index, index + elements.len()) - index;
                let end = range.end.clamp(index, index + elements.len()) - index;
                index += elements.len();
                if start == end {
                    continue;
                }
                out.push_str(header);
                out.push('\n');
                let slice = &elements[start..end];
                for (i, e) in slice.iter().enumerate() {
                    let comma = if i + 1 == slice.len() { "" } else { "," };
                    out.push_str(&format!("\t{e}{comma}\n"));
                }
                out.push_str("}\n");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# a comment\ntable inet t {\n\tset s4 { type ipv4_addr; flags interval; }\n}\nflush set inet t s4\nadd element inet t s4 {\n\t10.0.0.0/24,\n\t10.0.2.0/24,\n\t10.0.4.0/24\n}\nadd element inet t s6 {\n\t2603::/48,\n\t2604::/48\n}\nadd rule inet t c ip daddr @s4 accept\n";

    #[test]
    fn a_small_file_is_checked_whole() {
        assert_eq!(parts(FILE, 5).unwrap(), vec![FILE.to_string()]);
    }

    #[test]
    fn a_large_file_is_cut_into_parts_holding_every_line_and_element_once() {
        let got = parts(FILE, 2).unwrap();
        assert_eq!(got.len(), 3);
        let structure = "# a comment\ntable inet t {\n\tset s4 { type ipv4_addr; flags interval; }\n}\nflush set inet t s4\n";
        let rule = "add rule inet t c ip daddr @s4 accept\n";
        assert_eq!(
            got[0],
            format!(
                "{structure}add element inet t s4 {{\n\t10.0.0.0/24,\n\t10.0.2.0/24\n}}\n{rule}"
            )
        );
        assert_eq!(
            got[1],
            format!("{structure}add element inet t s4 {{\n\t10.0.4.0/24\n}}\nadd element inet t s6 {{\n\t2603::/48\n}}\n{rule}")
        );
        assert_eq!(
            got[2],
            format!("{structure}add element inet t s6 {{\n\t2604::/48\n}}\n{rule}")
        );
    }

    #[test]
    fn overlapping_elements_are_refused_whole_as_nft_would() {
        let file = "add element inet t s {\n\t10.0.0.0/8,\n\t11.0.0.0/8,\n\t10.1.0.0/16\n}\n";
        let err = parts(file, 1).unwrap_err();
        assert!(err.contains("10.0.0.0/8 and 10.1.0.0/16 overlap"), "{err}");
        // The same prefixes in two sets do not overlap.
        let two =
            "add element inet t a {\n\t10.0.0.0/8\n}\nadd element inet t b {\n\t10.0.0.0/8\n}\n";
        assert_eq!(parts(two, 1).unwrap().len(), 2);
    }

    #[test]
    fn text_not_in_tagwall_layout_is_refused() {
        assert!(parts("add element inet t s {\n\t10.0.0.0/8, 11.0.0.0/8\n}\n", 1).is_err());
        assert!(parts("add element inet t s {\n\t10.0.0.0/8\n", 1).is_err());
        assert!(parts("add element inet t s {\n\tnot-a-cidr\n}\n", 1).is_err());
    }
}
