//! Issue 13: the house plan stays true. Every `crate::` path in `src/` is an arrow from the
//! room it is written in to the room it names; no arrow may close a circle, every arrow
//! must be one that `docs/architecture.md` allows, every room in `src/` must be in that
//! table, and the table's picture (a Mermaid diagram) must draw exactly its arrows, less
//! those a longer path already implies.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The rooms: the top-level modules of `src/` (a file `x.rs` or a folder `x/`), without
/// the crate root and the binary's `main.rs`.
fn rooms() -> BTreeSet<String> {
    std::fs::read_dir(root().join("src"))
        .unwrap()
        .filter_map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if entry.file_type().unwrap().is_dir() {
                Some(name)
            } else {
                name.strip_suffix(".rs")
                    .filter(|n| !matches!(*n, "lib" | "main"))
                    .map(str::to_string)
            }
        })
        .collect()
}

/// Every `.rs` file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// Rust text with comments, strings and character literals blanked out, so that only code
/// is left to read paths in.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        let c = b[i];
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if (c == b'r' || c == b'b')
            && (i == 0 || !ident(b[i - 1]))
            && raw_start(&b[i..]).is_some()
        {
            let (skip, hashes) = raw_start(&b[i..]).unwrap();
            i += skip;
            let end: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            while i < b.len() && !b[i..].starts_with(&end) {
                i += 1;
            }
            i += end.len();
            out.push_str("\"\"");
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == b'\'' {
            // A character literal ('a', '\n', '\''), or a lifetime ('a), kept as it is.
            let rest = &text[i + 1..];
            let len = if rest.starts_with('\\') {
                rest.get(2..).and_then(|r| r.find('\'')).map(|p| p + 4)
            } else {
                rest.chars()
                    .next()
                    .filter(|ch| rest[ch.len_utf8()..].starts_with('\''))
                    .map(|ch| ch.len_utf8() + 2)
            };
            match len {
                Some(len) => {
                    i += len;
                    out.push_str("' '");
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// `r"`, `r#"`, `br"`, `b"`: how many bytes open the literal and how many `#` close it.
fn raw_start(b: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    if b.first() == Some(&b'b') {
        i += 1;
        if b.get(i) == Some(&b'"') {
            return Some((i + 1, 0));
        }
    }
    if b.get(i) != Some(&b'r') {
        return None;
    }
    i += 1;
    let hashes = b[i..].iter().take_while(|&&c| c == b'#').count();
    i += hashes;
    (b.get(i) == Some(&b'"')).then_some((i + 1, hashes))
}

/// The first name of each `crate::` path: `crate::process::wait` gives `process`, and
/// `crate::{error::Error, sys}` gives `error` and `sys`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // `$crate::` in a macro, or a longer word
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut end = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    end = i;
                    break;
                }
            }
            let mut level = 0;
            let mut item = String::new();
            for c in group[..end].chars().chain(std::iter::once(',')) {
                match c {
                    '{' => level += 1,
                    '}' => level -= 1,
                    ',' if level == 0 => {
                        let name: String = item
                            .trim()
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        if !name.is_empty() {
                            names.push(name);
                        }
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            names.push(name);
        }
    }
    names
}

/// The arrows between rooms that the code of `src/` draws, with one place for each.
fn actual_arrows(rooms: &BTreeSet<String>) -> (Graph, BTreeMap<(String, String), String>) {
    let src = root().join("src");
    let mut graph = Graph::new();
    let mut places = BTreeMap::new();
    let mut strays = Vec::new();
    for file in files(&src) {
        let relative = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let first = relative.split('/').next().unwrap();
        let room = first.strip_suffix(".rs").unwrap_or(first).to_string();
        if !rooms.contains(&room) {
            continue; // lib.rs and main.rs
        }
        let code = code_only(&std::fs::read_to_string(&file).unwrap());
        for name in crate_paths(&code) {
            if name == room {
                continue;
            }
            if !rooms.contains(&name) {
                strays.push(format!("{relative}: crate::{name}"));
                continue;
            }
            graph.entry(room.clone()).or_default().insert(name.clone());
            places
                .entry((room.clone(), name))
                .or_insert_with(|| relative.clone());
        }
    }
    assert!(
        strays.is_empty(),
        "inside the crate, name the room a thing lives in, not the root's re-export: {strays:#?}"
    );
    (graph, places)
}

/// The table of `docs/architecture.md`: room → the rooms it may use.
fn allowed(doc: &str) -> Graph {
    let mut table = Graph::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | `room` | what it holds | may use |
        if cells.len() < 5 || !cells[1].starts_with('`') {
            continue;
        }
        let room = cells[1].trim_matches('`').to_string();
        let uses = cells[3]
            .split(',')
            .map(|u| u.trim().trim_matches('`').to_string())
            .filter(|u| !u.is_empty() && u != "—")
            .collect();
        assert!(
            table.insert(room.clone(), uses).is_none(),
            "`{room}` is in the table twice"
        );
    }
    table
}

/// The arrows of the Mermaid picture.
fn drawn(doc: &str) -> BTreeSet<(String, String)> {
    let start = doc.find("```mermaid").expect("a ```mermaid picture");
    let body = &doc[start + 10..];
    let body = &body[..body.find("```").expect("the picture ends")];
    body.lines()
        .filter_map(|line| line.split_once("-->"))
        .map(|(from, to)| (from.trim().to_string(), to.trim().to_string()))
        .collect()
}

/// Whether `to` can be reached from `from` in `graph` by a path of two arrows or more.
fn implied(graph: &Graph, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&str> = graph[from]
        .iter()
        .filter(|n| n.as_str() != to)
        .map(String::as_str)
        .collect();
    while let Some(n) = stack.pop() {
        if n == to {
            return true;
        }
        if seen.insert(n) {
            stack.extend(graph.get(n).into_iter().flatten().map(String::as_str));
        }
    }
    false
}

/// A circle in `graph`, if there is one.
fn circle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        graph: &Graph,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(graph, next, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(graph, n, &mut Vec::new(), &mut done))
}

