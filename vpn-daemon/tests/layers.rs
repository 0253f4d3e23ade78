//! The layering rule of the crate, checked over its `use crate::` paths:
//! each top-level module uses only modules of its own layer or below
//! (proto ← config ← io/packet ← host ← pure mode logic ← the loop ←
//! daemon), nothing imports `daemon`, and no two modules (at the depth of
//! `tunnel::multi`, `io::external`, `error`) import each other, directly
//! or round a longer circle. Test code is left out: a test may reach
//! anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layer of each top-level module; a module may use its own layer
/// and those below.
const LAYERS: &[(&str, u8)] = &[
    ("proto", 0),
    ("config", 1),
    ("io", 2),
    ("packet", 2),
    ("error", 3),
    ("plugin", 3),
    ("host", 3),
    ("server", 4),
    ("client", 4),
    ("mgmt", 4),
    ("tunnel", 5),
    ("cli", 5),
    ("fuzzing", 6),
    ("daemon", 6),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a source file: `tunnel/multi.rs` is
/// `["tunnel", "multi"]`, `host/mod.rs` is `["host"]`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs").to_owned();
        if stem != "mod" {
            parts.push(stem);
        }
    }
    parts
}

/// Files that are `#[cfg(test)]` modules as a whole (`proto/tests/*.rs`,
/// `config/tests.rs`, `test_alloc.rs`).
fn test_only(rel: &Path) -> bool {
    rel.iter().any(|c| c == "tests")
        || rel.file_stem().is_some_and(|s| {
            let s = s.to_string_lossy();
            s == "tests" || s.starts_with("tests_") || s.ends_with("_tests") || s == "test_alloc"
        })
}

/// The code without comments, string contents and `#[cfg(test)]` items.
fn code_only(text: &str) -> String {
    let mut lines = Vec::new();
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("//") {
            lines.push("");
        } else {
            lines.push(line);
        }
    }
    let mut s = lines.join("\n");
    // Drop each `#[cfg(test)]` item: the attribute, then up to the end of
    // the braces it opens (or the `;` of a one-line item).
    while let Some(at) = s.find("#[cfg(test)]") {
        let rest = &s[at..];
        let open = rest.find('{');
        let semi = rest.find(';');
        let end = match (open, semi) {
            (Some(o), Some(c)) if c < o => at + c + 1,
            (Some(o), _) => {
                let mut depth = 0usize;
                let mut end = s.len();
                for (i, ch) in s[at + o..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = at + o + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (None, Some(c)) => at + c + 1,
            (None, None) => s.len(),
        };
        s.replace_range(at..end, "");
    }
    s
}

/// Every `crate::…` path in `code`, as lists of segments; grouped imports
/// (`use crate::{a::b, c::{d, e}}`) are expanded.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `vpn_daemon_crate::`, not ours
        }
        expand(rest, Vec::new(), &mut out);
    }
    out
}

