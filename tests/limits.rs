//! No orphans (`die_with_parent`, daemons), `--max-procs`, and per-process resource limits.

use std::io::BufReader;
use std::time::Duration;

use crate::support::*;

#[test]
fn daemons_and_die_with_parent_children_die_when_the_parent_is_killed() {
    let test = Test::new().script(
        r#"
let d = Process(|| sleep(60), [], #{ daemon: true });
let w = Process(|| sleep(60), [], #{ die_with_parent: true });
let orphan = Process(|| sleep(60));
d.start(); w.start(); orphan.start();
print(`${d.pid} ${w.pid} ${orphan.pid}`);
print("ready");
sleep(60);
"#,
    );
    let mut child = test.spawn();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let lines = read_until(&mut out, |l| l == "ready");
    let pids: Vec<u32> = lines[0].split(' ').map(|p| p.parse().unwrap()).collect();
    child.kill().unwrap(); // SIGKILL: no handler, no cleanup in the parent
    child.wait().unwrap();
    assert!(
        eventually(Duration::from_secs(5), || !alive(pids[0])
            && !alive(pids[1])),
        "{pids:?}"
    );
    // A plain child outlives its parent (as in Python): clean it up ourselves.
    assert!(alive(pids[2]));
    // SAFETY: plain kill(2) on a pid this test saw its script start.
    unsafe { libc::kill(pids[2] as i32, libc::SIGKILL) };
}

#[test]
fn max_procs_caps_live_children_and_joining_makes_room() {
    Test::new()
        .flags(&["--max-procs", "2"])
        .script(
            r#"
let ps = [];
for i in 0..3 {
    try { let p = Process(|| sleep(0.3)); p.start(); ps.push(p); } catch (e) { print(`${e.kind}: ${e.message}`); }
}
for p in ps { p.join(); }
let q = spawn 1;
print(q.join());
"#,
        )
        .run()
        .success()
        .stdout(
            "ProcessError: cannot start `Process-3`: this process already has 2 live children, \
             the most allowed (--max-procs 2); join some first\n0\n",
        );
}

#[test]
fn max_procs_stops_a_fork_bomb() {
    let run = Test::new()
        .flags(&["--max-procs", "3"])
        .script(
            r#"
let started = 0;
try { loop { spawn sleep(0.2); started += 1; } } catch (e) { print(`${started} ${e.kind}`); }
"#,
        )
        .run();
    run.success().stdout("3 ProcessError\n");
}

#[test]
fn a_child_past_its_cpu_limit_ends_by_sigxcpu_and_the_parent_carries_on() {
    let run = Test::new()
        .script(
            r#"
let p = Process(|| { let i = 0; loop { i += 1; } }, [], #{ limits: #{ cpu_secs: 1 } });
p.start();
print(p.join());
print("parent carries on");
"#,
        )
        .run();
    run.success().stdout("-24\nparent carries on\n");
    assert!(run.elapsed < Duration::from_secs(30), "{:?}", run.elapsed);
}

#[test]
fn a_child_past_its_memory_limit_fails_and_the_parent_carries_on() {
    let run = Test::new()
        .script(
            r#"
let p = Process(|| { let s = "xxxxxxxxxxxxxxxx"; loop { s += s; } }, [], #{ limits: #{ memory_bytes: 256 * 1024 * 1024 } });
p.start();
print(p.join());
print("parent carries on");
"#,
        )
        .run();
    run.success()
        .stdout("-6\nparent carries on\n")
        .stderr_has("memory allocation");
}

#[test]
fn a_child_past_its_open_files_limit_gets_a_catchable_error() {
    Test::new()
        .script(
            r#"
let p = Process(|| {
    let keep = [];
    try { for i in 0..100 { keep.push(socket()); } } catch (e) { print(`${e.kind} ${e.errno}`); }
}, [], #{ limits: #{ open_files: 16 } });
p.start();
print(p.join());
"#,
        )
        .run()
        .success()
        .stdout("OSError 24\n0\n");
}

#[test]
fn bad_limits_are_catchable_errors() {
    Test::new()
        .script(
            r#"
for limits in [#{ cpu: 1 }, #{ cpu_secs: -1 }, #{ open_files: "many" }, 5] {
    try { Process(|| 0, [], #{ limits: limits }); } catch (e) { print(e.kind); }
}
try { Process(|| 0, [], #{ die_with_parent: "yes" }); } catch (e) { print(e.kind); }
"#,
        )
        .run()
        .success()
        .stdout("ValueError\nValueError\nTypeError\nTypeError\nTypeError\n");
}
