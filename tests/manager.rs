//! Managers: `Manager()` and its proxies across processes, CPython's manager tests
//! translated, and what is left behind (no manager process, no zombie, no descriptor).
//!
//! CPython's tests are `_TestContainers` and `TestSyncManagerTypes` in
//! Lib/test/_test_multiprocessing.py. Where procscript differs on purpose, the translated
//! check asserts procscript's documented behaviour and says so (docs/managers.md).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::time::Duration;

use crate::support::*;

/// Helpers every script here starts with: a failed check throws with what differed.
const CHECKS: &str = r#"
fn eq(got, want, what) {
    if type_of(got) != type_of(want) || got != want {
        throw `${what}: got ${got} (${type_of(got)}), want ${want} (${type_of(want)})`;
    }
}
fn kind_of(f) {
    try { f.call(); } catch (e) { return if type_of(e) == "map" { e.kind ?? e.error } else { e }; }
    "no error"
}
"#;

fn run(body: &str) -> Run {
    Test::new().script(&format!("{CHECKS}\n{body}")).run()
}

#[test]
fn cpython_test_containers_list() {
    run(r#"
        let m = Manager();
        let a = m.list(0..10);
        eq(a.to_array(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "a[:]");
        let b = m.list();
        eq(b.to_array(), [], "b[:]");
        b.extend(0..5);
        eq(b.to_array(), [0, 1, 2, 3, 4], "b after extend");
        eq(b[2], 2, "b[2]");
        eq(b[2..10], [2, 3, 4], "b[2:10]");
        b.extend(b.to_array());                       // b *= 2
        eq(b.to_array(), [0, 1, 2, 3, 4, 0, 1, 2, 3, 4], "b *= 2");
        eq(b.to_array() + [5, 6], [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6], "b + [5, 6]");
        eq(a.to_array(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "a unchanged");
        a.append("hello");
        eq(a[-1], "hello", "a[-1]");
        // Difference: a proxy cannot be stored inside a managed container, nor passed to
        // a Pool task (both travel as values).
        eq(kind_of(|| m.list([a, b])), "ValueError", "a list of proxies");
        eq(kind_of(|| b.append(a)), "ValueError", "a proxy appended");
        let pool = Pool(1);
        eq(kind_of(|| pool.map(|x| { a.append(x); }, [1])), "ValueError", "a proxy in a Pool task");
        pool.terminate();
        print("ok");
    "#)
    .success()
    .stdout("ok\n");
}

#[test]
fn cpython_test_containers_iteration_dict_and_namespace() {
    run(r#"
        let m = Manager();
        // test_list_iter: the loop walks the items as they are when it starts.
        let a = m.list(0..10);
        let seen = [];
        for x in a { seen.push(x); }
        eq(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "for x in a");
        a[0] = 100;
        for x in a { eq(x, 100, "first item after a[0] = 100"); break; }

        // test_dict: keys keep their type; copy() gives a Rhai map (string keys).
        let d = m.dict();
        let letters = "ABCDE";
        for i in 65..70 { d[i] = letters[i - 65].to_string(); }
        eq(d.copy(), #{"65": "A", "66": "B", "67": "C", "68": "D", "69": "E"}, "d.copy()");
        let keys = d.keys(); keys.sort();
        eq(keys, [65, 66, 67, 68, 69], "sorted(d.keys())");
        let values = d.values(); values.sort();
        eq(values, ["A", "B", "C", "D", "E"], "sorted(d.values())");
        eq(d.items(), [[65, "A"], [66, "B"], [67, "C"], [68, "D"], [69, "E"]], "d.items()");

        // test_dict_iter: for k in d walks the keys. Difference: changing the dict during
        // the loop raises nothing, the loop walks the keys it started with.
        let seen = [];
        for k in d { seen.push(k); }
        eq(seen, [65, 66, 67, 68, 69], "list(iter(d))");
        let walked = 0;
        for k in d { d.clear(); walked += 1; }
        eq(walked, 5, "keys walked while the dict was cleared");
        eq(d.len(), 0, "len(d) after clear");

        // test_namespace
        let n = m.Namespace();
        n.name = "Bob";
        n.job = "Builder";
        n._hidden = "hidden";
        eq([n.name, n.job], ["Bob", "Builder"], "(n.name, n.job)");
        delattr(n, "job");
        eq(`${n}`, `Namespace(name="Bob")`, "str(n)");
        eq(hasattr(n, "name"), true, "hasattr(n, 'name')");
        eq(hasattr(n, "job"), false, "hasattr(n, 'job')");
        eq(kind_of(|| n.job), "AttributeError", "n.job after del");
        print("ok");
    "#)
    .success()
    .stdout("ok\n");
}

#[test]
fn cpython_test_sync_manager_types() {
    // Each child checks what it sees; a failed check ends it with exit code 1.
    run(r#"
        fn run_worker(worker, obj) {
            let p = Process(worker, [obj]);
            p.start();
            p.join();
            eq(p.exitcode, 0, `exit code of ${worker.name}`);
        }
        let m = Manager();

        fn lock_child(obj) { obj.acquire(); }
        let o = m.Lock();
        run_worker(Fn("lock_child"), o);
        // Difference: the child ended holding the lock, so the manager released it; Python
        // keeps it locked, and its first release() succeeds.
        eq(o.locked(), false, "a lock whose holder ended");
        eq(kind_of(|| o.release()), "RuntimeError", "o.release() of a free lock");

        fn rlock_child(obj) { obj.acquire(); obj.release(); }
        run_worker(Fn("rlock_child"), m.Lock());

        fn queue_child(obj) {
            eq(obj.qsize(), 2, "qsize");
            eq(obj.full(), true, "full");
            eq(obj.empty(), false, "empty");
            eq(obj.get(), 5, "first get");
            eq(obj.empty(), false, "empty after one get");
            eq(obj.get(), 6, "second get");
            eq(obj.empty(), true, "empty at the end");
        }
        let o = m.Queue(2);
        o.put(5);
        o.put(6);
        run_worker(Fn("queue_child"), o);
        eq(o.empty(), true, "parent: empty");
        eq(o.full(), false, "parent: full");

        fn list_child(obj) {
            eq(obj[0], 5, "obj[0]");
            eq(obj.count(5), 1, "count");
            eq(obj.index(5), 0, "index");
            obj.sort();
            obj.reverse();
            for x in obj { }
            eq(obj.len(), 1, "len");
            eq(obj.pop(0), 5, "pop(0)");
        }
        let o = m.list();
        o.append(5);
        run_worker(Fn("list_child"), o);
        eq(o.is_empty(), true, "not o");
        eq(o.len(), 0, "len(o)");

        fn dict_child(obj) {
            eq(obj.len(), 1, "len");
            eq(obj["foo"], 5, "obj['foo']");
            eq(obj.get("foo"), 5, "get");
            eq(obj.items(), [["foo", 5]], "items");
            eq(obj.keys(), ["foo"], "keys");
            eq(obj.values(), [5], "values");
            eq(obj.copy(), #{foo: 5}, "copy");
            eq(obj.popitem(), ["foo", 5], "popitem");
        }
        let o = m.dict();
        o["foo"] = 5;
        run_worker(Fn("dict_child"), o);
        eq(o.is_empty(), true, "not o");
        eq(o.len(), 0, "len(o)");

        fn value_child(obj) {
            eq(obj.value, 1, "value");
            eq(obj.get(), 1, "get");
            obj.set(2);
        }
        let o = m.Value("i", 1);
        run_worker(Fn("value_child"), o);
        eq(o.value, 2, "o.value");
        eq(o.get(), 2, "o.get()");

        fn namespace_child(obj) {
            eq(obj.x, 0, "x");
            eq(obj.y, 1, "y");
        }
        let o = m.Namespace();
        o.x = 0;
        o.y = 1;
        run_worker(Fn("namespace_child"), o);
        m.shutdown();
        print("ok");
    "#)
    .success()
    .stdout("ok\n");
}

#[test]
fn proxies_behave_like_pythons() {
    run(r#"
        let m = Manager();
        let d = m.dict(#{ a: 1 });
        eq(d.get("zz"), (), "get of a missing key");
        eq(d.get("zz", 0), 0, "get with a default");
        eq(kind_of(|| d["zz"]), "KeyError", "d['zz']");
        eq(d.setdefault("b", 2), 2, "setdefault");
        eq(d.setdefault("b", 3), 2, "setdefault again");
        eq(d.pop("a"), 1, "pop");
        eq(d.pop("a", "gone"), "gone", "pop with a default");
        eq(kind_of(|| d.pop("a")), "KeyError", "pop of a missing key");
        d.update(#{ c: 3 });
        d.update([[4, "four"], [[1, 2].len(), "two"]]);
        eq("c" in d, true, "'c' in d");
        eq(4 in d, true, "4 in d");
        eq(4.0 in d, false, "4.0 in d: keys compare by type");
        eq(kind_of(|| { d[[1]] = 1; }), "TypeError", "an array as a key");
        eq(`${d}`, `{"b": 2, "c": 3, 4: "four", 2: "two"}`, "str(d)");
        let other = m.dict([[true, "yes"]]);
        other.update(d);
        eq(other.keys(), [true, "b", "c", 4, 2], "update from another dict");
        let ns = m.Namespace(#{ count: 1 });
        ns.count += 5;
        eq(ns.count, 6, "ns.count += 5");

        let l = m.list([3, 1, 2]);
        eq(kind_of(|| l[3]), "IndexError", "l[3]");
        eq(l[-1], 2, "l[-1]");
        l.push(0);
        l.insert(0, 9);
        eq(l.to_array(), [9, 3, 1, 2, 0], "after push and insert");
        l.remove(1);
        eq(kind_of(|| l.remove(42)), "ValueError", "remove of a missing value");
        l.sort();
        eq(l.to_array(), [0, 2, 3, 9], "sorted");
        eq(2.0 in l, true, "2.0 in l: numbers compare by value");
        l.push("x");
        eq(kind_of(|| l.sort()), "TypeError", "sorting ints and a string");
        eq(l[1..=2], [2, 3], "l[1..=2]");
        let copy = m.list(l);
        copy.extend(m.list([7]));
        eq(copy.to_array(), [0, 2, 3, 9, "x", 7], "a list from and extended by lists");
        l.clear();
        eq(kind_of(|| l.pop()), "IndexError", "pop from an empty list");

        let v = m.Value(#{ nested: [1, 2] });
        eq(v.value.nested[1], 2, "any value travels");
        eq(`${m.Value("d", 1.5)}`, "Value('d', 1.5)", "str of a Value");
        eq(kind_of(|| { v.value = || 1; }), "ValueError", "a closure in a Value");

        let q = m.Queue();
        eq(kind_of(|| q.get(0.01)), "Empty", "get with a timeout");
        eq(kind_of(|| q.get_nowait()), "Empty", "get_nowait");
        q.put_nowait(1);
        eq(q.get(false), 1, "get(block=false)");
        let bounded = m.Queue(1);
        bounded.put("a");
        eq(kind_of(|| bounded.put("b", 0.01)), "Full", "put with a timeout");
        eq(kind_of(|| bounded.put_nowait("b")), "Full", "put_nowait");
        eq(kind_of(|| q.get(-1)), "ValueError", "a negative timeout");

        let lock = m.Lock();
        eq(lock.acquire(false), true, "acquire(false) of a free lock");
        eq(lock.acquire(false), false, "acquire(false) of a held lock");
        eq(lock.acquire(0.01), false, "acquire(0.01) of a held lock");
        lock.release();
        eq(kind_of(|| { with lock { throw "inside"; } }), "inside", "an error in with");
        eq(lock.locked(), false, "with releases on error");
        eq(kind_of(|| { with m { } }), "TypeError", "with over a manager");
        eq(type_of(d), "DictProxy", "type_of");
        eq(type_of(m), "SyncManager", "type_of");
        print("ok");
    "#)
    .success()
    .stdout("ok\n");
}

#[test]
fn every_process_at_any_depth_shares_the_containers_and_each_call_is_atomic() {
    // 6 processes x 100 locked read-modify-writes, plus children and grandchildren
    // appending: nothing is lost.
    run(r#"
        let m = Manager();
        let total = m.Value(0);
        let lock = m.Lock();
        let l = m.list();
        let d = m.dict();
        let ps = [];
        for i in 0..6 {
            ps.push(spawn {
                for j in 0..100 { with lock { total.value += 1; } }
                let child = spawn { l.append(getpid()); d[getpid()] = "grandchild"; };
                l.append(getpid());
                child.join();
            });
        }
        for p in ps { p.join(); }
        eq(total.value, 600, "total");
        eq(l.len(), 12, "appends");
        eq(d.len(), 6, "grandchildren's entries");
        print("ok");
    "#)
    .success()
    .stdout("ok\n");
}

#[test]
fn a_process_killed_holding_the_lock_or_waiting_breaks_nothing() {
    let run = run(r#"
        let m = Manager();
        let lock = m.Lock();
        let q = m.Queue();
        let d = m.dict();

        // Killed while holding the lock: the manager releases it.
        let p = spawn { lock.acquire(); q.put("held"); sleep(100); };
        eq(q.get(), "held", "the holder is ready");
        p.kill();
        p.join();
        eq(lock.acquire(10), true, "acquire after the holder was killed");
        lock.release();

        // Killed while its get waits in the manager: nothing is lost, others are served.
        let g = spawn { q.get(); exit(3); };
        sleep(0.2);
        d["x"] = 1;
        eq(d["x"], 1, "the dict works while a get waits");
        g.kill();
        eq(g.join(), -9, "the waiting getter was killed");
        q.put("kept");
        eq(q.get(10), "kept", "the value put after the getter died");

        // Killed while its acquire waits: the lock goes to the next waiter.
        lock.acquire();
        let w = spawn { lock.acquire(); exit(4); };
        sleep(0.2);
        w.kill();
        w.join();
        let next = spawn { exit(if lock.acquire(10) { 0 } else { 1 }); };
        lock.release();
        eq(next.join(), 0, "the next waiter got the lock");
        print("ok");
    "#);
    run.success().stdout("ok\n");
}

#[test]
fn an_inherited_connection_is_not_kept_by_a_grandchild() {
    // `mid` holds the lock and forks a child that outlives it: the child must not hold
    // mid's connection open, or the manager could not see mid end and release the lock.
    run(r#"
        let m = Manager();
        let lock = m.Lock();
        let q = m.Queue();
        let stop = Event();
        let mid = spawn {
            lock.acquire();
            let c = spawn { stop.wait(); };
            q.put("ready");
            sleep(100);
        };
        eq(q.get(), "ready", "mid is ready");
        mid.kill();
        mid.join();
        eq(lock.acquire(10), true, "released although mid's child lives");
        stop.set();
        print("ok");
    "#)
    .success()
    .stdout("ok\n");
}

#[test]
fn a_waiting_acquire_or_get_does_not_hold_up_other_clients() {
    let run = run(r#"
        let m = Manager();
        let lock = m.Lock();
        let q = m.Queue();
        let d = m.dict();
        lock.acquire();
        let waiters = [];
        for i in 0..3 { waiters.push(spawn { lock.acquire(); d[`lock ${i}`] = true; lock.release(); }); }
        for i in 0..3 { waiters.push(spawn { d[`got ${i}`] = q.get(); }); }
        sleep(0.3);
        // Everyone above waits in the manager; this process is served meanwhile.
        let t = timestamp();
        for i in 0..50 { d["busy"] = i; }
        eq(d["busy"], 49, "served while others wait");
        print(`served in ${if t.elapsed < 5.0 { "time" } else { t.elapsed }}`);
        lock.release();
        for i in 0..3 { q.put(i); }
        for w in waiters { eq(w.join(), 0, "a waiter's exit code"); }
        eq(d.len(), 7, "entries");
        print("ok");
    "#);
    run.success().stdout("served in time\nok\n");
}

#[test]
fn timeouts_are_kept_by_the_manager() {
    let run = run(r#"
        let m = Manager();
        let lock = m.Lock();
        lock.acquire();
        let t = timestamp();
        let p = spawn { exit(if lock.acquire(0.3) { 1 } else { 0 }); };
        eq(p.join(), 0, "acquire(0.3) of a held lock gives false");
        let q = m.Queue();
        eq(kind_of(|| q.get(0.3)), "Empty", "get(0.3) of an empty queue");
        print(t.elapsed);
    "#);
    run.success();
    let secs: f64 = run.stdout.trim().parse().unwrap();
    assert!((0.55..20.0).contains(&secs), "took {secs} s");
}

#[test]
fn a_proxy_used_after_shutdown_is_a_connection_refused_error() {
    run(r#"
        let m = Manager();
        let d = m.dict();
        d["x"] = 1;
        let later = Event();
        // A child forked before the shutdown sees it too.
        let p = spawn {
            later.wait();
            try { d["x"] = 2; exit(1); } catch (e) { exit(if e.kind == "ConnectionRefusedError" && e.errno == 111 { 0 } else { 2 }); }
        };
        m.shutdown();
        m.shutdown();                                  // a second call does nothing
        later.set();
        eq(p.join(), 0, "the child's call after shutdown");
        eq(kind_of(|| d["x"]), "ConnectionRefusedError", "d['x'] after shutdown");
        eq(kind_of(|| m.dict()), "ConnectionRefusedError", "m.dict() after shutdown");
        eq(`${m}`.ends_with("shut down>"), true, "str(m)");
        print(d);
    "#)
    .success()
    .stdout("<DictProxy: the Manager was shut down (`shutdown()`)>\n");
}

#[test]
fn the_bundled_manager_script_counts_words() {
    Test::new()
        .file("scripts/manager_dict.rhai")
        .run()
        .success()
        .stdout(
            "brown: 1\ndog: 2\nfox: 2\njumps: 1\nlazy: 1\nover: 1\nquick: 1\nruns: 1\nsleeps: 1\n\
             the: 4\n10 words, counted by 4 processes\n",
        );
}

/// A script run that stops at marker lines (`print(...)` then `input("")`).
struct Paused {
    child: Option<Child>,
    pid: u32,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    _test: Test,
}

impl Paused {
    fn start(body: &str) -> Self {
        Self::start_test(Test::new().script(&format!("{CHECKS}\n{body}")), false)
    }

    /// Runs `test`; in a process group of its own if `group`, as a terminal's foreground
    /// job is, so that a signal to the group reaches every process of the run.
    fn start_test(test: Test, group: bool) -> Self {
        let mut command = test.command();
        if group {
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("procscript binary starts");
        let pid = child.id();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            child: Some(child),
            pid,
            stdin,
            stdout,
            _test: test,
        }
    }

    #[track_caller]
    fn marker(&mut self) -> String {
        let mut line = String::new();
        assert!(
            self.stdout.read_line(&mut line).unwrap_or(0) > 0,
            "the script ended before its next marker line"
        );
        line.trim_end().to_string()
    }

    fn resume(&mut self) {
        self.stdin.write_all(b"\n").unwrap();
        self.stdin.flush().unwrap();
    }

    fn finish(&mut self) -> Option<i32> {
        let child = self.child.take().unwrap();
        wait_with_timeout(child, Duration::from_secs(60))
            .status
            .code()
    }

    fn kill(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        self.kill();
    }
}

fn pid_of(line: &str, prefix: &str) -> u32 {
    line.strip_prefix(prefix)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("expected `{prefix}PID`, got {line:?}"))
}

#[test]
fn managers_leave_no_process_zombie_or_descriptor_behind() {
    let mut run = Paused::start(
        r#"
        print("ready");
        input("");
        for round in 0..10 {
            let m = Manager();
            let d = m.dict();
            let lock = m.Lock();
            let ps = [];
            for i in 0..3 { ps.push(spawn { with lock { d[i] = getpid(); } }); }
            for p in ps { p.join(); }
            eq(d.len(), 3, "entries");
            if round % 2 == 0 { m.shutdown(); }
            // Odd rounds: the last handles go at the end of the loop body.
        }
        // A manager and proxy dropped at once, never used.
        Manager();
        let pid = { let m = Manager(); m.pid };
        print(`dropped ${pid}`);
        input("");
        print("done");
    "#,
    );
    assert_eq!(run.marker(), "ready");
    let baseline = fd_count(run.pid);
    run.resume();
    let dropped = pid_of(&run.marker(), "dropped ");
    assert!(
        !alive(dropped),
        "a dropped manager's process {dropped} lives"
    );
    let children = children_of(run.pid);
    assert!(
        children.is_empty(),
        "children left: {children:?}, zombies among them: {:?}",
        zombies_of(run.pid)
    );
    assert_eq!(fd_count(run.pid), baseline, "descriptors after 12 managers");
    run.resume();
    assert_eq!(run.marker(), "done");
    assert_eq!(run.finish(), Some(0));
}

#[test]
fn the_manager_ends_with_the_script_and_dies_with_a_killed_creator() {
    // The script ends without shutdown(): the manager ends with it.
    let run = Test::new()
        .script("let m = Manager(); let d = m.dict(); d[1] = 2; print(m.pid);")
        .run();
    run.success();
    let pid: u32 = run.stdout.trim().parse().unwrap();
    assert!(
        eventually(Duration::from_secs(10), || !alive(pid)),
        "manager {pid} outlived its script"
    );

    // The creator is killed with SIGKILL: the manager dies too.
    let mut paused = Paused::start(
        r#"
        let m = Manager();
        let q = m.Queue();
        print(`manager ${m.pid}`);
        q.get();
    "#,
    );
    let manager = pid_of(&paused.marker(), "manager ");
    assert!(alive(manager));
    paused.kill();
    assert!(
        eventually(Duration::from_secs(10), || !alive(manager)),
        "manager {manager} outlived its killed creator"
    );
}

#[test]
fn ctrl_c_at_a_terminal_ends_the_script_and_its_manager_at_once() {
    // Ctrl-C reaches the whole foreground group: the manager ignores it (a REPL keeps its
    // manager), and ends when the stopping script passes the SIGINT on, not at the SIGKILL
    // that would come after the grace period.
    let test = Test::new().script(
        r#"
        let m = Manager();
        let q = m.Queue();
        print(`manager ${m.pid}`);
        q.get();
        print("not reached");
    "#,
    );
    let trace = test.dir().join("run.yaml");
    let test = test.flags(&["--trace", trace.to_str().unwrap()]);
    let mut paused = Paused::start_test(test, true);
    let manager = pid_of(&paused.marker(), "manager ");
    // SAFETY: kill(2) on the process group of the script, which this test started in a
    // group of its own and has not reaped.
    unsafe { libc::kill(-(paused.pid as i32), libc::SIGINT) };
    assert_eq!(paused.finish(), Some(130));
    assert!(
        !alive(manager),
        "manager {manager} outlived the interrupted script"
    );
    let trace = std::fs::read_to_string(trace).unwrap();
    let manager_entry = trace
        .split("- pid: ")
        .find(|entry| entry.starts_with(&format!("{manager}\n")))
        .unwrap_or_else(|| panic!("no manager in the trace:\n{trace}"));
    assert!(
        manager_entry.contains("signal_name: SIGINT"),
        "the manager did not end by the SIGINT passed on:\n{manager_entry}"
    );
}

/// The process group of `pid` (field 5 of /proc/PID/stat).
fn process_group(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

#[test]
fn the_manager_is_out_of_reach_of_a_terminals_ctrl_c() {
    // In a process group of its own: a Ctrl-C at the terminal reaches the script (or the
    // REPL, which goes on), never the manager directly.
    let mut paused = Paused::start(
        r#"
        let m = Manager();
        print(`manager ${m.pid}`);
        input("");
    "#,
    );
    let manager = pid_of(&paused.marker(), "manager ");
    assert_eq!(process_group(manager), Some(manager));
    assert_ne!(process_group(paused.pid), Some(manager));
    paused.resume();
    assert_eq!(paused.finish(), Some(0));
}

#[test]
fn proxy_methods_reject_wrong_arguments_with_catchable_errors() {
    // Every value kind a script has, in every argument of the methods that answer at once
    // (a blocking `get` or `acquire` would wait, correctly, so those get timeouts of 0).
    let values = [
        "()", "0", "-1", "2.5", "\"\"", "\"x\"", "[]", "[1, [2]]", "#{}", "#{a: 1}", "blob()",
        "true", "'c'", "0..2", "|| 1", "m",
    ];
    let methods: &[(&str, &[&str])] = &[
        (
            "d",
            &[
                "get",
                "setdefault",
                "pop",
                "update",
                "contains",
                "keys",
                "popitem",
            ],
        ),
        (
            "l",
            &[
                "append", "extend", "insert", "pop", "remove", "index", "count", "sort",
            ],
        ),
        ("v", &["set", "get"]),
        ("ns", &["getattr", "setattr", "hasattr", "delattr"]),
        ("q", &["put_nowait", "get_nowait", "qsize"]),
        ("lock", &["release", "locked"]),
    ];
    // Every message is checked for Rust type names (`procscript::...`), which must never
    // reach a user.
    let mut script = String::from(
        "let m = Manager(); let d = m.dict(); let l = m.list(); let v = m.Value(0);\n\
         let ns = m.Namespace(); let q = m.Queue(1); let lock = m.Lock();\nlet calls = 0;\n\
         fn check(e) { if `${e}`.contains(\"::\") { print(`a Rust name: ${e}`); } }\n",
    );
    for (proxy, names) in methods {
        for name in *names {
            for a in values {
                script.push_str(&format!(
                    "try {{ {proxy}.{name}({a}); }} catch (e) {{ check(e); }} calls += 1;\n"
                ));
                for b in ["()", "\"k\"", "|| 1", "[[1]]"] {
                    script.push_str(&format!(
                        "try {{ {proxy}.{name}({a}, {b}); }} catch (e) {{ check(e); }} calls += 1;\n"
                    ));
                }
            }
        }
    }
    for a in values {
        for target in ["d", "l", "ns"] {
            script.push_str(&format!(
                "try {{ {target}[{a}] = {a}; }} catch (e) {{ check(e); }} try {{ {target}[{a}]; }} catch (e) {{ check(e); }} calls += 1;\n"
            ));
        }
        // `q.get(())` and `q.get(true)` wait for a value, as they should.
        if a != "()" && a != "true" {
            script.push_str(&format!(
                "try {{ q.get({a}); }} catch (e) {{ }} calls += 1;\n"
            ));
        }
        script.push_str("lock.acquire(false); lock.acquire(0);\n");
    }
    script.push_str("d[\"still\"] = \"works\"; print(`${d[\"still\"]} ${calls > 500}`);\n");
    let run = Test::new().script(&script).run();
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    assert_eq!(run.stdout, "works true\n");
    assert!(!run.stderr.contains("panic"), "{}", run.stderr);
}
