use std::io::BufReader;
use std::time::Duration;

use crate::support::*;

#[test]
fn target_by_name_fn_and_closure_with_positional_args() {
    Test::new()
        .script(
            r#"
fn add(a, b) { print(`${a + b}`); }
let base = 100;
let ps = [Process(add, [1, 2]), Process(Fn("add"), [3, 4]), Process(|x| print(`${base + x}`), [5])];
for p in ps { p.start(); p.join(); }
"#,
        )
        .run()
        .success()
        .stdout("3\n7\n105\n");
}

#[test]
fn kwargs_are_matched_by_parameter_name_not_position() {
    Test::new()
        .script(
            r#"
fn show(first, second, third) { print(`${first}-${second}-${third}`); }
let p = Process(show, [1], #{ kwargs: #{ third: 3, second: 2 } });
p.start(); p.join();
let q = Process(#{ target: show, kwargs: #{ third: "c", first: "a", second: "b" } });
q.start(); q.join();
let k = 10;
let r = Process(|a, b| print(`${k} ${a} ${b}`), #{ kwargs: #{ b: 2, a: 1 } });
r.start(); r.join();
"#,
        )
        .run()
        .success()
        .stdout("1-2-3\na-b-c\n10 1 2\n");
}

#[test]
fn bad_kwargs_are_catchable_type_errors() {
    Test::new()
        .script(
            r#"
fn show(a, b) { }
try { Process(show, [], #{ kwargs: #{ a: 1, nope: 2 } }); } catch (e) { print(e.kind); }
try { Process(show, [1], #{ kwargs: #{ c: 1 } }); } catch (e) { print(e.kind); print(e.message); }
try { Process(42); } catch (e) { print(e.kind); }
try { Process(show, [], #{ colour: 1 }); } catch (e) { print(e.kind); }
"#,
        )
        .run()
        .success()
        .stdout("TypeError\nTypeError\n`show` got an unexpected keyword argument `c`\nTypeError\nValueError\n");
}

#[test]
fn names_are_numbered_at_construction_and_nest_for_grandchildren() {
    Test::new()
        .script(
            r#"
fn inner() { print(current_process().name); }
fn outer() {
    print(current_process().name);
    let g = Process(inner); g.start(); g.join();
    let h = Process(inner); print(h.name);
}
let a = Process(outer);
let b = Process(outer, [], #{ name: "custom" });
print(a.name); print(b.name);
a.start(); a.join();
print(current_process().name);
"#,
        )
        .run()
        .success()
        .stdout("Process-1\ncustom\nProcess-1\nProcess-1:1\nProcess-1:2\nMainProcess\n");
}

#[test]
fn exitcodes_follow_python() {
    Test::new()
        .script(
            r#"
fn ok() { }
fn fail() { throw "boom"; }
fn quit(n) { exit(n); }
fn forever() { sleep(60); }
let codes = [];
for t in [Process(ok), Process(fail), Process(quit, [7]), Process(quit, ["message"])] {
    t.start(); codes.push(t.join());
}
let term = Process(forever); term.start(); term.terminate(); codes.push(term.join());
let kill = Process(forever); kill.start(); kill.kill(); codes.push(kill.join());
print(codes);
"#,
        )
        .run()
        .success()
        .stdout("[0, 1, 7, 1, -15, -9]\n")
        .stderr_has("message\n");
}

#[test]
fn process_state_and_text_through_its_life() {
    Test::new()
        .script(
            r#"
let p = Process(|| sleep(0.3));
print(`${p.pid} ${p.exitcode} ${p.is_alive()}`);
print(p.to_string() == `<Process name='Process-1' parent=${getpid()} initial>`);
p.start();
print(`${type_of(p.pid)} ${p.exitcode} ${p.is_alive()}`);
print(p.to_string() == `<Process name='Process-1' pid=${p.pid} parent=${getpid()} started>`);
print(p.join());
print(`${p.exitcode} ${p.is_alive()}`);
print(p.to_string() == `<Process name='Process-1' pid=${p.pid} parent=${getpid()} stopped exitcode=0>`);
let k = Process(|| sleep(60), [], #{ daemon: true }); k.start(); k.terminate(); k.join();
print(k.to_string().ends_with("stopped exitcode=-SIGTERM daemon>"));
"#,
        )
        .run()
        .success()
        .stdout("None None false\ntrue\ni64 None true\ntrue\n0\n0 false\ntrue\ntrue\n");
}

#[test]
fn join_with_timeout_returns_unit_while_running() {
    let run = Test::new()
        .script(
            r#"
let p = Process(|| sleep(30));
p.start();
let r = p.join(0.2);
print(`${r == ()} ${p.is_alive()} ${p.exitcode == ()}`);
print(p.join(0));
p.kill();
print(p.join(5));
"#,
        )
        .run();
    run.success().stdout("true true true\nNone\n-9\n");
    assert!(
        run.elapsed < Duration::from_secs(20),
        "took {:?}",
        run.elapsed
    );
}

#[test]
fn joins_overlap_so_total_time_is_the_longest_child() {
    let run = Test::new()
        .script(
            r#"
let ps = [];
for i in 0..3 { ps.push(Process(|| sleep(1))); }
for p in ps { p.start(); }
for p in ps { p.join(); }
print("主");
"#,
        )
        .run();
    run.success().stdout("主\n");
    assert!(
        run.elapsed >= Duration::from_millis(950),
        "{:?}",
        run.elapsed
    );
    assert!(
        run.elapsed < Duration::from_millis(2900),
        "joins did not overlap: {:?}",
        run.elapsed
    );
}

#[test]
fn misuse_is_a_catchable_process_error() {
    Test::new()
        .script(
            r#"
fn report(what, f) { try { f.call(); print(`${what}: no error`); } catch (e) { print(`${what}: ${e.kind}: ${e.message}`); } }
let p = Process(|| 0);
report("join before start", || p.join());
report("terminate before start", || p.terminate());
p.start();
report("start twice", || p.start());
p.join();
report("join current", || current_process().join());
let sibling = Process(|| sleep(0.5));
sibling.start();
let q = spawn { try { sibling.join(); } catch (e) { print(`join sibling: ${e.kind}`); } };
q.join();
let daemon = Process(|| { try { spawn 1; } catch (e) { print(`daemon child: ${e.message}`); } }, [], #{ daemon: true });
daemon.start(); daemon.join();
report("set daemon after start", || { daemon.daemon = false; });
"#,
        )
        .run()
        .success()
        .stdout(
            "join before start: ProcessError: can only join a started process (`Process-1` was never started)\n\
             terminate before start: ProcessError: cannot terminate `Process-1`: it was never started\n\
             start twice: ProcessError: cannot start a process twice (`Process-1`)\n\
             join current: ProcessError: cannot join the current process\n\
             join sibling: ProcessError\n\
             daemon child: daemonic processes are not allowed to have children\n\
             set daemon after start: ProcessError: cannot change `daemon` of a process that has already started\n",
        );
}

#[test]
fn uncaught_error_in_child_is_reported_with_file_and_line_and_exit_1() {
    let run = Test::new()
        .script(
            r#"
fn worker(x) {
    let y = x * 2;
    throw `bad value ${y}`;
}
let p = Process(worker, [21]);
p.start();
print(`exitcode ${p.join()}`);
print("parent carries on");
"#,
        )
        .run();
    run.success().stdout("exitcode 1\nparent carries on\n");
    assert!(
        run.stderr.starts_with("Process Process-1:\n"),
        "{}",
        run.stderr
    );
    run.stderr_has("bad value 42")
        .stderr_has("script.rhai:4:5")
        .stderr_has("throw `bad value ${y}`;")
        .stderr_has("^");
}

#[test]
fn exit_code_of_main_script_is_honoured() {
    Test::new()
        .script("print(\"a\"); exit(7); print(\"b\");")
        .run()
        .code(7)
        .stdout("a\n");
    Test::new().script("fn f() { exit(3); } f();").run().code(3);
    Test::new().script("exit();").run().code(0);
}

#[test]
fn non_daemon_children_are_waited_for_and_daemons_ended() {
    let run = Test::new()
        .script(
            r#"
let d = Process(|| { print(`daemon ${getpid()}`); sleep(60); print("daemon survived"); }, [], #{ daemon: true });
d.start();
let n = Process(|| { sleep(0.5); print("late child done"); });
n.start();
sleep(0.2);
print("main done");
"#,
        )
        .run();
    run.success()
        .stdout_has("main done\n")
        .stdout_has("late child done\n");
    assert!(!run.stdout.contains("daemon survived"));
    let daemon_pid: u32 = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("daemon "))
        .expect("daemon printed its pid")
        .parse()
        .unwrap();
    assert!(!alive(daemon_pid), "daemon {daemon_pid} still alive");
    assert!(
        run.elapsed < Duration::from_secs(30),
        "waited for the daemon: {:?}",
        run.elapsed
    );
    assert_eq!(run.lines().last().copied(), Some("late child done"));
}

#[test]
fn finished_children_are_reaped_while_the_parent_sleeps_never_joined() {
    let test = Test::new().script(
        r#"
for i in 0..20 { let p = Process(|| 0); p.start(); }
let slow = Process(|| sleep(0.3)); slow.start();
print("started");
sleep(5);
print(`exitcode later: ${slow.exitcode}`);
"#,
    );
    let mut child = test.spawn();
    let pid = child.id();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    read_until(&mut out, |l| l == "started");
    assert!(
        eventually(Duration::from_secs(4), || children_of(pid).is_empty()),
        "children left: {:?}, zombies: {:?}",
        children_of(pid),
        zombies_of(pid)
    );
    let rest = read_until(&mut out, |_| false);
    assert_eq!(rest, vec!["exitcode later: 0"]);
    assert!(child.wait().unwrap().success());
}

#[test]
fn finished_children_are_reaped_while_the_parent_computes() {
    let test = Test::new().script(
        r#"
for i in 0..10 { let p = Process(|| 0); p.start(); }
print("started");
let n = 0;
loop { n += 1; }
"#,
    );
    let mut child = test.spawn();
    let pid = child.id();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    read_until(&mut out, |l| l == "started");
    // The script never looks at its children again; the reaper must act on its own.
    let reaped = eventually(Duration::from_secs(4), || children_of(pid).is_empty());
    let zombies = zombies_of(pid);
    let _ = child.kill();
    let _ = child.wait();
    assert!(reaped, "zombies: {zombies:?}");
}

#[test]
fn lines_stay_whole_with_eight_concurrent_writers() {
    let run = Test::new()
        .script(
            r#"
fn writer(id) {
    let line = `${id}:`;
    line.pad(100, 'x');
    for i in 0..2000 { print(line); }
}
let ps = [];
for id in 0..8 { let p = Process(writer, [id]); p.start(); ps.push(p); }
for p in ps { p.join(); }
"#,
        )
        .run();
    run.success();
    let lines = run.lines();
    assert_eq!(lines.len(), 16000);
    for line in lines {
        let (id, rest) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("torn line {line:?}"));
        assert!(id.parse::<u32>().unwrap() < 8, "{line:?}");
        assert_eq!(rest.len(), 98, "torn line {line:?}");
        assert!(rest.bytes().all(|b| b == b'x'), "torn line {line:?}");
    }
}

/// Issue 10, item 6: lines longer than PIPE_BUF stay whole through a pipe too (9,894 of
/// 10,000 were whole at 10 KB, 355 of 1,000 at 200 KB, before the shared line lock).
#[test]
fn long_lines_stay_whole_through_a_pipe_with_many_writers() {
    let run = Test::new()
        .script(
            r#"
fn writer(id) {
    let letter = "abcdefgh"[id];
    for round in 0..3 {
        let short = `${id}:`;
        short.pad(10 * 1024, letter);
        for i in 0..20 { print(short); }
        let long = `${id}:`;
        long.pad(200 * 1024, letter);
        for i in 0..2 { print(long); }
    }
}
let ps = [];
for id in 0..8 { let p = Process(writer, [id]); p.start(); ps.push(p); }
for p in ps { p.join(); }
"#,
        )
        .run();
    run.success();
    let lines = run.lines();
    assert_eq!(
        lines.len(),
        8 * 3 * 22,
        "line count (a torn line adds or merges lines)"
    );
    let (mut short, mut long) = (0, 0);
    for line in lines {
        let (id, rest) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("torn line of {} bytes", line.len()));
        let id: usize = id
            .parse()
            .unwrap_or_else(|_| panic!("torn line of {} bytes", line.len()));
        let letter = b"abcdefgh"[id];
        assert!(
            rest.bytes().all(|b| b == letter),
            "line of writer {id} has another's bytes"
        );
        match line.len() {
            10240 => short += 1,
            204800 => long += 1,
            n => panic!("torn line of writer {id}: {n} bytes"),
        }
    }
    assert_eq!((short, long), (8 * 3 * 20, 8 * 3 * 2));
}

/// A writer killed while it holds the line lock (here blocked writing a long line into a
/// full pipe) does not block the others: the next long line takes the lock over.
#[test]
fn a_writer_killed_holding_the_line_lock_does_not_block_the_others() {
    let test = Test::new().script(
        r#"
let a = Process(|| { let big = ""; big.pad(1024 * 1024, 'a'); print(big); });
a.start();
debug(a.pid);
input("");
let b = Process(|| { let line = ""; line.pad(10 * 1024, 'b'); print(line); print("done"); });
b.start();
b.join();
"#,
    );
    let mut cmd = test.command();
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    let a: u32 = line.trim().rsplit(' ').next().unwrap().parse().unwrap();
    // Nobody reads stdout yet: `a` fills the pipe and blocks in write(1, ...), holding the lock.
    let blocked = eventually(BACKSTOP, || {
        std::fs::read_to_string(format!("/proc/{a}/syscall")).is_ok_and(|s| s.starts_with("1 0x1 "))
            || std::fs::read_to_string(format!("/proc/{a}/wchan"))
                .is_ok_and(|w| w.contains("pipe_write"))
    });
    assert!(blocked, "the writer never blocked in write(2)");
    // SAFETY: plain kill(2) on the pid of a process this test's script started.
    unsafe { libc::kill(a as i32, libc::SIGKILL) };
    std::io::Write::write_all(&mut stdin, b"\n").unwrap();
    let output = wait_with_timeout(child, BACKSTOP);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0));
    // What `a` wrote before it died is cut short, with no newline: `b`'s whole line follows
    // it on the same line.
    assert!(stdout.ends_with(&format!("{}\ndone\n", "b".repeat(10 * 1024))));
    let cut = stdout.find('b').unwrap();
    assert!(
        cut >= 64 * 1024,
        "a pipe's worth of `a` was written first: {cut}"
    );
    assert!(stdout[..cut].bytes().all(|b| b == b'a'));
}

/// Issue 13: the line lock is a robust futex. A writer waiting for a long line's turn
/// sleeps in the kernel (it does not wake to look whether the holder still lives), and
/// when the holder is killed with SIGKILL the kernel hands it the lock: it carries on at
/// once and its line arrives whole.
#[test]
fn a_waiter_for_the_line_lock_sleeps_until_the_killed_holder_frees_it() {
    let test = Test::new().script(
        r#"
let a = Process(|| { let big = ""; big.pad(1024 * 1024, 'a'); print(big); });
a.start();
debug(a.pid);
input("");
let b = Process(|| { let line = ""; line.pad(10 * 1024, 'b'); print(line); print("done"); });
b.start();
debug(b.pid);
b.join();
"#,
    );
    let mut cmd = test.command();
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let pid_of = |stderr: &mut std::io::BufReader<std::process::ChildStderr>| -> u32 {
        let mut line = String::new();
        std::io::BufRead::read_line(stderr, &mut line).unwrap();
        line.trim().rsplit(' ').next().unwrap().parse().unwrap()
    };
    let a = pid_of(&mut stderr);
    // Nobody reads stdout yet: `a` fills the pipe and blocks in write(1, ...), holding the lock.
    let blocked = eventually(BACKSTOP, || {
        std::fs::read_to_string(format!("/proc/{a}/syscall")).is_ok_and(|s| s.starts_with("1 0x1 "))
            || std::fs::read_to_string(format!("/proc/{a}/wchan"))
                .is_ok_and(|w| w.contains("pipe_write"))
    });
    assert!(blocked, "the writer never blocked in write(2)");
    std::io::Write::write_all(&mut stdin, b"\n").unwrap();
    let b = pid_of(&mut stderr);
    let asleep = eventually(BACKSTOP, || {
        std::fs::read_to_string(format!("/proc/{b}/wchan")).is_ok_and(|w| w.contains("futex"))
    });
    assert!(asleep, "the second writer never slept on the lock");
    let switches = || -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{b}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let before = switches();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let woken = switches() - before;
    // Looking at the holder every 50 ms would be some 20 wake-ups in this second.
    assert!(
        woken <= 2,
        "the waiter woke {woken} times while the holder lived"
    );
    // SAFETY: plain kill(2) on the pid of a process this test's script started.
    unsafe { libc::kill(a as i32, libc::SIGKILL) };
    let output = wait_with_timeout(child, BACKSTOP);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout.ends_with(&format!("{}\ndone\n", "b".repeat(10 * 1024))));
    let cut = stdout.find('b').unwrap();
    assert!(stdout[..cut].bytes().all(|b| b == b'a'));
}

#[test]
fn output_is_not_duplicated_by_fork_when_piped() {
    Test::new()
        .script(
            r#"
print("before");
let p = Process(|| print("child")); p.start(); p.join();
print("after");
"#,
        )
        .run()
        .success()
        .stdout("before\nchild\nafter\n");
}

#[test]
fn children_get_fresh_random_sequences() {
    let run = Test::new()
        .script(
            r#"
print(random());
let ps = [];
for i in 0..6 { let p = Process(|| print(random())); p.start(); ps.push(p); }
for p in ps { p.join(); }
"#,
        )
        .run();
    run.success();
    let mut values = run.sorted_lines();
    assert_eq!(values.len(), 7);
    values.dedup();
    assert_eq!(values.len(), 7, "repeated random values: {}", run.stdout);
}

#[test]
fn randint_is_inclusive_and_checks_its_range() {
    Test::new()
        .script(
            r#"
let seen = #{};
for i in 0..400 { seen[`${randint(1, 3)}`] = true; }
print(seen.keys().len());
try { randint(3, 1); } catch (e) { print(e.kind); }
"#,
        )
        .run()
        .success()
        .stdout("3\nValueError\n");
}

#[test]
fn identity_functions() {
    Test::new()
        .script(
            r#"
print(parent_process() == ());
print(cpu_count() >= 1);
let p = spawn {
    print(getppid() == parent_process().pid);
    print(parent_process().name);
    print(parent_process().is_alive());
    print(current_process().pid == getpid());
};
p.join();
let q = Process(|| sleep(0.5)); q.start();
print(active_children().len());
print(active_children()[0].name);
q.join();
print(active_children().len());
"#,
        )
        .run()
        .success()
        .stdout("true\ntrue\ntrue\nMainProcess\ntrue\ntrue\n1\nProcess-2\n0\n");
}

#[test]
fn spawn_forks_now_and_the_child_sees_current_variables() {
    Test::new()
        .script(
            r#"
fn greet(who) { print(`hello ${who}`); }
let who = "world";
let p = spawn greet(who);
print(p.join());
let counter = 10;
let q = spawn { counter += 5; print(`child counter ${counter}`); exit(counter); };
print(q.join());
print(`parent counter ${counter}`);
print(type_of(q));
"#,
        )
        .run()
        .success()
        .stdout("hello world\n0\nchild counter 15\n15\nparent counter 10\nProcess\n");
}

#[test]
fn object_form_binds_this_to_a_copy() {
    Test::new()
        .script(
            r#"
let obj = #{ name: "worker", hits: 0, run: || { this.hits += 1; print(`${this.name} ${this.hits}`); } };
let p = Process(obj);
print(p.name);
p.start(); p.join();
print(obj.hits);
"#,
        )
        .run()
        .success()
        .stdout("worker\nworker 1\n0\n");
}

#[test]
fn child_never_runs_the_rest_of_the_parent_script() {
    let run = Test::new()
        .script(
            r#"
fn work() { 1 + 1 }
for i in 0..5 { let p = Process(work); p.start(); p.join(); }
print("end");
"#,
        )
        .run();
    run.success().stdout("end\n");
}

#[test]
fn timeouts_and_sleep_reject_bad_values() {
    Test::new()
        .script(
            r#"
try { sleep(-1); } catch (e) { print(e.kind); }
try { sleep("x"); } catch (e) { print(e.kind); }
let p = Process(|| 0); p.start();
try { p.join("soon"); } catch (e) { print(e.kind); }
print(p.join(1.5));
"#,
        )
        .run()
        .success()
        .stdout("ValueError\nTypeError\nTypeError\n0\n");
}

/// Sends `signal` to a running script once it has printed "ready", and returns its exit
/// code and the pids of the children it had.
fn stop_with(script: &str, signal: i32) -> (Option<i32>, Vec<u32>, Duration) {
    let test = Test::new().script(script);
    let mut child = test.spawn();
    let pid = child.id();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    read_until(&mut out, |l| l == "ready");
    let kids = children_of(pid);
    let started = std::time::Instant::now();
    // SAFETY: plain kill(2) on the pid of a child this test started and has not reaped.
    unsafe { libc::kill(pid as i32, signal) };
    let status = child.wait().unwrap();
    (status.code(), kids, started.elapsed())
}

#[test]
fn ctrl_c_stops_the_script_and_its_children_and_exits_130() {
    let script = "let ps = [];\nfor i in 0..3 { let p = Process(|| sleep(60)); p.start(); ps.push(p); }\nprint(\"ready\");\nfor p in ps { p.join(); }\nprint(\"not reached\");\n";
    let (code, kids, elapsed) = stop_with(script, libc::SIGINT);
    assert_eq!(code, Some(130));
    assert_eq!(kids.len(), 3);
    assert!(kids.iter().all(|k| !alive(*k)), "children left: {kids:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[test]
fn sigterm_ends_children_and_exits_143() {
    let script =
        "let p = Process(|| { loop { sleep(0.01); } }); p.start();\nprint(\"ready\");\np.join();\n";
    let (code, kids, _) = stop_with(script, libc::SIGTERM);
    assert_eq!(code, Some(143));
    assert!(kids.iter().all(|k| !alive(*k)), "children left: {kids:?}");
}

#[test]
fn ctrl_c_stops_a_busy_loop() {
    let (code, _, elapsed) = stop_with(
        "print(\"ready\");\nlet i = 0;\nloop { i += 1; }\n",
        libc::SIGINT,
    );
    assert_eq!(code, Some(130));
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[test]
fn output_into_a_reader_that_closes_early_ends_quietly() {
    let test = Test::new().script("let i = 0;\nloop { print(`line ${i}`); i += 1; }\n");
    let mut cmd = test.command();
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let first = read_until(&mut out, |_| true);
    assert_eq!(first, vec!["line 0"]);
    drop(out);
    let output = wait_with_timeout(child, Duration::from_secs(20));
    assert_eq!(output.status.code(), Some(141));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "",
        "no panic or error message"
    );
}

#[test]
fn ctrl_c_stops_waits_on_queues_locks_events_and_semaphores() {
    for wait in [
        "Queue().get();",
        "Event().wait();",
        "Semaphore(0).acquire();",
        "Pipe()[0].recv();",
    ] {
        let (code, _, elapsed) = stop_with(
            &format!("print(\"ready\");\n{wait}\nprint(\"not reached\");\n"),
            libc::SIGINT,
        );
        assert_eq!(code, Some(130), "{wait}");
        assert!(elapsed < Duration::from_secs(10), "{wait}: {elapsed:?}");
    }
}

#[test]
fn renaming_the_current_process_renames_its_error_banner() {
    let run = Test::new()
        .script("let p = spawn { let me = current_process(); me.name = \"renamed\"; throw \"boom\"; };\nprint(p.join());\n")
        .run();
    run.success().stdout("1\n");
    assert!(
        run.stderr.starts_with("Process renamed:\n"),
        "{}",
        run.stderr
    );
}

/// Issue 10, item 13: `sleep` of an infinite or NaN length is a `ValueError`; a finite but
/// huge one sleeps until a signal ends it, and SIGTERM does so at once.
#[test]
fn sleep_refuses_non_finite_lengths_and_a_huge_one_ends_on_sigterm() {
    Test::new()
        .script(
            r#"
for f in [|| sleep(1.0 / 0.0), || sleep(-1.0 / 0.0), || sleep(0.0 / 0.0), || sleep(-1)] {
    try { f.call(); print("slept"); } catch (e) { print(`${e.kind}: ${e.message}`); }
}
"#,
        )
        .run()
        .success()
        .stdout(
            "ValueError: the sleep length must be a finite number of seconds, not inf\n\
             ValueError: the sleep length must be a finite number of seconds, not -inf\n\
             ValueError: the sleep length must be a non-negative number of seconds, not NaN\n\
             ValueError: the sleep length must be a non-negative number of seconds, not -1\n",
        );
    for huge in ["1e300", "9223372036854775807"] {
        let test = Test::new().script(&format!("print(\"sleeping\"); sleep({huge});"));
        let mut child = test.spawn();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert_eq!(line, "sleeping\n");
        let sent = std::time::Instant::now();
        // SAFETY: plain kill(2) on the pid of a child this test started and has not waited for.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(143), "sleep({huge})");
        assert!(
            sent.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            sent.elapsed()
        );
    }
}

/// Issue 9: while the parent blocks (in a descriptor wait, a futex wait or a sleep), its
/// children that end are reaped at once: the script prints `blocking`, blocks for 4 s, and
/// within 3 s its 20 short children are gone, none a zombie, only its `helpers` left.
fn reaped_while_blocked(setup: &str, block: &str, helpers: usize) -> Result<(), String> {
    let script = format!(
        r#"
{setup}
let ps = [];
for i in 0..20 {{ ps.push(spawn {{ sleep(0.1); exit(i % 7); }}); }}
print("blocking");
{block}
print("unblocked");
print(ps.map(|p| p.join()));
"#
    );
    let test = Test::new().script(&script);
    let mut child = test.spawn();
    let pid = child.id();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let seen = read_until(&mut out, |l| l == "blocking");
    if seen.last().map(String::as_str) != Some("blocking") {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("{block}: no marker: {seen:?}"));
    }
    let blocked = std::time::Instant::now();
    let reaped = eventually(Duration::from_secs(3), || {
        children_of(pid).len() == helpers && zombies_of(pid).is_empty()
    });
    let when = blocked.elapsed();
    let left = children_of(pid);
    let rest = read_until(&mut out, |_| false);
    let status = child.wait().unwrap();
    if !reaped || when >= Duration::from_secs(4) {
        return Err(format!("{block}: after {when:?} children {left:?}"));
    }
    let expected = vec![
        "unblocked".to_string(),
        "[0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5]".to_string(),
    ];
    if rest != expected || status.code() != Some(0) {
        return Err(format!("{block}: {rest:?}, {status:?}"));
    }
    Ok(())
}

#[test]
fn children_are_reaped_while_the_parent_blocks_in_any_wait() {
    let cases: [(&str, &str, usize); 6] = [
        ("", "sleep(4);", 0),
        (
            "let s = socket(); s.bind(\"127.0.0.1\", 0); s.listen(); s.settimeout(4);",
            "try { s.accept(); } catch (e) { }",
            0,
        ),
        ("let q = Queue();", "try { q.get(4); } catch (e) { }", 0),
        (
            "let other = spawn sleep(60);",
            "other.join(4); other.kill(); other.join();",
            1,
        ),
        (
            "let l = Lock(); let held = Event(); let holder = spawn { l.acquire(); held.set(); sleep(60); }; held.wait();",
            "l.acquire(4); holder.kill(); holder.join();",
            1,
        ),
        ("let e = Event();", "e.wait(4);", 0),
    ];
    let handles: Vec<_> = cases
        .into_iter()
        .map(|(setup, block, helpers)| {
            std::thread::spawn(move || reaped_while_blocked(setup, block, helpers))
        })
        .collect();
    let failures: Vec<String> = handles
        .into_iter()
        .filter_map(|h| h.join().unwrap().err())
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Issue 9: once a child was reaped, `terminate` and `kill` are no-ops, even if its pid
/// now belongs to another process (made so here by writing `ns_last_pid` as root).
#[test]
fn terminate_after_the_child_was_reaped_never_signals_a_stranger() {
    let mut run = crate::stress::Paused::start(
        r#"
        let p = spawn exit(0);
        p.join();
        print(p.pid);
        input("");
        p.terminate();
        p.kill();
        print(`${p.exitcode} ${p.is_alive()}`);
        input("");
    "#,
    );
    let pid: i32 = run.marker().parse().unwrap();
    // Give the old pid to a process of ours, if this system lets us pick the next pid.
    let mut stranger = None;
    for _ in 0..200 {
        if std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).is_err() {
            break;
        }
        let child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        if child.id() as i32 == pid {
            stranger = Some(child);
            break;
        }
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
    }
    if stranger.is_none() {
        eprintln!("note: could not hand pid {pid} to another process; checking the no-op only");
    }
    run.resume();
    assert_eq!(run.marker(), "0 false");
    if let Some(mut stranger) = stranger {
        assert_eq!(
            stranger.try_wait().unwrap(),
            None,
            "the process that took pid {pid} was signalled"
        );
        let _ = stranger.kill();
        let _ = stranger.wait();
    }
    run.resume();
    let (code, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
}

/// Issue 11: `sentinel` is readable once the process ended (also after it was reaped) and
/// not before; `close()` closes it; `ident` is the pid.
#[test]
fn sentinel_is_readable_when_the_process_ends_and_close_releases_it() {
    let mut run = crate::stress::Paused::start(
        r#"
        let p = Process(|| sleep(60));
        p.start();
        print(`${p.sentinel} ${p.ident == p.pid}`);
        input("");
        p.kill();
        p.join();
        print("ended");
        input("");
        p.close();
        print("closed");
        input("");
    "#,
    );
    let first = run.marker();
    let (fd, same) = first.split_once(' ').unwrap();
    let fd: i32 = fd.parse().unwrap();
    assert_eq!(same, "true");
    // A copy of the script's descriptor, to poll from here (pidfd_getfd, Linux 5.6).
    let readable = |pid: u32| -> Option<bool> {
        // SAFETY: plain system calls on descriptors this test owns; poll gets one entry.
        unsafe {
            let pidfd = libc::syscall(libc::SYS_pidfd_open, pid as i32, 0) as i32;
            if pidfd < 0 {
                return None;
            }
            let copy = libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) as i32;
            libc::close(pidfd);
            if copy < 0 {
                return None;
            }
            let mut entry = libc::pollfd {
                fd: copy,
                events: libc::POLLIN,
                revents: 0,
            };
            let n = libc::poll(&mut entry, 1, 0);
            libc::close(copy);
            Some(n == 1 && entry.revents & libc::POLLIN != 0)
        }
    };
    let fd_path = format!("/proc/{}/fd/{fd}", run.pid);
    assert!(std::path::Path::new(&fd_path).exists());
    if let Some(ready) = readable(run.pid) {
        assert!(!ready, "readable while the child runs");
    }
    run.resume();
    assert_eq!(run.marker(), "ended");
    if let Some(ready) = readable(run.pid) {
        assert!(ready, "not readable after the child ended and was reaped");
    }
    run.resume();
    assert_eq!(run.marker(), "closed");
    assert!(
        !std::path::Path::new(&fd_path).exists(),
        "close() left it open"
    );
    run.resume();
    let (code, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn close_follows_python_and_negative_or_unit_join_timeouts_are_accepted() {
    Test::new()
        .script(
            r#"
let p = Process(|| sleep(0.3));
try { p.sentinel; } catch (e) { print(`not started: ${e.kind}`); }
p.start();
try { p.close(); } catch (e) { print(`running: ${e.kind}`); }
print(p.join(-1) == ());
print(p.join(-0.5) == ());
print(p.join(()));
p.close();
p.close();
print(p);
for f in [|| p.join(), || p.join(1), || p.is_alive(), || p.terminate(), || p.kill(), || p.pid, || p.ident, || p.exitcode, || p.sentinel, || p.start()] {
    try { f.call(); print("no error"); } catch (e) { print(e.kind); }
}
print(p.name);
let q = Process(|| 1);
q.close();
try { q.start(); } catch (e) { print(`closed before start: ${e.kind}`); }
try { p.join("x"); } catch (e) { print(e.kind); }
"#,
        )
        .run()
        .success()
        .stdout_has("not started: ValueError\nrunning: ValueError\ntrue\ntrue\n0\n")
        .stdout_has(" closed>\nValueError\nValueError\nValueError\nValueError\nValueError\nValueError\nValueError\nValueError\nValueError\nValueError\nProcess-1\nclosed before start: ValueError\nTypeError\n");
}

#[test]
fn authkey_is_random_inherited_and_settable() {
    Test::new()
        .script(
            r#"
let k = current_process().authkey;
print(k.len());
let p = Process(|k| print(current_process().authkey == k), [k]);
print(p.authkey == k);
p.start(); p.join();
let me = current_process();
me.authkey = "secret";
let q = spawn print(current_process().authkey == "secret".to_blob());
q.join();
print(Process(|| 1).authkey == "secret".to_blob());
"#,
        )
        .run()
        .success()
        .stdout("32\ntrue\ntrue\ntrue\ntrue\n");
}

/// Issue 10: SIGTERM to the main process reaches the whole tree, each process ending its
/// own children first; nothing is left running. `terminate()` of a child with children
/// does the same for its subtree, and its exit code stays -15.
#[test]
fn sigterm_reaches_grandchildren_and_nothing_is_left_running() {
    let test = Test::new().script(
        r#"
let g_up = Event();
let p_up = Event();
let p = spawn {
    let g = spawn {
        let gg = spawn sleep(60);
        print(`pid ${gg.pid}`);
        g_up.set();
        gg.join();
    };
    print(`pid ${g.pid}`);
    p_up.set();
    g.join();
};
print(`pid ${p.pid}`);
g_up.wait();
p_up.wait();
let t_up = Event();
let t = spawn { let u = spawn sleep(60); print(`sub ${u.pid}`); t_up.set(); u.join(); };
print(`sub ${t.pid}`);
t_up.wait();
t.terminate();
print(`terminated ${t.join()}`);
// A child whose body has ended and that waits for its own child at its end.
let w_up = Event();
let w = spawn { let u = spawn sleep(60); print(`sub ${u.pid}`); w_up.set(); };
print(`sub ${w.pid}`);
w_up.wait();
w.terminate();
print(`terminated ${w.join()}`);
print("ready");
sleep(60);
"#,
    );
    let mut child = test.spawn();
    let pid = child.id();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let lines = read_until(&mut out, |l| l == "ready");
    let pids = |prefix: &str| -> Vec<u32> {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(|p| p.parse().unwrap())
            .collect()
    };
    let tree = pids("pid ");
    let sub = pids("sub ");
    assert_eq!(tree.len(), 3, "{lines:?}");
    let terminated = lines.iter().filter(|l| *l == "terminated -15").count();
    assert_eq!(terminated, 2, "{lines:?}");
    assert_eq!(sub.len(), 4, "{lines:?}");
    assert!(
        eventually(Duration::from_secs(10), || sub.iter().all(|p| !alive(*p))),
        "terminate() left {sub:?}"
    );
    assert!(tree.iter().all(|p| alive(*p)));
    // SAFETY: plain kill(2) on the pid of a child this test started and has not reaped.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    assert!(
        eventually(Duration::from_secs(10), || tree.iter().all(|p| !alive(*p))),
        "left running: {:?}",
        tree.iter().filter(|p| alive(**p)).collect::<Vec<_>>()
    );
}

/// Issue 9: the binary's code moves onto huge pages once a script has forked a few times
/// (where transparent huge pages can be had), at the same addresses, and children run on.
#[test]
fn code_moves_onto_huge_pages_after_a_few_forks_and_children_run_on() {
    let script = r#"
let ok = 0;
for i in 0..40 { let p = spawn exit(i % 3); if p.join() == i % 3 { ok += 1; } }
let maps = run(["cat", `/proc/${getpid()}/smaps`]).stdout;
let huge = 0;
let code = false;
for line in maps.split("\n") {
    let fields = line.split();
    if fields.len() >= 5 && fields[0].contains("-") { code = fields[1] == "r-xp"; }
    if code && line.starts_with("AnonHugePages:") { huge += parse_int(fields[1]); }
}
print(`${ok} ${huge > 0}`);
"#;
    let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .is_ok_and(|m| !m.contains("[never]"));
    let run = Test::new().script(script).run();
    run.success();
    let line = run.stdout.trim();
    assert!(line.starts_with("40 "), "{line}");
    if thp {
        assert_eq!(line, "40 true", "no huge pages under the code");
    } else {
        eprintln!("note: transparent huge pages are off here; only checked that children run");
    }
    let off = Test::new()
        .env("PROCSCRIPT_HUGE_TEXT", "0")
        .script(script)
        .run();
    off.success().stdout("40 false\n");
}

/// Issue 9: a host's own child keeps its exit status: `examples/host_child.rs` starts a
/// program with `std::process::Command`, runs a script that forks and reaps, then waits for
/// its program (a host, not this threaded test process, since procscript refuses to fork in
/// a threaded one).
#[test]
fn a_hosts_own_child_keeps_its_exit_status() {
    let host = std::path::Path::new(BIN)
        .parent()
        .unwrap()
        .join("examples/host_child");
    assert!(host.exists(), "build the examples: {}", host.display());
    let output = wait_with_timeout(
        std::process::Command::new(&host)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout,
        "script exit codes: 0 1 2 3 4 0 1 2 3 4 0 1 2 3 4 0 1 2 3 4 0\nhost child exit code: 7\n",
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
