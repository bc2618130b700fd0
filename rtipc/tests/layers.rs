//! The layers of `rtipc/src` import only downwards (ARCHITECTURE.md): this test reads every
//! source file and fails on any `crate::` path that points at a higher layer, or from one
//! channel kind into another.

use std::path::{Path, PathBuf};

/// The layers, lowest first. Modules on the same rank may not import each other unless they
/// are the same module.
const LAYERS: &[&[&str]] = &[
    &["sync", "sys"],
    &["schema"],
    &["layout"],
    &["error"],
    &["segment"],
    &["state", "queue", "region", "record"],
    &["notify", "observe"],
    &["handshake", "inspect"],
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`state/producer.rs` -> `state`), or `None` for
/// `lib.rs`, the facade above every layer.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    match first.as_str() {
        "lib.rs" => None,
        f => Some(f.trim_end_matches(".rs").to_owned()),
    }
}

/// Every module named right after `crate::` in `text`, including inside `use crate::{a, b}`
/// groups. Comments are skipped.
fn imports(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        found.push((n + 1, name));
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push((n + 1, name));
                }
            }
        }
    }
    found
}

#[test]
fn no_layer_imports_a_higher_one() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() > 20, "found only {} source files", files.len());
    let mut violations = Vec::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        let own = rank(&module)
            .unwrap_or_else(|| panic!("{}: module `{module}` has no layer", file.display()));
        let text = std::fs::read_to_string(file).unwrap();
        for (line, target) in imports(&text) {
            // Items of the facade used in docs and tests (`crate::Object`, `crate::Error`)
            // resolve to re-exports; only module paths are layered.
            let Some(theirs) = rank(&target) else {
                continue;
            };
            if theirs > own || (theirs == own && target != module) {
                violations.push(format!(
                    "{}:{line}: `{module}` imports `crate::{target}`",
                    file.strip_prefix(&src).unwrap().display()
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports that point up a layer:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_check_sees_an_upward_import() {
    let found = imports(
        "use crate::{layout::X, segment::Y};\nlet a = crate::notify::Wait; // crate::handshake",
    );
    let names: Vec<&str> = found.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["layout", "segment", "notify"]);
}