fn expand(s: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let s = s.trim_start();
    if let Some(inner) = s.strip_prefix('{') {
        // Split the group at top-level commas.
        let mut depth = 0usize;
        let mut start = 0usize;
        for (i, ch) in inner.char_indices() {
            match ch {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    expand(&inner[start..i], prefix.clone(), out);
                    return;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&inner[start..i], prefix.clone(), out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        return;
    }
    let mut path = prefix;
    let mut s = s;
    loop {
        let end = s
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        if end == 0 {
            break;
        }
        path.push(s[..end].to_owned());
        s = &s[end..];
        if let Some(r) = s.strip_prefix("::") {
            if r.trim_start().starts_with('{') {
                expand(r, path, out);
                return;
            }
            s = r;
        } else {
            break;
        }
    }
    if !path.is_empty() && path[0] != "self" {
        out.push(path);
    }
}

/// The node a path belongs to: its first two segments when the second is a
/// module of ours (`io::external`), else its first (`tunnel`, `error`).
fn node(path: &[String], modules: &BTreeSet<Vec<String>>) -> String {
    if path.len() >= 2 && modules.contains(&path[..2].to_vec()) {
        format!("{}::{}", path[0], path[1])
    } else {
        path[0].clone()
    }
}

struct Graph {
    /// node -> (node it uses -> one file that does).
    edges: BTreeMap<String, BTreeMap<String, String>>,
}

fn graph() -> Graph {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let modules: BTreeSet<Vec<String>> = files
        .iter()
        .map(|f| module_of(f.strip_prefix(&root).expect("under src")))
        .collect();
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for f in &files {
        let rel = f.strip_prefix(&root).expect("under src");
        let m = module_of(rel);
        if m.is_empty() || m == ["lib"] || m == ["main"] || test_only(rel) {
            continue;
        }
        let from = node(&m, &modules);
        let text = std::fs::read_to_string(f).expect("read source");
        for p in crate_paths(&code_only(&text)) {
            let to = node(&p, &modules);
            if to != from {
                edges
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_insert_with(|| rel.display().to_string());
            }
        }
    }
    Graph { edges }
}

fn layer(node: &str) -> Option<u8> {
    let top = node.split("::").next()?;
    LAYERS.iter().find(|(n, _)| *n == top).map(|(_, l)| *l)
}

#[test]
fn every_module_has_a_layer() {
    let g = graph();
    let mut missing = BTreeSet::new();
    for (from, tos) in &g.edges {
        for n in std::iter::once(from).chain(tos.keys()) {
            if layer(n).is_none() {
                missing.insert(n.clone());
            }
        }
    }
    assert!(missing.is_empty(), "modules without a layer: {missing:?}");
}

#[test]
fn dependencies_point_down_the_layers() {
    let g = graph();
    let mut wrong = Vec::new();
    for (from, tos) in &g.edges {
        for (to, file) in tos {
            if let (Some(a), Some(b)) = (layer(from), layer(to))
                && b > a
            {
                wrong.push(format!("{file}: {from} (layer {a}) uses {to} (layer {b})"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "upward dependencies:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn nothing_imports_daemon() {
    let g = graph();
    let users: Vec<_> = g
        .edges
        .iter()
        .filter(|(_, tos)| tos.keys().any(|t| t.starts_with("daemon")))
        .map(|(f, _)| f.clone())
        .collect();
    assert!(users.is_empty(), "modules importing daemon: {users:?}");
}

#[test]
fn no_two_modules_import_each_other() {
    let g = graph();
    // Tarjan's strongly connected components over the node graph.
    struct State<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        cycles: Vec<Vec<&'a str>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on.insert(v);
        if let Some(tos) = s.g.edges.get(v) {
            for w in tos.keys() {
                let w = w.as_str();
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let lw = s.low[w];
                    let lv = s.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if s.on.contains(w) {
                    let iw = s.index[w];
                    let lv = s.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                comp.push(w);
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort_unstable();
                s.cycles.push(comp);
            }
        }
    }
    let mut s = State {
        g: &g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        cycles: Vec::new(),
    };
    let nodes: Vec<&str> = g.edges.keys().map(String::as_str).collect();
    for v in nodes {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    let report: Vec<String> = s
        .cycles
        .iter()
        .map(|c| {
            let edges: Vec<String> = c
                .iter()
                .flat_map(|a| {
                    g.edges[*a]
                        .iter()
                        .filter(|(b, _)| c.contains(&b.as_str()))
                        .map(move |(b, f)| format!("{a} -> {b} ({f})"))
                })
                .collect();
            edges.join("; ")
        })
        .collect();
    assert!(report.is_empty(), "import cycles:\n{}", report.join("\n"));
}

#[test]
fn the_checker_sees_grouped_and_nested_imports() {
    let code = "use crate::{config::X, mgmt::status::{A, B}};\nfn f() { crate::io::clock::now(); }\n// crate::daemon::x\n#[cfg(test)]\nmod tests { use crate::daemon::y; }\n";
    let paths = crate_paths(&code_only(code));
    let firsts: Vec<&str> = paths.iter().map(|p| p[0].as_str()).collect();
    assert_eq!(firsts, ["config", "mgmt", "mgmt", "io"]);
}
