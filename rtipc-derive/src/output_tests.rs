//! Expected-output tests of the expansion, as zerocopy-derive has them.
//!
//! Each `tests/expand/NAME.rs` holds one item as the derive receives it (the item without its
//! own `#[derive(Object)]`), and `tests/expand/NAME.expanded.rs` what the derive emits for it,
//! pretty-printed. Any change of the expansion fails the test; after a deliberate change, run
//! it with `RTIPC_BLESS=1` to rewrite the expected files, and review their diff.

use std::fs;
use std::path::{Path, PathBuf};

/// The directory of the inputs and expected outputs.
fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expand")
}

/// The pretty-printed expansion of the item in `source`.
fn expand(source: &str) -> Result<String, String> {
    let input: syn::DeriveInput = syn::parse_str(source).map_err(|e| format!("input: {e}"))?;
    let tokens = crate::derive(&input).map_err(|e| format!("derive refused the input: {e}"))?;
    let file: syn::File = syn::parse2(tokens).map_err(|e| format!("expansion: {e}"))?;
    Ok(prettyplease::unparse(&file))
}

/// The first line where `expected` and `actual` differ, to show in a failure.
fn first_difference(expected: &str, actual: &str) -> String {
    let mut expected_lines = expected.lines();
    let mut actual_lines = actual.lines();
    for line in 1.. {
        match (expected_lines.next(), actual_lines.next()) {
            (Some(e), Some(a)) if e == a => continue,
            (None, None) => break,
            (e, a) => {
                return format!(
                    "line {line}:\n  expected: {}\n  actual:   {}",
                    e.unwrap_or("<end of file>"),
                    a.unwrap_or("<end of file>")
                )
            }
        }
    }
    "only in line endings".to_owned()
}

#[test]
fn expansions_match_the_expected_files() {
    let bless = std::env::var_os("RTIPC_BLESS").is_some_and(|value| value == "1");
    let mut inputs = Vec::new();
    let mut expected_files = Vec::new();
    for entry in fs::read_dir(dir()).expect("tests/expand exists") {
        let path = entry.expect("tests/expand is readable").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".expanded.rs") {
            expected_files.push(path);
        } else if name.ends_with(".rs") {
            inputs.push(path);
        }
    }
    inputs.sort();
    assert!(!inputs.is_empty(), "no inputs in {}", dir().display());

    let mut failures = Vec::new();
    for input in &inputs {
        let expected_path = input.with_extension("expanded.rs");
        expected_files.retain(|path| *path != expected_path);
        let source = fs::read_to_string(input).expect("input is readable");
        let actual = match expand(&source) {
            Ok(actual) => actual,
            Err(error) => {
                failures.push(format!("{}: {error}", input.display()));
                continue;
            }
        };
        if bless {
            fs::write(&expected_path, &actual).expect("expected file is writable");
            continue;
        }
        match fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{} differs from the expansion, at {}",
                expected_path.display(),
                first_difference(&expected, &actual)
            )),
            Err(error) => failures.push(format!("{}: {error}", expected_path.display())),
        }
    }
    for orphan in expected_files {
        failures.push(format!("{} has no input", orphan.display()));
    }
    assert!(
        failures.is_empty(),
        "{}\n\nIf the change is intended, run with RTIPC_BLESS=1 and review the diff.",
        failures.join("\n")
    );
}
