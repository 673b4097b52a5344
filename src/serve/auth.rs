//! Who may read what: tokens from `TAGWALL_SERVE_TOKENS` (comma-separated, every ruleset, role
//! `read`) and `[serve] tokens_file` (lines `TOKEN [RULESET,RULESET…] [name=NAME]
//! [role=read|approve]`). A `read` token reads lists and pages; an `approve` token may also
//! approve or reject pending changes on the review site, recorded under its name. A request
//! presents one as
//! `Authorization: Bearer T`, or Basic with any user name and password T (PAN-OS and FortiGate
//! offer only Basic). Tokens are kept as SHA-256 digests and compared in constant time; they
//! never appear in `Debug`, logs or errors.

use std::collections::BTreeSet;
use std::path::Path;

use base64::Engine;

/// The shortest token accepted.
pub const MIN_TOKEN_LEN: usize = 16;
/// The longest token accepted.
pub const MAX_TOKEN_LEN: usize = 512;
/// The most tokens.
pub const MAX_TOKENS: usize = 10_000;

/// What a token may do besides reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Lists and pages (the default).
    Read,
    /// Also approve or reject pending changes of the rulesets it may read.
    Approve,
}

/// One token: its digest, the rulesets it may read when limited, its name and role.
#[derive(Clone)]
pub struct Token {
    digest: [u8; 32],
    rulesets: Option<BTreeSet<String>>,
    /// Who the store records when this token decides (`name=`, else where it was read).
    pub name: String,
    /// What it may do.
    pub role: Role,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({}, {:?})", self.name, self.role)
    }
}

impl Token {
    /// Whether it may read `ruleset`.
    pub fn allows(&self, ruleset: &str) -> bool {
        self.rulesets.as_ref().is_none_or(|s| s.contains(ruleset))
    }

    /// Whether it may read every ruleset.
    pub fn whole(&self) -> bool {
        self.rulesets.is_none()
    }
}

/// Every token; empty means the server is open.
#[derive(Clone, Default)]
pub struct Tokens {
    tokens: Vec<Token>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} tokens)", self.tokens.len())
    }
}

/// What a request may read.
#[derive(Debug, Clone, Copy)]
pub enum Access<'t> {
    /// No tokens are configured: everything, and nobody approves.
    Open,
    /// A valid token.
    Granted(&'t Token),
    /// No token, or a wrong one.
    Denied,
}

impl Access<'_> {
    /// Whether `ruleset` may be read.
    pub fn allows(&self, ruleset: &str) -> bool {
        match self {
            Access::Open => true,
            Access::Granted(t) => t.allows(ruleset),
            Access::Denied => false,
        }
    }

    /// Whether every ruleset may be read (the server's own figures too).
    pub fn whole(&self) -> bool {
        match self {
            Access::Open => true,
            Access::Granted(t) => t.whole(),
            Access::Denied => false,
        }
    }

    /// Whether it is refused.
    pub fn denied(&self) -> bool {
        matches!(self, Access::Denied)
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    let d = crate::core::digest::sha256(token);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Equal in time independent of where the digests differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// A token's text: printable ASCII without spaces or commas, [`MIN_TOKEN_LEN`] to
/// [`MAX_TOKEN_LEN`] bytes. The error never shows it.
fn check_token(token: &str, from: &str) -> Result<(), String> {
    let printable = token.bytes().all(|b| b.is_ascii_graphic() && b != b',');
    if !printable || token.len() < MIN_TOKEN_LEN || token.len() > MAX_TOKEN_LEN {
        return Err(format!(
            "{from}: a token must be {MIN_TOKEN_LEN} to {MAX_TOKEN_LEN} printable ASCII characters without spaces or commas (for example: openssl rand -hex 32)"
        ));
    }
    Ok(())
}

impl Tokens {
    /// No tokens: the server is open.
    pub fn none() -> Tokens {
        Tokens::default()
    }

    /// Whether no token is configured.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// The tokens of `env` (the variable's value) and `file`; `known` are the rulesets a
    /// limited token may name.
    pub fn load(env: Option<&str>, file: Option<&Path>, known: &[&str]) -> Result<Tokens, String> {
        let mut tokens = Vec::new();
        for t in env.unwrap_or("").split(',').map(str::trim) {
            if t.is_empty() {
                continue;
            }
            check_token(t, super::settings::TOKENS_ENV)?;
            tokens.push(Token {
                digest: digest(t.as_bytes()),
                rulesets: None,
                name: format!(
                    "token {} of {}",
                    tokens.len() + 1,
                    super::settings::TOKENS_ENV
                ),
                role: Role::Read,
            });
        }
        if let Some(path) = file {
            tokens.extend(read_file(path, known)?);
        }
        if tokens.len() > MAX_TOKENS {
            return Err(format!("at most {MAX_TOKENS} tokens"));
        }
        Ok(Tokens { tokens })
    }

    /// What the `Authorization` header's value grants.
    pub fn check(&self, authorization: Option<&[u8]>) -> Access<'_> {
        if self.tokens.is_empty() {
            return Access::Open;
        }
        match authorization.and_then(presented) {
            Some(token) => self.check_token(&token),
            None => Access::Denied,
        }
    }

    /// What a token's text grants (the login form's).
    pub fn check_token(&self, presented: &[u8]) -> Access<'_> {
        if self.tokens.is_empty() {
            return Access::Open;
        }
        let d = digest(presented);
        // Every token is compared: the time does not say which one matched.
        let mut found = None;
        for t in &self.tokens {
            if same(&t.digest, &d) && found.is_none() {
                found = Some(t);
            }
        }
        match found {
            Some(t) => Access::Granted(t),
            None => Access::Denied,
        }
    }

    /// The token at `index` (a session's), as granted.
    pub fn by_index(&self, index: usize) -> Access<'_> {
        self.tokens
            .get(index)
            .map_or(Access::Denied, Access::Granted)
    }

    /// The index of `token` (one of these).
    pub fn index_of(&self, token: &Token) -> Option<usize> {
        self.tokens.iter().position(|t| std::ptr::eq(t, token))
    }
}

