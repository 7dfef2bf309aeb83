//! The layering of core/src and model/src (the tables in their lib.rs): every `.rs` file
//! belongs to a top-level folder or module (`ops`, `time`, `event`, `codec`,
//! `ingest`, `store`, `maintenance`, `query`), and its `crate::<module>`
//! references (in `use crate::…`, grouped `use crate::{a, b}`, and paths
//! `crate::x::…` anywhere in code) are edges of a graph between them. The
//! graph must have no cycle, and every edge must be one the table allows.
//! `super::` inside a folder stays in that folder; a `super::` chain that
//! climbs to the crate root counts like `crate::`. Comments are not code:
//! prose may name any module.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What each layer may import (lib.rs's table).
const ALLOWED: [(&str, &[&str]); 10] = [
    ("ops", &[]),
    ("time", &[]),
    ("event", &["time"]),
    ("codec", &[]),
    ("ingest", &["event", "time", "codec"]),
    ("store", &["ops", "time", "event", "codec", "ingest"]),
    ("maintenance", &["ops", "time", "codec", "store"]),
    ("query", &["time", "event", "codec", "store"]),
    ("access", &["event", "store", "ingest"]),
    ("conversions", &["event", "store", "access"]),
];

fn allowed(from: &str) -> Option<&'static [&'static str]> {
    ALLOWED.iter().find(|(l, _)| *l == from).map(|(_, a)| *a)
}

/// One reference from a file to another layer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    from: String,
    to: String,
    file: String,
    line: usize,
}

/// Keeps a literal's newlines only, so that line numbers hold.
fn blank(chars: &[char]) -> impl Iterator<Item = char> + '_ {
    chars.iter().filter(|c| **c == '\n').copied()
}

