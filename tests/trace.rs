use std::path::Path;

use crate::support::*;

fn traced(test: Test) -> (Run, procscript::trace::Trace, String) {
    let dir = TempDir::new();
    let yaml = dir.path().join("run.yaml");
    let svg = dir.path().join("run.svg");
    let run = test
        .flags(&[
            "--trace",
            yaml.to_str().unwrap(),
            "--timeline",
            svg.to_str().unwrap(),
        ])
        .run();
    let trace = procscript::trace::read_yaml(&yaml).expect("trace written");
    let svg = std::fs::read_to_string(&svg).expect("timeline written");
    // No events file is left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    (run, trace, svg)
}

#[test]
fn trace_of_the_join_scenario_has_four_overlapping_processes() {
    let (run, trace, _) = traced(Test::new().file("scripts/join.rhai"));
    run.success().stderr_has("trace written to");
    assert_eq!(trace.processes.len(), 4);
    let main = &trace.processes[0];
    assert_eq!(main.name, "MainProcess");
    assert_eq!(main.exit.as_ref().unwrap().code, Some(0));
    let children = &trace.processes[1..];
    for child in children {
        assert_eq!(child.ppid, main.pid, "{child:?}");
        assert_eq!(child.target, "piao");
        assert_eq!(child.exit.as_ref().unwrap().code, Some(0));
        assert!(
            child.user_cpu.is_some() && child.max_rss_kib.unwrap() > 0,
            "{child:?}"
        );
    }
    // All three ran at the same time: each started before any other ended.
    let latest_start = children.iter().map(|c| c.start).fold(0.0, f64::max);
    let earliest_end = children
        .iter()
        .map(|c| c.end.unwrap())
        .fold(f64::MAX, f64::min);
    assert!(latest_start < earliest_end, "{children:?}");
    assert_eq!(trace.events.iter().filter(|e| e.event == "join").count(), 3);
    assert!(main.end.unwrap() >= children.iter().map(|c| c.end.unwrap()).fold(0.0, f64::max));
}

#[test]
fn trace_records_signals_errors_and_grandchildren() {
    let (run, trace, _) = traced(Test::new().script(
        r#"
fn grand() { sleep(30); }
fn child() {
    let g = Process(grand); g.start();
    g.kill(); g.join();
    throw "failing on purpose";
}
let p = Process(child, [], #{ name: "parent-of-grand" }); p.start(); p.join();
"#,
    ));
    run.success();
    let by_name = |name: &str| {
        trace
            .processes
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("{name}: {trace:?}"))
    };
    let child = by_name("parent-of-grand");
    let grand = by_name("Process-1:1");
    assert_eq!(grand.ppid, child.pid);
    assert_eq!(
        grand.exit.as_ref().unwrap().signal_name.as_deref(),
        Some("SIGKILL")
    );
    assert_eq!(child.exit.as_ref().unwrap().code, Some(1));
    assert!(trace
        .events
        .iter()
        .any(|e| e.event == "kill" && e.pid == grand.pid && e.by == Some(child.pid)));
}

#[test]
fn report_text_for_a_fixed_trace() {
    let run = Test::new()
        .args(&["report", "tests/fixtures/trace.yaml"])
        .run();
    run.success().stdout(
        "trace of scripts/attributes.rhai (4 processes, 5.000s)
PID  PPID  NAME               TARGET                    START    TIME     CPU  PEAK MEM  EXIT
100     1  MainProcess        scripts/attributes.rhai  0.000s  5.000s  0.016s  13.1 MiB  0
101   100  ├─ xxxxxxxx        piao                     0.004s  4.998s  0.003s   7.7 MiB  0
102   101  │  └─ Process-1:1  task                     2.003s  2.998s  0.001s   900 KiB  -SIGKILL
103   100  └─ Process-2       <closure>                0.010s  0.490s  0.000s   6.8 MiB  1
",
    );
}

#[test]
fn timeline_svg_parses_and_has_one_row_per_process() {
    let dir = TempDir::new();
    let svg = dir.path().join("t.svg");
    Test::new()
        .args(&[
            "report",
            "tests/fixtures/trace.yaml",
            "--svg",
            svg.to_str().unwrap(),
        ])
        .run()
        .success();
    let text = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("valid SVG/XML");
    let rows: Vec<_> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("process"))
        .collect();
    assert_eq!(rows.len(), 4);
    let pids: Vec<&str> = rows
        .iter()
        .map(|r| r.attribute("data-pid").unwrap())
        .collect();
    assert_eq!(pids, ["100", "101", "102", "103"], "rows follow the tree");
    let joins = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("join"))
        .count();
    assert_eq!(joins, 1);
    // Bars are coloured by how each process ended.
    for colour in ["#43a047", "#e53935", "#fb8c00"] {
        assert!(text.contains(colour), "{colour}");
    }
}

#[test]
fn report_of_a_missing_or_bad_file_is_an_error() {
    Test::new()
        .args(&["report", "/nonexistent.yaml"])
        .run()
        .code(1)
        .stderr_has("reading `/nonexistent.yaml`");
    let dir = TempDir::new();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "just: text\n").unwrap();
    assert!(Path::new(&bad).exists());
    Test::new()
        .args(&["report", bad.to_str().unwrap()])
        .run()
        .code(1)
        .stderr_has("is not a procscript trace");
}

#[test]
fn programs_run_by_run_and_pipeline_are_traced_on_one_line_each() {
    let (run, trace, _) = traced(Test::new().script(
        r#"
print(run(["sh", "-c", "exit 3"]).code);
print(pipeline([["printf", "a\nb\n"], ["wc", "-l"]]).code);
"#,
    ));
    run.success().stdout("3\n0\n");
    let programs: Vec<_> = trace.processes.iter().filter(|p| p.name == "run").collect();
    assert_eq!(programs.len(), 3, "{trace:?}");
    assert_eq!(programs[0].target, "sh -c exit 3");
    assert_eq!(programs[0].exit.as_ref().unwrap().code, Some(3));
    let report = procscript::trace::report::render(&trace);
    assert_eq!(report.lines().count(), 2 + 4, "{report}");
    assert!(report.contains("printf a\\nb\\n"), "{report}");
}
