//! The documentation tells the truth: the reference is generated from the code, and every
//! ```` ```rhai ```` example in README.md and docs/ runs.

use std::path::Path;

use crate::support::*;

#[test]
fn reference_is_current() {
    let run = Test::new()
        .args(&["doc", "--check", "--out", "docs/reference.md"])
        .run();
    assert_eq!(
        run.code,
        Some(0),
        "docs/reference.md is out of date: run `procscript doc --out docs/reference.md`\n{}",
        run.stderr
    );
}

#[test]
fn doc_check_runs_the_examples_of_the_from_python_page() {
    let run = Test::new()
        .args(&["doc", "--check", "docs/from-python.md"])
        .run();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/from-python.md"))
            .unwrap();
    // Rows with Python code in the first column: each has its procscript twin beside it.
    let rows = text.lines().filter(|l| l.starts_with("| `")).count();
    assert!(rows >= 60, "only {rows} rows");
}

/// Every ```` ```rhai ```` block of README.md and docs/, and every row of the `| Python |
/// procscript |` tables, runs: `procscript doc --check` runs them all, each in its own
/// `procscript run`, and names the ones that fail.
#[test]
fn every_rhai_example_in_the_docs_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec!["README.md".to_string()];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(format!(
                "docs/{}",
                path.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    let blocks: usize = files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(root.join(f)).unwrap();
            text.lines().filter(|l| l.trim() == "```rhai").count()
        })
        .sum();
    assert!(blocks >= 10, "only {blocks} examples found");
    let mut args = vec!["doc", "--check"];
    args.extend(files.iter().map(String::as_str));
    let run = Test::new().args(&args).run();
    assert_eq!(run.code, Some(0), "examples failed:\n{}", run.stderr);
}
