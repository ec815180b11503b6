use std::path::Path;

use crate::support::*;

/// A trace file as any reader sees it: the YAML that `run --trace` writes
/// (`procscript_trace: 1`), read here with serde on its own, not through procscript.
#[derive(Debug, serde::Deserialize)]
struct Trace {
    procscript_trace: u32,
    processes: Vec<TracedProcess>,
    events: Vec<TraceEvent>,
}

#[derive(Debug, serde::Deserialize)]
struct TracedProcess {
    pid: i32,
    ppid: i32,
    name: String,
    target: String,
    start: f64,
    end: Option<f64>,
    exit: Option<ExitStatus>,
    user_cpu: Option<f64>,
    max_rss_kib: Option<i64>,
}

#[derive(Debug, serde::Deserialize)]
struct ExitStatus {
    code: Option<i32>,
    signal_name: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
struct TraceEvent {
    event: String,
    pid: i32,
    by: Option<i32>,
}

fn read_trace(path: &Path) -> Trace {
    let text = std::fs::read_to_string(path).expect("trace written");
    let trace: Trace = serde_yaml::from_str(&text).expect("a trace");
    assert_eq!(trace.procscript_trace, 1);
    trace
}

/// `procscript report` of a trace file: its stdout.
fn report_of(yaml: &Path) -> String {
    let run = Test::new().args(&["report", yaml.to_str().unwrap()]).run();
    run.success();
    run.stdout
}

fn traced(test: Test) -> (Run, Trace, String) {
    let (run, trace, svg, _) = traced_keeping_yaml(test);
    (run, trace, svg)
}

/// [`traced`], also giving the trace's YAML text.
fn traced_keeping_yaml(test: Test) -> (Run, Trace, String, String) {
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
    let trace = read_trace(&yaml);
    let text = std::fs::read_to_string(&yaml).unwrap();
    let svg = std::fs::read_to_string(&svg).expect("timeline written");
    // No events file is left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    (run, trace, svg, text)
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
    let (run, trace, _, yaml) = traced_keeping_yaml(Test::new().script(
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
    let dir = TempDir::new();
    let report = report_of(&dir.write("run.yaml", &yaml));
    assert_eq!(report.lines().count(), 2 + 4, "{report}");
    assert!(report.contains("printf a\\nb\\n"), "{report}");
}

/// A trace with a busy child (all its time on a CPU), a sleeping one, and a grandchild killed
/// by a signal after half its time on a CPU.
const SHADED_TRACE: &str = "procscript_trace: 1
script: shaded.rhai
duration: 2.0
processes:
- {pid: 10, ppid: 1, name: MainProcess, target: shaded.rhai, start: 0.0, end: 2.0, exit: {code: 0}, user_cpu: 0.01, sys_cpu: 0.01, max_rss_kib: 9000}
- {pid: 11, ppid: 10, name: busy, target: spin, start: 0.1, end: 1.9, exit: {code: 0}, user_cpu: 1.7, sys_cpu: 0.1, max_rss_kib: 8000}
- {pid: 13, ppid: 11, name: 'Process-1:1', target: half, start: 0.5, end: 1.5, exit: {signal: 9, signal_name: SIGKILL}, user_cpu: 0.25, sys_cpu: 0.25, max_rss_kib: 700}
- {pid: 12, ppid: 10, name: sleepy, target: nap, start: 0.1, end: 1.9, exit: {code: 0}, user_cpu: 0.0, sys_cpu: 0.0, max_rss_kib: 7000}
events:
- {t: 1.95, event: join, pid: 11, by: 10}
";

/// The timeline of [`SHADED_TRACE`]: its text and parsed attributes of each process's bar
/// and CPU fill (x, y, width, height), by pid.
fn shaded_timeline(dir: &TempDir) -> (String, std::path::PathBuf) {
    let yaml = dir.write("shaded.yaml", SHADED_TRACE);
    let svg = dir.path().join("shaded.svg");
    Test::new()
        .args(&[
            "report",
            yaml.to_str().unwrap(),
            "--svg",
            svg.to_str().unwrap(),
        ])
        .run()
        .success();
    (std::fs::read_to_string(&svg).unwrap(), svg)
}

fn rect_of(doc: &roxmltree::Document, pid: &str, class: &str) -> Option<[f64; 4]> {
    let group = doc.descendants().find(|n| {
        n.attribute("class") == Some("process") && n.attribute("data-pid") == Some(pid)
    })?;
    let rect = group
        .children()
        .find(|n| n.attribute("class") == Some(class))?;
    let num = |a: &str| rect.attribute(a).unwrap().parse::<f64>().unwrap();
    Some([num("x"), num("y"), num("width"), num("height")])
}

#[test]
fn timeline_shows_the_tree_cpu_share_and_hover_details() {
    let dir = TempDir::new();
    let (text, _) = shaded_timeline(&dir);
    let doc = roxmltree::Document::parse(&text).expect("valid SVG/XML");
    // The tree: children's labels indented under their parent's, with connectors.
    let label_x = |pid: &str| {
        doc.descendants()
            .find(|n| n.attribute("data-pid") == Some(pid))
            .and_then(|g| g.children().find(|c| c.has_tag_name("text")))
            .and_then(|t| t.attribute("x"))
            .and_then(|x| x.parse::<f64>().ok())
            .unwrap()
    };
    assert!(label_x("11") > label_x("10"));
    assert!(label_x("13") > label_x("11"));
    assert_eq!(label_x("12"), label_x("11"));
    let connectors = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("tree"))
        .flat_map(|g| g.children().filter(|c| c.has_tag_name("path")))
        .count();
    assert_eq!(connectors, 3, "one per child");
    // The CPU share fills the bar from below: all of the busy one, none of the sleeper.
    let bar = rect_of(&doc, "11", "bar").unwrap();
    let busy = rect_of(&doc, "11", "cpu").unwrap();
    assert_eq!((busy[1], busy[3]), (bar[1], bar[3]));
    assert_eq!(rect_of(&doc, "12", "cpu").unwrap()[3], 0.0);
    let half = rect_of(&doc, "13", "cpu").unwrap();
    assert!((half[3] * 2.0 - bar[3]).abs() < 0.01, "{half:?}");
    // Hover text: parent, target, CPU time and peak memory.
    let title = doc
        .descendants()
        .find(|n| n.attribute("data-pid") == Some("13"))
        .and_then(|g| g.descendants().find(|n| n.has_tag_name("title")))
        .and_then(|t| t.text())
        .unwrap()
        .to_string();
    for part in [
        "Process-1:1 pid 13",
        "child of busy (11)",
        "ran half",
        "exit -SIGKILL",
        "CPU 0.500s (50% of its time",
        "peak memory 700 KiB",
    ] {
        assert!(title.contains(part), "{part:?} not in {title:?}");
    }
}

/// Chromium from Debian's packages, if installed.
fn chromium() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|p| p.is_file())
}