/// The token in `Bearer T` or `Basic base64(user:T)`.
fn presented(value: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let (scheme, rest) = text.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.as_bytes().to_vec());
    }
    if scheme.eq_ignore_ascii_case("basic") && rest.len() <= 2048 {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let colon = decoded.iter().position(|&b| b == b':')?;
        return Some(decoded[colon + 1..].to_vec());
    }
    None
}

/// `tokens_file`: `TOKEN [RULESET,RULESET…] [name=NAME] [role=read|approve]` per line; `#`
/// comments and blank lines skipped.
fn read_file(path: &Path, known: &[&str]) -> Result<Vec<Token>, String> {
    let shown = crate::core::text::quoted(&path.display().to_string(), 200);
    let bytes = crate::localfs::read_bounded(path)
        .map_err(|e| format!("[serve] tokens_file = {shown}: {e}"))?;
    if let Some(mode) = crate::localfs::open_to_others(path) {
        tracing::warn!(
            "[serve] tokens_file = {shown} can be read by other users (mode {mode:o}): chmod 600 it"
        );
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("[serve] tokens_file = {shown}: not UTF-8 text"))?;
    let mut tokens = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = format!("[serve] tokens_file = {shown}, line {}", i + 1);
        let mut words = line.split_whitespace();
        let token = words.next().unwrap_or_default();
        check_token(token, &at)?;
        let mut t = Token {
            digest: digest(token.as_bytes()),
            rulesets: None,
            name: format!("tokens_file line {}", i + 1),
            role: Role::Read,
        };
        let (mut named, mut roled) = (false, false);
        for (k, word) in words.enumerate() {
            if let Some(name) = word.strip_prefix("name=") {
                if std::mem::replace(&mut named, true) {
                    return Err(format!("{at}: name= is given twice"));
                }
                t.name = token_name(name, &at)?;
            } else if let Some(role) = word.strip_prefix("role=") {
                if std::mem::replace(&mut roled, true) {
                    return Err(format!("{at}: role= is given twice"));
                }
                t.role = match role {
                    "read" => Role::Read,
                    "approve" => Role::Approve,
                    _ => {
                        return Err(format!(
                            "{at}: role={} is unknown: write role=read or role=approve",
                            crate::core::text::quoted(role, 32)
                        ))
                    }
                };
            } else if k == 0 {
                t.rulesets = Some(rulesets(word, known, &at)?);
            } else {
                return Err(format!(
                    "{at}: write `TOKEN [RULESET,RULESET] [name=NAME] [role=read|approve]`"
                ));
            }
        }
        tokens.push(t);
    }
    Ok(tokens)
}

