//! Outside text (tag names, regions, file names, settings) made safe to show: quoted and cut for
//! error messages, control characters escaped for terminals, markup escaped for Markdown. Pure.
//!
//! Strings from Microsoft's file are already free of control characters (`parse` refuses them),
//! but settings, file names and pages are not, and every display path goes through here anyway.

use std::fmt::Write as _;

/// `text` as a Rust-style quoted string (control characters escaped), cut after `max` characters
/// with the full length noted, so a 30,000-byte name does not fill a screen.
pub fn quoted(text: &str, max: usize) -> String {
    let shown: String = text.chars().take(max).collect();
    if shown.len() == text.len() {
        format!("{shown:?}")
    } else {
        format!("{shown:?}… ({} bytes in all)", text.len())
    }
}

/// The longest name [`is_plain_name`] accepts.
pub const MAX_PLAIN_NAME: usize = 80;

/// Whether a name (a tag's, a region's) may be written into a comment of a file a firewall tool
/// reads: 1 to 80 bytes of `[A-Za-z0-9._-]`. Every real tag name is.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_PLAIN_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The plain names of `names`, joined with ", " and cut after `most`, then how many were cut and
/// how many are not shown because they are not plain: "A, B and 3 more (2 names not shown)".
pub fn name_list<'a>(names: impl IntoIterator<Item = &'a str>, most: usize) -> String {
    let (plain, hidden): (Vec<&str>, Vec<&str>) = names.into_iter().partition(|n| is_plain_name(n));
    let mut out = plain[..plain.len().min(most)].join(", ");
    if plain.len() > most {
        let _ = write!(out, " and {} more", plain.len() - most);
    }
    if !hidden.is_empty() {
        let sep = if out.is_empty() { "" } else { " " };
        let _ = write!(
            out,
            "{sep}({} name{} not shown: not [A-Za-z0-9._-] or over {MAX_PLAIN_NAME} bytes)",
            hidden.len(),
            if hidden.len() == 1 { "" } else { "s" }
        );
    }
    out
}

/// Whether a character would act on a terminal, break a line or hide in a name: C0 and C1
/// controls, DEL, the Unicode line, paragraph and bidirectional control characters, and the
/// invisible ones ([`is_invisible`]).
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
        || is_invisible(c)
}

/// Characters that show as nothing (or as a blank) and make names that look alike: zero-width
/// spaces and joiners, the byte-order mark, the soft hyphen, the Arabic letter mark,
/// interlinear annotation marks, the Hangul and Mongolian fillers, the combining grapheme
/// joiner, the Khmer inherent vowels, and the Unicode tag characters.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{034f}'
            | '\u{061c}'
            | '\u{115f}'
            | '\u{1160}'
            | '\u{17b4}'
            | '\u{17b5}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200d}'
            | '\u{2060}'..='\u{2064}'
            | '\u{3164}'
            | '\u{feff}'
            | '\u{ffa0}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{e0000}'..='\u{e007f}'
    )
}

/// `text` for a terminal: every unsafe character written as `\u{XX}`, the rest unchanged.
pub fn terminal(text: &str) -> String {
    if !text.chars().any(is_unsafe_char) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe_char(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` for Markdown: unsafe characters escaped as for a terminal, then every character that
/// Markdown or HTML inside Markdown could read as markup backslash-escaped (`<` and `>` as
/// entities, since a backslash does not stop raw HTML everywhere).
pub fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in terminal(text).chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_characters_are_unsafe() {
        for c in [
            '\u{200b}',
            '\u{feff}',
            '\u{00ad}',
            '\u{061c}',
            '\u{fff9}',
            '\u{3164}',
            '\u{e0041}',
        ] {
            assert!(is_unsafe_char(c), "U+{:04X}", c as u32);
        }
        for c in ['a', 'é', '中', '-', ' '] {
            assert!(!is_unsafe_char(c), "{c}");
        }
    }

    #[test]
    fn quoted_cuts_long_text() {
        assert_eq!(quoted("abc", 10), "\"abc\"");
        assert_eq!(quoted("a\u{1b}[2J", 10), "\"a\\u{1b}[2J\"");
        assert_eq!(quoted(&"x".repeat(100), 3), "\"xxx\"… (100 bytes in all)");
    }

    #[test]
    fn plain_names() {
        assert!(is_plain_name("AzureCloud.westeurope"));
        assert!(is_plain_name("Sql.West_US-2"));
        assert!(!is_plain_name(""));
        assert!(!is_plain_name("a b"));
        assert!(!is_plain_name("<script>"));
        assert!(!is_plain_name(&"A".repeat(81)));
        assert!(is_plain_name(&"A".repeat(80)));
        assert_eq!(name_list(["A", "B", "C"], 2), "A, B and 1 more");
        assert_eq!(
            name_list(["A", "x y", "flush\nz"], 5),
            "A (2 names not shown: not [A-Za-z0-9._-] or over 80 bytes)"
        );
        assert_eq!(
            name_list(["x y"], 5),
            "(1 name not shown: not [A-Za-z0-9._-] or over 80 bytes)"
        );
    }

    #[test]
    fn terminal_escapes_controls_only() {
        assert_eq!(terminal("West Europe"), "West Europe");
        assert_eq!(terminal("a\u{1b}[31mred"), "a\\u{1b}[31mred");
        assert_eq!(terminal("x\ny\u{202e}"), "x\\u{a}y\\u{202e}");
        assert_eq!(terminal("Zürich"), "Zürich");
    }

    #[test]
    fn markdown_escapes_markup() {
        assert_eq!(markdown("AzureCloud.westeurope"), "AzureCloud.westeurope");
        assert_eq!(markdown("<script>|a_b*"), "&lt;script&gt;\\|a\\_b\\*");
        assert_eq!(markdown("[x](javascript:1)"), "\\[x\\](javascript:1)");
    }
}
