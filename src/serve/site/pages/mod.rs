//! The review site's pages, each from memory: the published lists' index and the [`Model`].
//!
//! - `home` — `/`: every ruleset, its status and last change.
//! - `ruleset` — `/rulesets/<name>/`: one ruleset, its files and history.
//! - `pending` — `/pending/<name>`: a withheld change, and the forms that decide it.
//! - `reports` — `/reports/`, `/reports/<cloud>/`, `/reports/<cloud>/<date>`.
//! - `lookup` — `/lookup?q=`: which tags and rulesets hold an address.
//! - `login` — `/login`.

pub mod home;
pub mod login;
pub mod lookup;
pub mod pending;
pub mod reports;
pub mod ruleset;

use std::fmt::Write as _;

use super::html::{esc, Who};
use super::model::Model;
use crate::core::ranges::Family;
use crate::job::approve::Desk;
use crate::rules::summary::Changes;
use crate::serve::auth::Access;
use crate::serve::content::Index;

/// What every page reads.
pub struct View<'a> {
    /// Who is looking, for the navigation bar.
    pub who: Who<'a>,
    /// What they may read.
    pub access: Access<'a>,
    /// The published lists.
    pub index: &'a Index,
    /// Everything else.
    pub model: &'a Model,
    /// The settings' rulesets.
    pub desk: &'a Desk,
}

impl View<'_> {
    /// The rulesets this view may read, in the settings' order.
    pub fn rulesets(&self) -> impl Iterator<Item = &crate::rules::ruleset::Ruleset> {
        self.desk
            .rulesets
            .iter()
            .filter(|r| self.access.allows(&r.name))
    }
}

/// The change in addresses in words, one line per family, for the first screen:
/// "IPv4: newly allowed 256 addresses in 1 range, no longer allowed 0 addresses".
pub fn change_words(changes: &Changes) -> String {
    if !changes.values().any(|f| f.addresses_changed()) {
        return "<p>No change in addresses.</p>".into();
    }
    let mut b = String::from("<ul class=\"big\">");
    for (key, f) in changes.iter().filter(|(_, f)| f.addresses_changed()) {
        let family = Family::from_key(key);
        let _ = write!(
            b,
            "<li>{}: <span class=\"plus\">newly allowed {}</span>, <span class=\"minus\">no longer allowed {}</span>; {}</li>",
            family.label(),
            esc(&family.amount_text(&f.allowed_addresses)),
            esc(&family.amount_text(&f.disallowed_addresses)),
            esc(&f.entries_line())
        );
    }
    b.push_str("</ul>");
    b
}

/// The ranges newly allowed and no longer allowed, each with its tags.
pub fn range_tables(changes: &Changes) -> String {
    let mut b = String::new();
    for (key, f) in changes {
        let family = Family::from_key(key);
        for (what, class, ranges) in [
            ("newly allowed", "plus", &f.allowed),
            ("no longer allowed", "minus", &f.disallowed),
        ] {
            if ranges.is_empty() {
                continue;
            }
            let _ = write!(
                b,
                "<h3>{} {what}: {} ranges</h3><table><tr><th>range</th><th class=\"n\">addresses</th><th>tags</th></tr>",
                family.label(),
                ranges.len()
            );
            for r in ranges {
                let _ = write!(
                    b,
                    "<tr><td class=\"mono {class}\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                    esc(&r.cidr),
                    esc(&r.addresses),
                    esc(&r.tags.join(", "))
                );
            }
            b.push_str("</table>");
        }
    }
    b
}

/// A 404 page body.
pub fn not_found(what: &str) -> String {
    format!(
        "<h1>Not found</h1><p>{}</p><p><a href=\"/\">All rulesets</a></p>",
        esc(what)
    )
}
