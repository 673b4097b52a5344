//! The layer table of `src/lib.rs` and ARCHITECTURE.md, held: every `crate::`, `super::` and
//! `self::` path in every source file (tests included) is resolved to the module it names, and
//! the test fails on
//! - a module that imports one of a higher layer, or another module of its own layer;
//! - a cycle among files (a module's own submodules aside: a `mod.rs` re-exporting its
//!   children is the facade, not a cycle);
//! - a top-level module missing from the table.
//!
//! The scan reads the text with comments, strings and character literals removed, so a path in
//! a doc comment or a message is not an import, and a path inside a macro's arguments is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module's layer: a module may import its own submodules and modules of lower
/// layers only. The order within layer 4 of ARCHITECTURE.md: `localfs` and `logsink` (no
/// other I/O module below them), then `store`, then `fetch` (imports into the store),
/// `publish` (records in it) and `notify` (which posts through whatever `notify::PostJson` the
/// job gives it: `fetch`'s client, though `notify` does not import `fetch`).
const LAYERS: &[(&str, u32)] = &[
    ("core", 10),
    ("rules", 20),
    ("render", 30),
    ("localfs", 40),
    ("logsink", 40),
    ("store", 41),
    ("fetch", 42),
    ("publish", 42),
    ("notify", 42),
    ("job", 50),
    ("serve", 55),
    ("app", 60),
];

