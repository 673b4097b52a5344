//! The review site's page frame: one stylesheet inline (no external assets), a navigation bar
//! that says who is logged in, and the helpers every page builds with. Every text from data
//! goes through [`esc`]; every page is readable at 400 px (tables scroll inside themselves,
//! long names wrap) and printable (navigation and forms left out).

use std::fmt::Write as _;

pub use crate::render::report::html::escape as esc;

/// The stylesheet of every page.
pub const STYLE: &str = "*{box-sizing:border-box}\
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1f2328;background:#fff}\
main{max-width:1400px;margin:0 auto;padding:.5em 1.2em 2em}\
nav{background:#24292f;color:#fff;padding:.5em 1.2em;display:flex;flex-wrap:wrap;gap:.4em 1.2em;align-items:center}\
nav a{color:#fff;text-decoration:none;font-weight:600}nav .who{margin-left:auto;color:#d0d7de}\
nav form{display:inline}nav button{font:inherit;background:none;border:1px solid #8c959f;color:#fff;border-radius:4px;padding:0 .5em;cursor:pointer}\
h1{font-size:1.45em;margin:.6em 0 .3em}h2{font-size:1.15em;margin-top:1.5em}\
a{color:#0969da}code,pre,.mono{font:13px ui-monospace,SFMono-Regular,monospace}\
.wrap,code,.mono,p,li,h1,h2,h3{overflow-wrap:anywhere}td,th{overflow-wrap:break-word}\
table{border-collapse:collapse;display:block;overflow-x:auto;max-width:100%;margin:.4em 0}\
td,th{padding:.3em .7em;border-bottom:1px solid #d8dee4;text-align:left;vertical-align:top}\
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,26em),1fr));gap:1em}\
.card{border:1px solid #d0d7de;border-radius:6px;padding:.7em 1em}\
.card h2{margin:.1em 0 .4em;font-size:1.1em}\
.badge{display:inline-block;border-radius:1em;padding:0 .6em;font-size:.85em;font-weight:600;border:1px solid}\
.ok{color:#1a7f37;border-color:#1a7f37}.warn{color:#9a6700;border-color:#9a6700}.bad{color:#cf222e;border-color:#cf222e}.muted{color:#57606a}\
.banner{border-left:4px solid #bf8700;background:#fff8c5;padding:.6em 1em;margin:.8em 0}\
.banner.bad{border-color:#cf222e;background:#ffebe9;color:#1f2328}.banner.ok{border-color:#1a7f37;background:#dafbe1;color:#1f2328}\
.big{font-size:1.2em;font-weight:600}.plus{color:#1a7f37}.minus{color:#cf222e}\
form.decide{border:1px solid #d0d7de;border-radius:6px;padding:.7em 1em;margin:.6em 0}\
textarea,input[type=password],input[type=text],input[type=search]{font:inherit;width:100%;max-width:40em;padding:.3em}\
button.primary{font:inherit;padding:.3em 1em;margin:.4em .4em 0 0;cursor:pointer}\
@media (max-width:600px){main{padding:.4em .7em 1.5em}td,th{min-width:7em}td.n,th.n,td.plus,td.minus{min-width:0}}\
@media print{nav,form,.noprint{display:none}main{max-width:none;padding:0}table{display:table}}";

/// Who is looking: shown in the navigation bar.
pub struct Who<'a> {
    /// The token's name, when logged in with one.
    pub name: Option<&'a str>,
    /// Whether it may approve.
    pub approves: bool,
    /// The session's CSRF token, for the logout form (`None`: not logged in by a session).
    pub csrf: Option<&'a str>,
}

/// The whole page: `title`, the navigation for `who`, then `body` (already HTML).
pub fn page(title: &str, who: &Who<'_>, body: &str) -> String {
    let mut b = String::with_capacity(body.len() + 4096);
    let _ = write!(
        b,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} · tagwall</title><style>{STYLE}</style></head>\n<body>\n<nav>\
         <a href=\"/\">tagwall</a><a href=\"/\">Rulesets</a><a href=\"/reports/\">Reports</a>\
         <a href=\"/lookup\">Lookup</a>",
        esc(title)
    );
    match (who.name, who.csrf) {
        (Some(name), Some(csrf)) => {
            let _ = write!(
                b,
                "<span class=\"who\">{} ({})</span><form method=\"post\" action=\"/logout\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Log out</button></form>",
                esc(name),
                if who.approves { "approve" } else { "read" },
                esc(csrf)
            );
        }
        (Some(name), None) => {
            let _ = write!(b, "<span class=\"who\">{}</span>", esc(name));
        }
        (None, _) => b.push_str("<span class=\"who\"><a href=\"/login\">Log in</a></span>"),
    }
    let _ = write!(
        b,
        "</nav>\n<main>\n{body}\n<footer class=\"muted\"><p>tagwall {}</p></footer></main>\n</body></html>\n",
        env!("CARGO_PKG_VERSION")
    );
    b
}

/// A status badge: `class` is `ok`, `warn` or `bad`.
pub fn badge(class: &str, text: &str) -> String {
    format!("<span class=\"badge {class}\">{}</span>", esc(text))
}

/// An RFC 3339 time as people read it: `2025-08-06 10:00 UTC` (the text itself when it does not
/// parse).
pub fn when(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M UTC")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_string())
}

/// A system time as [`when`] writes it.
pub fn when_time(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%d %H:%M UTC")
        .to_string()
}
