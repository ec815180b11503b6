//! The bundled scripts in `scripts/`: each compiles, and each tutorial scenario behaves as
//! the Python does.

use std::time::Duration;

use crate::support::*;

#[test]
fn every_bundled_script_compiles() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rhai") {
            Test::new()
                .args(&["check", path.to_str().unwrap()])
                .run()
                .success();
            count += 1;
        }
    }
    assert!(count >= 6, "only {count} scripts");
}

#[test]
fn scenario_1_ids() {
    let run = Test::new()
        .file("scripts/ids.rhai")
        .script_args(&["0"])
        .run();
    run.success();
    let line = run.stdout.trim_end();
    let ids: Vec<u32> = line.split(' ').map(|n| n.parse().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{line}");
    assert_eq!(
        ids[1],
        std::process::id(),
        "parent of the script is the test process"
    );
}

#[test]
fn scenario_3_start_target() {
    let run = Test::new().file("scripts/start_target.rhai").run();
    run.success();
    assert_eq!(
        run.sorted_lines(),
        vec!["safly1 is running", "safly2 is running", "主"]
    );
    assert!(
        run.elapsed >= Duration::from_millis(1900),
        "program ended before its children: {:?}",
        run.elapsed
    );
}

#[test]
fn scenario_4_subclass() {
    let run = Test::new().file("scripts/subclass.rhai").run();
    run.success().stdout("主\nsafly is running\n");
    assert!(
        run.elapsed >= Duration::from_millis(2900),
        "{:?}",
        run.elapsed
    );
}

#[test]
fn scenario_5_attributes_and_grandchild() {
    let run = Test::new().file("scripts/attributes.rhai").run();
    run.success();
    let lines = run.lines();
    // Parent and child print concurrently: check each process's own order, not the mix.
    let is_child_line = |l: &&str| l.starts_with("alex ") || *l == "孙子运行了";
    let parent: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !is_child_line(l))
        .collect();
    let child: Vec<&str> = lines.iter().copied().filter(is_child_line).collect();
    assert_eq!(parent.len(), 4, "{}", run.stdout);
    assert_eq!(parent[0], "xxxxxxxx");
    assert!(parent[1].parse::<u32>().is_ok(), "pid line {:?}", parent[1]);
    assert_eq!(parent[2..], ["true", "主"]);
    assert_eq!(child, ["alex is piaoing", "alex is done", "孙子运行了"]);
    // The child waits for its grandchild, and the program for the child.
    assert!(
        run.elapsed >= Duration::from_millis(3900),
        "{:?}",
        run.elapsed
    );
}

fn check_join_output(run: &Run) {
    run.success();
    let lines = run.lines();
    assert_eq!(lines.len(), 7, "{}", run.stdout);
    assert!(
        lines[6].starts_with("主"),
        "主 must come last: {}",
        run.stdout
    );
    for name in ["alex", "wxx", "yxx"] {
        let start = lines
            .iter()
            .position(|l| *l == format!("{name} is piaoing"))
            .unwrap();
        let done = lines
            .iter()
            .position(|l| *l == format!("{name} is done"))
            .unwrap();
        assert!(start < done);
    }
    // All three ran at once: the run costs the longest child (at most 3 s), not the sum.
    assert!(
        run.elapsed < Duration::from_millis(5500),
        "{:?}",
        run.elapsed
    );
}

#[test]
fn scenario_6_join() {
    check_join_output(&Test::new().file("scripts/join.rhai").run());
}

#[test]
fn scenario_6_join_as_two_loops() {
    let run = Test::new().file("scripts/join_loop.rhai").run();
    check_join_output(&run);
    run.stdout_has("the longest child, not the sum");
}