/// One pixel of an RGBA image.
fn pixel(image: &[u8], width: usize, x: f64, y: f64) -> [u8; 3] {
    let at = (y as usize * width + x as usize) * 4;
    [image[at], image[at + 1], image[at + 2]]
}

fn near(actual: [u8; 3], expected: [u8; 3]) -> bool {
    actual
        .iter()
        .zip(expected)
        .all(|(a, e)| (i32::from(*a) - i32::from(e)).abs() <= 24)
}

#[test]
fn timeline_renders_in_a_real_browser() {
    let Some(browser) = chromium() else {
        let why = "SKIPPED timeline_renders_in_a_real_browser: no `chromium` on PATH \
                   (install it with `apt-get install -y chromium`)";
        assert!(
            std::env::var_os("PROCSCRIPT_REQUIRE_BROWSER").is_none_or(|v| v != "1"),
            "{why}, and PROCSCRIPT_REQUIRE_BROWSER=1 requires it"
        );
        // Straight to stderr: the test harness does not capture this, so it is seen.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("\n!!! {why} !!!\n").as_bytes(),
        );
        return;
    };
    let dir = TempDir::new();
    let (text, svg) = shaded_timeline(&dir);
    let doc = roxmltree::Document::parse(&text).unwrap();
    let root = doc.root_element();
    let width: usize = root.attribute("width").unwrap().parse().unwrap();
    let height: usize = root.attribute("height").unwrap().parse().unwrap();
    let png_path = dir.path().join("shot.png");
    let profile = dir.path().join("chromium-profile");
    let child = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png_path.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("file://{}", svg.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let output = wait_with_timeout(child, std::time::Duration::from_secs(90));
    assert!(
        output.status.success() && png_path.exists(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let file = std::io::BufReader::new(std::fs::File::open(&png_path).unwrap());
    let mut decoder = png::Decoder::new(file);
    decoder.set_transformations(
        png::Transformations::normalize_to_color8() | png::Transformations::ALPHA,
    );
    let mut reader = decoder.read_info().unwrap();
    let mut image = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut image).unwrap();
    assert_eq!(
        (info.width as usize, info.height as usize),
        (width, height),
        "the screenshot has the picture's size"
    );
    assert_eq!(info.color_type, png::ColorType::Rgba);
    let at = |x: f64, y: f64| pixel(&image, width, x, y);
    let centre = |r: [f64; 4], dy: f64| at(r[0] + r[2] / 2.0, r[1] + r[3] * dy);
    const WHITE: [u8; 3] = [255, 255, 255];
    const GREEN: [u8; 3] = [0x43, 0xa0, 0x47];
    const PALE_GREEN: [u8; 3] = [189, 222, 191];
    const RED: [u8; 3] = [0xe5, 0x39, 0x35];
    const PALE_RED: [u8; 3] = [246, 186, 184];
    assert!(near(at(3.0, 3.0), WHITE), "background {:?}", at(3.0, 3.0));
    let busy = rect_of(&doc, "11", "bar").unwrap();
    let sleepy = rect_of(&doc, "12", "bar").unwrap();
    let half = rect_of(&doc, "13", "bar").unwrap();
    assert!(
        near(centre(busy, 0.5), GREEN),
        "busy bar {:?}",
        centre(busy, 0.5)
    );
    assert!(
        near(centre(sleepy, 0.5), PALE_GREEN),
        "sleeping bar {:?}",
        centre(sleepy, 0.5)
    );
    assert!(
        near(centre(half, 0.8), RED),
        "lower half {:?}",
        centre(half, 0.8)
    );
    assert!(
        near(centre(half, 0.2), PALE_RED),
        "upper half {:?}",
        centre(half, 0.2)
    );
    // Text was drawn: dark pixels in each row's label.
    for pid in ["10", "11", "12", "13"] {
        let bar = rect_of(&doc, pid, "bar").unwrap();
        let dark = (16..280).any(|x| {
            (bar[1] as usize..(bar[1] + bar[3]) as usize)
                .any(|y| at(x as f64, y as f64).iter().all(|c| *c < 100))
        });
        assert!(dark, "no label text drawn on the row of pid {pid}");
    }
    // The tree connector: grey pixels left of the children's labels.
    let trunk = (14..26).any(|x| {
        (busy[1] as usize..(busy[1] + busy[3]) as usize).any(|y| {
            let p = at(x as f64, y as f64);
            p[0] < 235 && p[0] > 100 && p[0].abs_diff(p[1]) < 12 && p[1].abs_diff(p[2]) < 12
        })
    });
    assert!(trunk, "no grey connector beside the busy child's label");
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
    read_trace(&yaml);
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
