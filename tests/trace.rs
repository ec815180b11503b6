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

/// A synthetic trace: `n` processes, each the child of the one before when `chain`, else all
/// children of the first.
fn synthetic_trace(n: usize, chain: bool) -> String {
    let mut text =
        String::from("procscript_trace: 1\nscript: synthetic\nduration: 1.0\nprocesses:\n");
    for pid in 1..=n {
        let ppid = if chain || pid == 1 { pid - 1 } else { 1 };
        text.push_str(&format!(
            "- {{pid: {pid}, ppid: {ppid}, name: p{pid}, target: t, start: 0.0, end: 0.5, \
             exit: {{code: 0}}}}\n"
        ));
    }
    text.push_str("events: []\n");
    text
}

/// Issue 10, item 8: `report | head` ends quietly with exit 0 (as ripgrep does) instead of
/// panicking with exit 101 when the reader goes.
#[test]
fn report_into_a_reader_that_stops_early_exits_quietly() {
    let dir = TempDir::new();
    let path = dir.write("wide.yaml", &synthetic_trace(5000, false));
    let mut child = std::process::Command::new(BIN)
        .args(["report", path.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    assert_eq!(first, "trace of synthetic (5000 processes, 1.000s)\n");
    drop(stdout); // like `head -1`: 5000 lines are far more than a pipe holds
    let output = wait_with_timeout(child, BACKSTOP);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(stderr, "");
}

/// A time that is not a finite number is an error naming the field, before any drawing
/// (`duration: .inf` with `--svg` used to grow memory without bound).
#[test]
fn report_of_a_trace_with_infinite_or_nan_times_names_the_field() {
    let dir = TempDir::new();
    let good = synthetic_trace(3, true);
    for (bad, field) in [
        (
            good.replace("duration: 1.0", "duration: .inf"),
            "`duration` is inf",
        ),
        (
            good.replacen("start: 0.0", "start: .nan", 2),
            "`processes[0].start` is NaN",
        ),
        (
            good.replace("end: 0.5", "end: -.inf"),
            "`processes[0].end` is -inf",
        ),
    ] {
        let path = dir.write("bad.yaml", &bad);
        let svg = dir.path().join("bad.svg");
        Test::new()
            .args(&[
                "report",
                path.to_str().unwrap(),
                "--svg",
                svg.to_str().unwrap(),
            ])
            .run()
            .code(1)
            .stdout("")
            .stderr_has(field);
        assert!(!svg.exists());
    }
}

/// A 100,000-deep parent chain and a parent-pid cycle both render: every process listed,
/// the deep rows with their depth as a number instead of 100,000 levels of guides.
#[test]
fn report_of_a_deep_chain_and_of_a_cycle_lists_every_process() {
    let dir = TempDir::new();
    let deep = dir.write("deep.yaml", &synthetic_trace(100_000, true));
    let run = Test::new().args(&["report", deep.to_str().unwrap()]).run();
    run.success();
    assert_eq!(run.stdout.lines().count(), 100_002);
    assert!(
        run.stdout.contains("[99999] "),
        "deepest row shows its depth"
    );
    assert!(
        run.stdout.len() < 100_000 * 200,
        "{} bytes",
        run.stdout.len()
    );
    let cycle = "procscript_trace: 1\nscript: c\nduration: 1.0\nprocesses:\n\
        - {pid: 1, ppid: 0, name: main, target: t, start: 0.0}\n\
        - {pid: 5, ppid: 6, name: five, target: t, start: 0.5}\n\
        - {pid: 6, ppid: 5, name: six, target: t, start: 0.5}\n\
        events: []\n";
    let path = dir.write("cycle.yaml", cycle);
    let svg = dir.path().join("cycle.svg");
    let run = Test::new()
        .args(&[
            "report",
            path.to_str().unwrap(),
            "--svg",
            svg.to_str().unwrap(),
        ])
        .run();
    run.success()
        .stdout_has("five")
        .stdout_has("six")
        .stdout_has("note: the parent pids of some processes form a cycle; listed from pid 5");
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(picture.matches("class=\"process\"").count(), 3);
}

/// Issue 10, item 11: `run --trace x.rhai x.rhai` (or `--timeline`) refuses before running,
/// and the script is left as it was.
#[test]
fn trace_or_timeline_over_the_script_being_run_is_refused() {
    for flag in ["--trace", "--timeline"] {
        let dir = TempDir::new();
        let script = dir.write("self.rhai", "print(\"ran\");\n");
        let run = Test::new()
            .args(&[
                "run",
                flag,
                script.to_str().unwrap(),
                script.to_str().unwrap(),
            ])
            .run();
        run.code(1).stdout("").stderr_has(&format!(
            "refusing to write the {} to `{}`",
            &flag[2..],
            script.display()
        ));
        assert_eq!(
            std::fs::read_to_string(&script).unwrap(),
            "print(\"ran\");\n"
        );
    }
}

/// Outputs are written to a new file and renamed into place: a symlink at the output path is
/// replaced, and the file it pointed at is untouched.
#[test]
fn trace_and_timeline_replace_a_symlink_instead_of_following_it() {
    let dir = TempDir::new();
    let victim = dir.write("victim.txt", "precious\n");
    let yaml = dir.path().join("run.yaml");
    let svg = dir.path().join("run.svg");
    std::os::unix::fs::symlink(&victim, &yaml).unwrap();
    std::os::unix::fs::symlink(&victim, &svg).unwrap();
    Test::new()
        .flags(&[
            "--trace",
            yaml.to_str().unwrap(),
            "--timeline",
            svg.to_str().unwrap(),
        ])
        .script("print(1);")
        .run()
        .success()
        .stdout("1\n");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    for path in [&yaml, &svg] {
        let meta = std::fs::symlink_metadata(path).unwrap();
        assert!(meta.file_type().is_file(), "{path:?} is now a plain file");
    }
    procscript::trace::read_yaml(&yaml).expect("the trace is in place");
    // Nothing else is left in the directory: no temporary file, no events file.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["run.svg", "run.yaml", "victim.txt"]);
}

/// The events file lives in a private `mkdtemp` directory and is unlinked (directory and
/// all) as soon as it is open: during the run no name exists for anyone to open or replace,
/// and a SIGKILLed run leaves nothing behind, neither in the temporary directory nor next to
/// the output.
#[test]
fn the_events_file_has_no_name_and_nothing_survives_sigkill() {
    let tmp = TempDir::new();
    let out = TempDir::new();
    let yaml = out.path().join("run.yaml");
    let test = Test::new()
        .env("TMPDIR", tmp.path().to_str().unwrap())
        .flags(&["--trace", yaml.to_str().unwrap()])
        .script("let p = spawn input(\"\"); print(\"ready\"); input(\"\"); p.join();")
        .stdin("");
    let mut cmd = test.command();
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let _stdin = child.stdin.take().unwrap(); // kept open: the script waits
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let lines = read_until(&mut stdout, |l| l == "ready");
    assert_eq!(lines, ["ready"]);
    let listing = |path: &Path| -> Vec<String> {
        std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert!(listing(tmp.path()).is_empty(), "{:?}", listing(tmp.path()));
    assert!(listing(out.path()).is_empty(), "{:?}", listing(out.path()));
    // The process holds the events file open, with no name left.
    let held: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", child.id()))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
        .map(|t| t.to_string_lossy().into_owned())
        .filter(|t| t.contains("procscript-trace-"))
        .collect();
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(held[0].ends_with("/events (deleted)"), "{held:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(listing(tmp.path()).is_empty(), "{:?}", listing(tmp.path()));
    assert!(listing(out.path()).is_empty(), "{:?}", listing(out.path()));
}
