//! `/login`: a form that takes a token. Refused over plain HTTP on a non-loopback address
//! unless `[serve] allow_insecure_login = true`.

use super::super::html::esc;

/// The page body: the form, or why logging in is refused; `error` after a failed try.
pub fn body(refused: Option<&str>, error: Option<&str>, open: bool) -> String {
    if open {
        return "<h1>Log in</h1><p>This server has no tokens: everyone reads every page, and nobody can approve. Give tokens with role=approve in [serve] tokens_file to decide changes here.</p>".into();
    }
    if let Some(why) = refused {
        return format!("<h1>Log in</h1><p class=\"banner bad\">{}</p>", esc(why));
    }
    let error = error
        .map(|e| format!("<p class=\"banner bad\">{}</p>", esc(e)))
        .unwrap_or_default();
    format!(
        "<h1>Log in</h1>{error}<form method=\"post\" action=\"/login\">\
         <label for=\"token\">Token</label><br>\
         <input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"current-password\" required> \
         <button class=\"primary\" type=\"submit\" id=\"login\">Log in</button></form>\
         <p class=\"muted\">A token of role read shows the pages; one of role approve also decides pending changes.</p>"
    )
}
