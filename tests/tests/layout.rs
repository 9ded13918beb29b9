//! The host's module layout: no module imports a module that imports it
//! back, directly or through others (host/src/lib.rs describes the layers).
//! Read from the source: every `crate::a::b` and `super::x` path outside
//! `#[cfg(test)]`, resolved to the deepest module file that exists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`plugin::runtime`) → its file's text, tests cut off.
fn modules(src: &Path) -> BTreeMap<String, (bool, String)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            let is_mod = parts.last().is_some_and(|p| p == "mod");
            if is_mod {
                parts.pop();
            }
            if parts == ["main"] || parts == ["lib"] {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let text = text.split("#[cfg(test)]").next().unwrap().to_string();
            out.insert(parts.join("::"), (is_mod, text));
        }
    }
    out
}

/// The paths after `prefix` in `text`: `a::b::c` for `prefix` `crate::`.
fn paths_after<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let before_ok = i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric() && rest.as_bytes()[i - 1] != b'_';
        rest = &rest[i + prefix.len()..];
        let end = rest.find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == ':')).unwrap_or(rest.len());
        if before_ok {
            found.push(rest[..end].trim_end_matches(':'));
        }
    }
    found
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let src = runnel_tests::repo_root().join("host/src");
    let modules = modules(&src);
    let resolve = |path: &str| -> Option<String> {
        let segs: Vec<&str> = path.split("::").collect();
        (1..=segs.len()).rev().map(|i| segs[..i].join("::")).find(|c| modules.contains_key(c))
    };
    let mut graph: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (name, (is_mod, text)) in &modules {
        let parent = name.rsplit_once("::").map(|(p, _)| p).unwrap_or("");
        // `super::` in `a/mod.rs` is a's parent; in `a/b.rs`, it is `a`.
        let sup = if *is_mod { parent } else { name.rsplit_once("::").map(|(p, _)| p).unwrap_or("") };
        let mut deps: BTreeSet<String> = paths_after(text, "crate::").into_iter().filter_map(&resolve).collect();
        for p in paths_after(text, "super::") {
            let full = if sup.is_empty() { p.to_string() } else { format!("{sup}::{p}") };
            deps.extend(resolve(&full));
        }
        // A module and its own submodules or ancestors are one unit here.
        deps.retain(|d| d != name && !d.starts_with(&format!("{name}::")) && !name.starts_with(&format!("{d}::")));
        graph.insert(name, deps);
    }
    let mut circles = Vec::new();
    for start in graph.keys() {
        // Depth-first from `start`, looking for a way back to it.
        let mut stack: Vec<Vec<&str>> = vec![vec![start]];
        let mut seen = BTreeSet::new();
        while let Some(path) = stack.pop() {
            let last = *path.last().unwrap();
            for d in graph.get(last).into_iter().flatten() {
                if d == start {
                    circles.push(format!("{} -> {start}", path.join(" -> ")));
                } else if seen.insert(d.clone()) {
                    let mut next = path.clone();
                    next.push(d);
                    stack.push(next);
                }
            }
        }
    }
    assert!(circles.is_empty(), "modules that import each other (move the shared types into a leaf module):\n{}", circles.join("\n"));
    assert!(graph.len() > 20, "the host's modules were found: {:?}", graph.keys().collect::<Vec<_>>());
}
