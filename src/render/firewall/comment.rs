//! Comment lines of the files firewall tools load as root. Whatever text reaches them (tag names,
//! warnings) comes out as printable ASCII only (anything else becomes `?`), wrapped so that no line
//! exceeds [`MAX_LINE`] bytes: a loader that reads lines into a fixed buffer (`ipset restore`:
//! 1,024 bytes; `iptables-restore`: 10,240) never sees the rest of a long line as a new command.

use std::io::{self, Write};

use super::family_line;
use crate::core::text;
use crate::rules::allowlist::Allowlist;

/// The longest comment line written, comment mark and spaces included.
pub const MAX_LINE: usize = 120;

/// Writes `text` as one or more comment lines starting with `mark` (continuations indented).
pub fn write(out: &mut (impl Write + ?Sized), mark: &str, text: &str) -> io::Result<()> {
    for line in lines(mark, text) {
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// The comment lines of `text`, without newlines.
pub fn lines(mark: &str, text: &str) -> Vec<String> {
    let clean: String = text
        .chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect();
    let first = format!("{mark} ");
    let next = format!("{mark}   ");
    let mut out = Vec::new();
    let mut line = first.clone();
    let mut empty = true;
    for word in clean.split(' ').filter(|w| !w.is_empty()) {
        let sep = usize::from(!empty);
        if !empty && line.len() + sep + word.len() > MAX_LINE {
            out.push(std::mem::replace(&mut line, next.clone()));
            empty = true;
        }
        let mut word = word;
        loop {
            let room = MAX_LINE.saturating_sub(line.len() + usize::from(!empty));
            if word.len() <= room {
                if !empty {
                    line.push(' ');
                }
                line.push_str(word);
                empty = false;
                break;
            }
            if empty || room > 0 {
                // A word longer than a line: cut it (it is ASCII, so any byte is a boundary).
                if !empty {
                    line.push(' ');
                }
                line.push_str(&word[..room]);
                word = &word[room..];
            }
            out.push(std::mem::replace(&mut line, next.clone()));
            empty = true;
        }
    }
    if !empty || out.is_empty() {
        out.push(line.trim_end().to_string());
    }
    out
}

/// The comment block that opens the firewall files: what made them, from which snapshot. Text
/// from outside (tag names, warnings) goes through [`write`]: printable ASCII, short lines.
pub fn header(out: &mut impl Write, a: &Allowlist, mark: &str) -> io::Result<()> {
    let s = &a.snapshot;
    let line = |out: &mut dyn Write, text: &str| write(out, mark, text);
    line(
        out,
        &format!(
            "tagwall {} ruleset {}: {} ServiceTags of {} (id:{}, changeNumber {})",
            env!("CARGO_PKG_VERSION"),
            a.ruleset.name,
            s.cloud,
            s.file_date,
            s.id,
            s.change_number
        ),
    )?;
    line(out, &format!("content sha256 {}", s.content_sha256))?;
    let names = a.tags.iter().map(|t| t.name.as_str());
    line(out, &format!("tags: {}", text::name_list(names, 12)))?;
    for set in &a.sets {
        line(out, &family_line(set))?;
    }
    for w in &a.warnings {
        line(out, &format!("warning: {w}"))?;
    }
    line(out, "Generated file: edit tagwall.toml, not this file.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_text_is_one_line() {
        assert_eq!(lines("#", "tags: AzureCloud"), ["# tags: AzureCloud"]);
        assert_eq!(lines("#", ""), ["#"]);
    }

    #[test]
    fn long_text_wraps_and_long_words_are_cut() {
        let text = format!("warning: {} flush victim", "A".repeat(300));
        let out = lines("#", &text);
        assert!(out
            .iter()
            .all(|l| l.len() <= MAX_LINE && l.starts_with('#')));
        let joined: String = out
            .iter()
            .map(|l| l.trim_start_matches('#').trim())
            .collect::<Vec<_>>()
            .join("");
        assert_eq!(joined.replace(' ', ""), text.replace(' ', ""));
    }

    #[test]
    fn control_characters_and_unicode_become_question_marks() {
        assert_eq!(
            lines("#", "a\nflush x\r\u{1b}[2J é\u{2028}"),
            ["# a?flush x??[2J ??"]
        );
    }

    proptest! {
        #[test]
        fn every_line_is_a_short_printable_comment(text in any::<String>(), mark in prop::sample::select(vec!["#", "//"])) {
            for line in lines(mark, &text) {
                prop_assert!(line.len() <= MAX_LINE, "{}", line.len());
                prop_assert!(line.starts_with(mark));
                prop_assert!(line.bytes().all(|b| (0x20..0x7f).contains(&b)));
            }
        }
    }
}
