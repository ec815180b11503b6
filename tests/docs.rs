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
    let rows = procscript::reference::table_examples(&text);
    assert!(rows.len() >= 60, "only {} rows", rows.len());
}

#[test]
fn every_rhai_example_in_the_docs_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    let mut examples = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (index, code) in procscript::reference::rhai_examples(&text)
            .into_iter()
            .enumerate()
        {
            examples.push((format!("{} example {}", file.display(), index + 1), code));
        }
        for (index, code) in procscript::reference::table_examples(&text)
            .into_iter()
            .enumerate()
        {
            examples.push((format!("{} table row {}", file.display(), index + 1), code));
        }
    }
    assert!(
        examples.len() >= 10,
        "only {} examples found",
        examples.len()
    );
    // Run them all at once: several sleep for a few seconds, like the scenarios they show.
    let running: Vec<(String, String, std::process::Child)> = examples
        .into_iter()
        .map(|(name, code)| {
            let test = Test::new().script(&code);
            let child = test.spawn();
            // Keep the temp dir alive until the run ends by leaking the builder.
            std::mem::forget(test);
            (name, code, child)
        })
        .collect();
    for (name, code, child) in running {
        let output = wait_with_timeout(child, std::time::Duration::from_secs(60));
        assert!(
            output.status.success(),
            "{name} failed:\n{code}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