/// A token's `name=`: 1 to 64 letters, digits and `._@-`, recorded as who decided.
fn token_name(name: &str, at: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'));
    if !ok {
        return Err(format!(
            "{at}: name={} must be 1 to 64 letters, digits, '.', '_', '@' or '-'",
            crate::core::text::quoted(name, 64)
        ));
    }
    Ok(name.to_string())
}

fn rulesets(list: &str, known: &[&str], at: &str) -> Result<BTreeSet<String>, String> {
    list.split(',')
        .map(|name| {
            if known.contains(&name) {
                Ok(name.to_string())
            } else {
                Err(format!(
                    "{at}: no ruleset is named {} (known: {})",
                    crate::core::text::quoted(name, 64),
                    known.join(", ")
                ))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "0123456789abcdef-token";

    #[test]
    fn bearer_and_basic_with_any_user_are_accepted() {
        let tokens = Tokens::load(Some(&format!(" {T} ,")), None, &[]).unwrap();
        assert_eq!(tokens.len(), 1);
        let basic = |user: &str, pw: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
            )
        };
        let whole =
            |a: Access| matches!(a, Access::Granted(t) if t.whole() && t.role == Role::Read);
        assert!(whole(tokens.check(Some(format!("Bearer {T}").as_bytes()))));
        assert!(whole(tokens.check(Some(basic("paloalto", T).as_bytes()))));
        for bad in [
            format!("Bearer {T}x"),
            basic(T, "nope"),
            "Basic !!!".into(),
            T.to_string(),
        ] {
            assert!(tokens.check(Some(bad.as_bytes())).denied(), "{bad}");
        }
        assert!(tokens.check(None).denied());
        assert!(matches!(Tokens::none().check(None), Access::Open));
        assert!(!format!("{tokens:?}").contains(T));
    }

    #[test]
    fn the_tokens_file_limits_rulesets_and_names_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, format!("# firewalls\n{T} entra\n{T}-all\n")).unwrap();
        let tokens = Tokens::load(None, Some(&path), &["entra", "other"]).unwrap();
        let limited = tokens.check(Some(format!("Bearer {T}").as_bytes()));
        assert!(limited.allows("entra") && !limited.allows("other"));
        assert!(tokens
            .check(Some(format!("Bearer {T}-all").as_bytes()))
            .allows("other"));
        std::fs::write(&path, format!("{T} nosuch\n")).unwrap();
        let err = Tokens::load(None, Some(&path), &["entra"]).unwrap_err();
        assert!(
            err.contains("line 1: no ruleset is named \"nosuch\""),
            "{err}"
        );
        std::fs::write(&path, "short\n").unwrap();
        let err = Tokens::load(None, Some(&path), &[]).unwrap_err();
        assert!(
            err.contains("16 to 512") && !err.contains("short\""),
            "{err}"
        );
        let err = Tokens::load(Some("a,b"), None, &[]).unwrap_err();
        assert!(err.contains("TAGWALL_SERVE_TOKENS"), "{err}");
    }

    #[test]
    fn tokens_file_lines_take_a_name_and_a_role() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(
            &path,
            format!("{T}-a entra name=alice role=approve\n{T}-b role=approve name=bob\n{T}-c name=carol\n{T}-d\n"),
        )
        .unwrap();
        let tokens = Tokens::load(None, Some(&path), &["entra", "other"]).unwrap();
        let got = |t: &str| match tokens.check_token(t.as_bytes()) {
            Access::Granted(t) => (t.name.clone(), t.role, t.whole()),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            got(&format!("{T}-a")),
            ("alice".into(), Role::Approve, false)
        );
        assert_eq!(got(&format!("{T}-b")), ("bob".into(), Role::Approve, true));
        assert_eq!(got(&format!("{T}-c")), ("carol".into(), Role::Read, true));
        assert_eq!(
            got(&format!("{T}-d")),
            ("tokens_file line 4".into(), Role::Read, true)
        );
        for (line, says) in [
            (format!("{T} role=admin"), "role=\"admin\" is unknown"),
            (format!("{T} name=<b>"), "must be 1 to 64"),
            (format!("{T} name=a name=b"), "name= is given twice"),
            (format!("{T} entra entra"), "write `TOKEN [RULESET,RULESET]"),
        ] {
            std::fs::write(&path, format!("{line}\n")).unwrap();
            let err = Tokens::load(None, Some(&path), &["entra"]).unwrap_err();
            assert!(err.contains(says) && err.contains("line 1"), "{err}");
            assert!(!err.contains(T), "{err}");
        }
    }
}