#[test]
fn rooms_depend_one_way_as_the_architecture_says() {
    let rooms = rooms();
    let (actual, places) = actual_arrows(&rooms);
    if let Some(c) = circle(&actual) {
        panic!("an import circle between rooms: {}", c.join(" → "));
    }

    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let table = allowed(&doc);
    let listed: BTreeSet<String> = table.keys().cloned().collect();
    assert_eq!(
        listed, rooms,
        "docs/architecture.md must list every room of src/, and only those"
    );
    for uses in table.values() {
        for used in uses {
            assert!(rooms.contains(used), "the table names `{used}`, not a room");
        }
    }
    if let Some(c) = circle(&table) {
        panic!("the table allows a circle: {}", c.join(" → "));
    }
    let mut unallowed = Vec::new();
    for (from, uses) in &actual {
        for to in uses {
            if !table[from].contains(to) {
                unallowed.push(format!(
                    "{from} → {to} ({})",
                    places[&(from.clone(), to.clone())]
                ));
            }
        }
    }
    assert!(
        unallowed.is_empty(),
        "arrows docs/architecture.md does not allow: {unallowed:#?}"
    );

    let mut wanted = BTreeSet::new();
    for (from, uses) in &table {
        for to in uses {
            if !implied(&table, from, to) {
                wanted.insert((from.clone(), to.clone()));
            }
        }
    }
    let picture = drawn(&doc);
    let missing: Vec<_> = wanted.difference(&picture).collect();
    let extra: Vec<_> = picture.difference(&wanted).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "the picture must draw the table's arrows less those a longer path implies: \
         missing {missing:?}, extra {extra:?}"
    );
}

#[test]
fn the_path_reader_reads_paths_not_text() {
    let code = code_only(
        "use crate::{error::Error, sys::{self, Deadline}};\n\
         // crate::comment\n\
         let s = \"crate::string\"; let r = r#\"crate::raw\"#; let c = '\"';\n\
         fn f<'a>(x: &'a str) { crate::output::write_line(); $crate::macro_path }",
    );
    assert_eq!(crate_paths(&code), ["error", "sys", "output"]);
}