/// The code alone: comments, string and char literals taken out (their
/// newlines kept, so line numbers hold), so that neither prose nor SQL text
/// counts as a reference.
fn strip_comments(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if b[i] == '\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !prev_is_ident(&b, i) {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let start = i;
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.extend(blank(&b[start..j.min(b.len())]));
            i = j;
        } else if c == '"' {
            let start = i;
            i += 1;
            while i < b.len() && b[i] != '"' {
                i += if b[i] == '\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
            out.extend(blank(&b[start..i]));
        } else if c == '\'' && next.is_some() && b.get(i + 2) == Some(&'\'') {
            // A char literal like '"' (a lifetime has no closing quote).
            i += 3;
        } else if c == '\'' && next == Some('\\') {
            // An escaped char literal: '\'' , '\\', '\n', '\u{..}'.
            let start = i;
            i += 2;
            while i < b.len() && b[i] != '\'' {
                i += 1;
            }
            i = (i + 1).min(b.len());
            out.extend(blank(&b[start..i]));
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn prev_is_ident(b: &[char], i: usize) -> bool {
    i > 0 && (is_ident(b[i - 1]) || b[i - 1] == '$')
}

fn skip_ws(b: &[char], mut i: usize) -> usize {
    while i < b.len() && b[i].is_whitespace() {
        i += 1;
    }
    i
}

fn ident_at(b: &[char], i: usize) -> Option<(String, usize)> {
    let i = skip_ws(b, i);
    let mut j = i;
    while j < b.len() && is_ident(b[j]) {
        j += 1;
    }
    (j > i).then(|| (b[i..j].iter().collect(), j))
}

/// After `::` at `i`: `x` or `{a, b::c, d::{e}}` → the first segment of each.
fn first_segments(b: &[char], i: usize) -> Vec<(String, usize)> {
    let i = skip_ws(b, i);
    if b.get(i) == Some(&'{') {
        let mut out = Vec::new();
        let (mut depth, mut j, mut expect) = (0, i, true);
        while j < b.len() {
            match b[j] {
                '{' => {
                    depth += 1;
                    if depth == 1 {
                        expect = true;
                    }
                    j += 1;
                }
                '}' => {
                    depth -= 1;
                    j += 1;
                    if depth == 0 {
                        break;
                    }
                }
                ',' if depth == 1 => {
                    expect = true;
                    j += 1;
                }
                c if depth == 1 && expect && is_ident(c) => {
                    let (name, end) = ident_at(b, j).unwrap();
                    out.push((name, j));
                    expect = false;
                    j = end;
                }
                c => {
                    if !c.is_whitespace() {
                        expect = false;
                    }
                    j += 1;
                }
            }
        }
        out
    } else {
        ident_at(b, i).map(|(n, _)| (n, i)).into_iter().collect()
    }
}

fn line_of(b: &[char], i: usize) -> usize {
    b[..i].iter().filter(|c| **c == '\n').count() + 1
}

/// The top-level layers that `code` (comments stripped) names from a file
/// at `depth` modules below the crate root, with their line numbers:
/// `crate::x`, `crate::{x, y}`, and `super::…::x` when the `super`s climb
/// to the root.
fn referenced_layers(code: &str, depth: usize) -> Vec<(String, usize)> {
    let b: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !is_ident(b[i]) || prev_is_ident(&b, i) {
            i += 1;
            continue;
        }
        let (word, end) = ident_at(&b, i).unwrap();
        let after = skip_ws(&b, end);
        let path_sep = b.get(after) == Some(&':') && b.get(after + 1) == Some(&':');
        if word == "crate" && path_sep {
            out.extend(
                first_segments(&b, after + 2)
                    .into_iter()
                    .map(|(n, at)| (n, line_of(&b, at))),
            );
        } else if word == "super" && path_sep {
            let mut ups = 1;
            let mut j = after + 2;
            while let Some((w, e)) = ident_at(&b, j) {
                let a = skip_ws(&b, e);
                if w == "super" && b.get(a) == Some(&':') && b.get(a + 1) == Some(&':') {
                    ups += 1;
                    j = a + 2;
                } else {
                    break;
                }
            }
            if ups >= depth {
                out.extend(first_segments(&b, j).into_iter().map(|(n, at)| (n, line_of(&b, at))));
            }
            i = j;
            continue;
        }
        i = end;
    }
    out.retain(|(n, _)| n != "self" && n != "super" && n != "crate");
    out
}

/// (layer, depth below the crate root) of a file under `src`; `None` for
/// lib.rs.
fn layer_of(src: &Path, file: &Path) -> Option<(String, usize)> {
    let rel = file.strip_prefix(src).unwrap();
    let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts == ["lib.rs"] {
        return None;
    }
    let last = parts.last().unwrap();
    let depth = if last == "mod.rs" { parts.len() - 1 } else { parts.len() };
    let layer = parts[0].trim_end_matches(".rs").to_string();
    Some((layer, depth))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every cross-layer reference in core/src.
fn edges(src: &Path) -> Vec<Edge> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    assert!(files.len() > 10, "only {} files under {}", files.len(), src.display());
    let mut out = Vec::new();
    for file in files {
        let Some((layer, depth)) = layer_of(src, &file) else {
            continue;
        };
        let code = strip_comments(&std::fs::read_to_string(&file).unwrap());
        for (to, line) in referenced_layers(&code, depth) {
            if to != layer {
                out.push(Edge {
                    from: layer.clone(),
                    to,
                    file: Path::new(src.parent().unwrap().file_name().unwrap())
                        .join(file.strip_prefix(src.parent().unwrap()).unwrap())
                        .display()
                        .to_string(),
                    line,
                });
            }
        }
    }
    out
}

/// Edges the table does not allow, or that name an unknown layer.
fn violations(edges: &[Edge]) -> Vec<String> {
    edges
        .iter()
        .filter_map(|e| match allowed(&e.from) {
            None => Some(format!(
                "{}:{}: `{}` is not a layer of lib.rs's table (add it there and here)",
                e.file, e.line, e.from
            )),
            Some(ok) if ok.contains(&e.to.as_str()) => None,
            Some(_) if allowed(&e.to).is_none() => Some(format!(
                "{}:{}: {} → {}: `crate::{}` is not a layer",
                e.file, e.line, e.from, e.to, e.to
            )),
            Some(ok) => Some(format!(
                "{}:{}: {} → {} is not allowed (`crate::{}`); {} may import: {}",
                e.file,
                e.line,
                e.from,
                e.to,
                e.to,
                e.from,
                if ok.is_empty() {
                    "nothing".to_string()
                } else {
                    ok.join(", ")
                }
            )),
        })
        .collect()
}

/// A cycle in the layer graph, as `a → b → … → a` with the file behind each
/// edge.
fn find_cycle(edges: &[Edge]) -> Option<String> {
    let mut graph: BTreeMap<&str, BTreeMap<&str, &Edge>> = BTreeMap::new();
    for e in edges {
        graph.entry(&e.from).or_default().entry(&e.to).or_insert(e);
    }
    fn visit<'a>(
        node: &'a str,
        graph: &BTreeMap<&'a str, BTreeMap<&'a str, &'a Edge>>,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<&'a str>> {
        if let Some(at) = stack.iter().position(|n| *n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node);
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        stack.push(node);
        for next in graph.get(node).into_iter().flat_map(|m| m.keys()) {
            if let Some(c) = visit(next, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, &graph, &mut Vec::new(), &mut done) {
            let steps: Vec<String> = cycle
                .windows(2)
                .map(|w| {
                    let e = graph[w[0]][w[1]];
                    format!("{} → {} ({}:{})", w[0], w[1], e.file, e.line)
                })
                .collect();
            return Some(steps.join(", "));
        }
    }
    None
}

fn core_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The pure layers (`time`, `event`, `codec`, `ingest`) are the
/// analytics-model crate beside core, re-exported by core under the same
/// names: one table covers both.
fn model_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/src")
}

/// Every cross-layer reference in core/src and model/src.
fn all_edges() -> Vec<Edge> {
    let mut all = edges(&core_src());
    all.extend(edges(&model_src()));
    all
}

#[test]
fn layers_import_only_the_layers_before_them() {
    let edges = all_edges();
    // Not vacuous: the writer reads the ingest steps, queries read the store.
    for (from, to) in [
        ("store", "ingest"),
        ("query", "store"),
        ("maintenance", "store"),
        ("ingest", "event"),
    ] {
        assert!(
            edges.iter().any(|e| e.from == from && e.to == to),
            "no {from} → {to} edge found: the scan is broken"
        );
    }
    let bad = violations(&edges);
    assert!(bad.is_empty(), "layering broken:\n{}", bad.join("\n"));
}

#[test]
fn the_layer_graph_has_no_cycle() {
    let edges = all_edges();
    if let Some(cycle) = find_cycle(&edges) {
        panic!("the layers form a cycle: {cycle}");
    }
}

#[test]
fn the_table_itself_has_no_cycle() {
    let table: Vec<Edge> = ALLOWED
        .iter()
        .flat_map(|(from, tos)| {
            tos.iter().map(|to| Edge {
                from: (*from).into(),
                to: (*to).into(),
                file: "ALLOWED".into(),
                line: 0,
            })
        })
        .collect();
    assert_eq!(find_cycle(&table), None);
}

// The scanner itself, on snippets.

fn names(code: &str, depth: usize) -> Vec<String> {
    referenced_layers(&strip_comments(code), depth)
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

#[test]
fn scanner_reads_plain_grouped_and_inline_paths() {
    let code = "use crate::store::Writer;\n\
                use crate::{event::Event, time, codec::{path_pack, user_set}};\n\
                use crate :: ops;\n\
                fn f() { let x = crate::query::stats::totals(); }\n\
                pub(crate) fn g() {}\n\
                macro_rules! m { () => { $crate::maintenance::x } }\n";
    assert_eq!(names(code, 2), ["store", "event", "time", "codec", "ops", "query"]);
}

#[test]
fn scanner_ignores_comments_and_strings_and_follows_super() {
    let code = "// use crate::query;\n\
                /// See [`crate::query`].\n\
                /* crate::store /* nested crate::ops */ */\n\
                const URL: &str = \"http://x // crate::ingest\";\n\
                const Q: char = '\"';\n\
                use super::batch;\n\
                use super::super::codec::path_pack;\n\
                use super::super::super::store::Writer;\n";
    // From store/sqlite/batch.rs (depth 3): `super` and `super::super` stay
    // in store; three `super`s reach the crate root.
    assert_eq!(names(code, 3), ["store"]);
    // From codec/path_pack.rs (depth 2): `super::super` is the root.
    assert_eq!(names(code, 2), ["codec", "store"]);
}

#[test]
fn a_forbidden_edge_and_a_cycle_are_reported_with_their_file() {
    let edge = |from: &str, to: &str, file: &str| Edge {
        from: from.into(),
        to: to.into(),
        file: file.into(),
        line: 7,
    };
    let edges = [
        edge("codec", "query", "src/codec/user_set.rs"),
        edge("query", "codec", "src/query/stats.rs"),
    ];
    assert_eq!(
        violations(&edges),
        ["src/codec/user_set.rs:7: codec → query is not allowed (`crate::query`); codec may import: nothing"]
    );
    assert_eq!(
        find_cycle(&edges).unwrap(),
        "codec → query (src/codec/user_set.rs:7), query → codec (src/query/stats.rs:7)"
    );
}
