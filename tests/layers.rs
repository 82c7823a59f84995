//! The layering `src/lib.rs` declares holds: no module imports from a layer
//! above it or from a peer on its own layer. The order is read from the
//! numbered list in `lib.rs`'s doc comment, so it is declared once.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Module name → layer number, from lines `//! N. [`a`], [`b`]: …`.
fn layers(lib: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.strip_prefix("//! ") else {
            continue;
        };
        let Some((num, rest)) = rest.split_once(". ") else {
            continue;
        };
        let Ok(n) = num.trim().parse::<usize>() else {
            continue;
        };
        let head = rest.split(':').next().unwrap_or("");
        for part in head.split("[`").skip(1) {
            let name = part.split('`').next().unwrap_or("");
            out.insert(name.to_string(), n);
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level modules a source text names through `crate::`, each with
/// its line, grouped imports (`crate::{a::X,\n b}`) expanded.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let line_of = |at: usize| text[..at].matches('\n').count() + 1;
    let mut found = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            found.push((line_of(at), ident(rest)));
            continue;
        };
        // The group's top-level items, up to its matching brace.
        let (mut depth, mut item_start) = (0usize, 0usize);
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' | ',' if depth == 0 => {
                    let item = &group[item_start..i];
                    let skip = item.len() - item.trim_start().len();
                    let name = ident(item.trim_start());
                    if !name.is_empty() {
                        found.push((line_of(at + 8 + item_start + skip), name));
                    }
                    item_start = i + 1;
                    if c == '}' {
                        break;
                    }
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
    }
    found
}

#[test]
fn lower_layers_never_import_higher_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = fs::read_to_string(root.join("lib.rs")).unwrap();
    let order = layers(&lib);
    assert!(order.len() >= 10, "lib.rs lists the layers: {order:?}");

    // Every module lib.rs declares has a layer.
    for line in lib.lines() {
        if let Some(m) = line.strip_prefix("pub mod ") {
            let m = m.trim_end_matches(';');
            assert!(
                order.contains_key(m),
                "module `{m}` has no layer in lib.rs's list"
            );
        }
    }

    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut violations = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&root).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let Some(&mine) = order.get(&top) else {
            continue;
        }; // main.rs, lib.rs
        let text = fs::read_to_string(f).unwrap();
        for (line, target) in crate_paths(&text) {
            let Some(&theirs) = order.get(&target) else {
                violations.push(format!(
                    "{}:{line}: crate::{target} is no module",
                    rel.display()
                ));
                continue;
            };
            if target != top && theirs >= mine {
                violations.push(format!(
                    "{}:{line}: `{top}` (layer {mine}) imports `{target}` (layer {theirs})",
                    rel.display()
                ));
            }
        }
        if text.contains("super::super::super") {
            violations.push(format!(
                "{}: super::super::super reaches out of its module",
                rel.display()
            ));
        }
    }
    assert!(
        violations.is_empty(),
        "layering violations:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_grouped_and_plain_paths() {
    let paths = crate_paths("use crate::{engine::{X, Y},\n    wire};\nlet x = crate::policy::y();");
    assert_eq!(
        paths,
        [
            (1, "engine".to_string()),
            (2, "wire".to_string()),
            (3, "policy".to_string())
        ]
    );
    let order = layers("//! 1. [`base`]: x\n//! 2. [`a`], [`b`]: y [`not`]\n");
    assert_eq!(order.get("b"), Some(&2));
    assert_eq!(order.get("not"), None);
}