#[test]
fn no_module_imports_a_higher_layer_or_a_sibling_of_its_layer() {
    let graph = Graph::of_crate();
    let rank: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let mut wrong = Vec::new();
    for (from, to) in graph.edges() {
        let (a, b) = (top(from), top(to));
        if a == b {
            continue;
        }
        let (Some(ra), Some(rb)) = (rank.get(a), rank.get(b)) else {
            continue; // reported by the test below
        };
        if rb >= ra {
            wrong.push(format!("{from} → {to} (layer {ra} imports layer {rb})"));
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layer table (tests/it/layers.rs LAYERS, ARCHITECTURE.md):\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn every_top_level_module_is_in_the_table() {
    let graph = Graph::of_crate();
    let known: BTreeSet<&str> = LAYERS.iter().map(|(m, _)| *m).collect();
    let tops: BTreeSet<&str> = graph.modules.keys().map(|m| top(m)).collect();
    let missing: Vec<_> = tops
        .iter()
        .filter(|m| !m.is_empty() && !known.contains(*m))
        .collect();
    assert!(
        missing.is_empty(),
        "not in tests/it/layers.rs LAYERS: {missing:?}"
    );
    let gone: Vec<_> = known.iter().filter(|m| !tops.contains(*m)).collect();
    assert!(gone.is_empty(), "in LAYERS but not in src/: {gone:?}");
}

#[test]
fn no_files_import_each_other_in_a_cycle() {
    let graph = Graph::of_crate();
    let cycles = graph.cycles();
    assert!(
        cycles.is_empty(),
        "files that import each other in a cycle (move what they share into one of them or below them):\n  {}",
        cycles
            .iter()
            .map(|c| c.join(", "))
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

/// The scan itself: it sees the imports that exist, in each of their forms.
#[test]
fn the_scan_finds_the_imports_that_exist() {
    let graph = Graph::of_crate();
    assert!(graph.modules.len() > 100, "{} modules", graph.modules.len());
    let edges: BTreeSet<(String, String)> = graph
        .edges()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert!(edges.len() > 300, "{} edges", edges.len());
    for (from, to) in [
        ("store::import", "localfs"),        // use crate::localfs::{…}
        ("store::import", "core::filedate"), // an inline crate:: path
        ("serve::access", "serve"),          // use super::Reply
        ("render::firewall::nft", "render::firewall::comment"), // use super::comment::header
        ("core::history", "core::model"),    // in a test module
        ("app::config", "job::sync"),        // crate::job::sync::Settings { … }
    ] {
        assert!(
            edges.contains(&(from.to_string(), to.to_string())),
            "{from} → {to} not found"
        );
    }
    // A path in a comment or a string is not an import.
    let text = "// crate::app::x\nlet s = \"crate::app::y\"; /* crate::app */ crate::core::z";
    let only = |text: &str| -> Vec<Vec<String>> {
        paths_in(&strip(text)).into_iter().map(|(_, p)| p).collect()
    };
    assert_eq!(only(text), vec![vec!["crate", "core", "z"]]);
    assert_eq!(
        only("use crate::{a::{b, c::D as E}, f};"),
        vec![
            vec!["crate", "a", "b"],
            vec!["crate", "a", "c", "D"],
            vec!["crate", "f"]
        ]
    );
    // `super` in an inline module names the file's module, not its parent.
    let all: BTreeSet<String> = ["", "a", "a::b"].map(String::from).into();
    let found = paths_in(&strip("mod tests { use super::*; } use super::x;"));
    let targets: Vec<_> = found
        .iter()
        .map(|(inline, p)| resolve("a::b", inline, p, &all))
        .collect();
    assert_eq!(targets, [Some("a::b".to_string()), Some("a".to_string())]);
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap_or("")
}

/// The modules of `src/` (by file) and the modules each one names.
struct Graph {
    modules: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    fn of_crate() -> Graph {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        walk(&src, &mut files);
        let named: Vec<(String, PathBuf)> = files
            .into_iter()
            .filter(|f| f.file_name().is_some_and(|n| n != "main.rs"))
            .map(|f| (module_of(&src, &f), f))
            .collect();
        let all: BTreeSet<String> = named.iter().map(|(m, _)| m.clone()).collect();
        let mut modules = BTreeMap::new();
        for (module, file) in &named {
            let text = std::fs::read_to_string(file).expect("a source file is UTF-8");
            let mut names = BTreeSet::new();
            for (inline, path) in paths_in(&strip(&text)) {
                if let Some(target) = resolve(module, &inline, &path, &all) {
                    if &target != module {
                        names.insert(target);
                    }
                }
            }
            modules.insert(module.clone(), names);
        }
        Graph { modules }
    }

    fn edges(&self) -> impl Iterator<Item = (&str, &str)> {
        self.modules
            .iter()
            .flat_map(|(a, bs)| bs.iter().map(move |b| (a.as_str(), b.as_str())))
    }

    /// Each set of files that reach each other (Tarjan), as one cycle through them; edges
    /// from a module into its own submodules are left out.
    fn cycles(&self) -> Vec<Vec<String>> {
        let next = |a: &str| -> Vec<&str> {
            self.modules[a]
                .iter()
                .filter(|b| !b.starts_with(&format!("{a}::")) && !a.is_empty())
                .map(String::as_str)
                .collect()
        };
        let mut tarjan = Tarjan::default();
        for m in self.modules.keys() {
            if !tarjan.index.contains_key(m.as_str()) {
                tarjan.visit(m, &next);
            }
        }
        tarjan
            .components
            .into_iter()
            .map(|c| {
                let mut c: Vec<String> = c.into_iter().map(str::to_string).collect();
                c.sort();
                c
            })
            .collect()
    }
}

#[derive(Default)]
struct Tarjan<'a> {
    index: BTreeMap<&'a str, usize>,
    low: BTreeMap<&'a str, usize>,
    stack: Vec<&'a str>,
    on_stack: BTreeSet<&'a str>,
    components: Vec<Vec<&'a str>>,
}

impl<'a> Tarjan<'a> {
    fn visit(&mut self, v: &'a str, next: &dyn Fn(&str) -> Vec<&'a str>) {
        let i = self.index.len();
        self.index.insert(v, i);
        self.low.insert(v, i);
        self.stack.push(v);
        self.on_stack.insert(v);
        for w in next(v) {
            if !self.index.contains_key(w) {
                self.visit(w, next);
                let lw = self.low[w];
                let lv = self.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if self.on_stack.contains(w) {
                let iw = self.index[w];
                let lv = self.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if self.low[v] == self.index[v] {
            let mut component = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack.remove(w);
                component.push(w);
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                self.components.push(component);
            }
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("src/ is readable").path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` → `a::b`; `src/lib.rs` → the crate root, "".
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file
        .strip_prefix(src)
        .expect("under src/")
        .with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts.join("::")
}

/// The longest prefix of `path` that names a module (a file), seen from the inline modules
/// `inline` of `module`.
fn resolve(
    module: &str,
    inline: &[String],
    path: &[String],
    all: &BTreeSet<String>,
) -> Option<String> {
    let mut base: Vec<&str> = module.split("::").filter(|s| !s.is_empty()).collect();
    base.extend(inline.iter().map(String::as_str));
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("super") | Some("self") => {
            while let Some(first) = rest.first() {
                match first.as_str() {
                    "super" => {
                        base.pop();
                    }
                    "self" => {}
                    _ => break,
                }
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    let mut segments: Vec<&str> = base;
    segments.extend(
        rest.iter()
            .map(String::as_str)
            .filter(|s| *s != "*" && *s != "self"),
    );
    (0..=segments.len())
        .rev()
        .map(|k| segments[..k].join("::"))
        .find(|m| all.contains(m))
}

/// Every path starting with `crate`, `super` or `self` (`use` trees expanded, then inline
/// paths), each with the inline modules (`mod tests { … }`) it is written in.
fn paths_in(text: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let tokens = tokenize(text);
    let mut out = Vec::new();
    let mut scopes: Vec<(usize, String)> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    let inline = |scopes: &[(usize, String)]| scopes.iter().map(|(_, m)| m.clone()).collect();
    while i < tokens.len() {
        let t = tokens[i].as_str();
        match t {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                if scopes.last().is_some_and(|(d, _)| *d > depth) {
                    scopes.pop();
                }
            }
            "mod" if tokens.get(i + 2).is_some_and(|t| t == "{") => {
                scopes.push((depth + 1, tokens[i + 1].clone()));
            }
            "use" => {
                let end = tokens[i..]
                    .iter()
                    .position(|t| t == ";")
                    .map_or(tokens.len(), |p| i + p);
                let tree = &tokens[i + 1..end];
                if tree
                    .first()
                    .is_some_and(|t| t == "crate" || t == "super" || t == "self")
                {
                    let mut paths = Vec::new();
                    expand(tree, &[], &mut paths);
                    out.extend(paths.into_iter().map(|p| (inline(&scopes), p)));
                }
                i = end + 1;
                continue;
            }
            "crate" | "super" | "self" if i == 0 || tokens[i - 1] != "::" => {
                let mut path = vec![t.to_string()];
                let mut j = i + 1;
                while j + 1 < tokens.len() && tokens[j] == "::" && is_ident(&tokens[j + 1]) {
                    path.push(tokens[j + 1].clone());
                    j += 2;
                }
                if path.len() > 1 {
                    out.push((inline(&scopes), path));
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// A `use` tree's paths: `a::{b, c::{d, e as f}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &[String], prefix: &[String], out: &mut Vec<Vec<String>>) {
    let mut path = prefix.to_vec();
    let mut i = 0;
    while i < tree.len() {
        let t = tree[i].as_str();
        if t == "{" {
            let close = matching(tree, i);
            for item in split_top(&tree[i + 1..close]) {
                expand(item, &path, out);
            }
            return;
        }
        if t == "as" {
            break;
        }
        if t != "::" {
            path.push(t.to_string());
        }
        i += 1;
    }
    if !path.is_empty() {
        out.push(path);
    }
}

fn matching(tokens: &[String], open: usize) -> usize {
    let mut depth = 0;
    for (k, t) in tokens.iter().enumerate().skip(open) {
        match t.as_str() {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                if depth == 0 {
                    return k;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

fn split_top(tokens: &[String]) -> Vec<&[String]> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (k, t) in tokens.iter().enumerate() {
        match t.as_str() {
            "{" => depth += 1,
            "}" => depth -= 1,
            "," if depth == 0 => {
                parts.push(&tokens[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    parts.push(&tokens[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

fn is_ident(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        || t == "*"
}

/// Identifiers, `::` and single punctuation characters.
fn tokenize(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push("::".into());
            i += 2;
        } else {
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
            i += 1;
        }
    }
    out
}

/// The text with comments, string literals (raw and byte ones too) and character literals
/// replaced by a space.
fn strip(text: &str) -> String {
    let s: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let at = |i: usize, pat: &str| {
        pat.chars()
            .enumerate()
            .all(|(k, c)| s.get(i + k) == Some(&c))
    };
    let ident_before = |i: usize| i > 0 && (s[i - 1].is_alphanumeric() || s[i - 1] == '_');
    while i < s.len() {
        if at(i, "//") {
            while i < s.len() && s[i] != '\n' {
                i += 1;
            }
        } else if at(i, "/*") {
            let mut depth = 0;
            while i < s.len() {
                if at(i, "/*") {
                    depth += 1;
                    i += 2;
                } else if at(i, "*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if let Some(skip) = raw_string(&s, i).filter(|_| !ident_before(i)) {
            i += skip;
        } else if s[i] == '"' {
            i += 1;
            while i < s.len() && s[i] != '"' {
                i += if s[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if s[i] == '\'' {
            i += char_literal(&s, i).unwrap_or(1);
        } else {
            out.push(s[i]);
            i += 1;
            continue;
        }
        out.push(' ');
    }
    out
}

/// The length of a raw string (`r"…"`, `r#"…"#`, `br#"…"#`) starting at `i`.
fn raw_string(s: &[char], i: usize) -> Option<usize> {
    let mut k = i;
    if s.get(k) == Some(&'b') {
        k += 1;
    }
    if s.get(k) != Some(&'r') {
        return None;
    }
    k += 1;
    let hashes = s[k..].iter().take_while(|c| **c == '#').count();
    k += hashes;
    if s.get(k) != Some(&'"') {
        return None;
    }
    k += 1;
    while k < s.len() {
        if s[k] == '"'
            && s[k + 1..]
                .iter()
                .take(hashes)
                .filter(|c| **c == '#')
                .count()
                == hashes
        {
            return Some(k + 1 + hashes - i);
        }
        k += 1;
    }
    Some(s.len() - i)
}

/// The length of a character literal (`'a'`, `'\n'`, `'\u{1F600}'`) at `i`; `None` for a
/// lifetime.
fn char_literal(s: &[char], i: usize) -> Option<usize> {
    if s.get(i + 1) == Some(&'\\') {
        let end = (i + 2..s.len().min(i + 14)).find(|&k| s[k] == '\'')?;
        return Some(end + 1 - i);
    }
    (s.get(i + 2) == Some(&'\'')).then_some(3)
}
