//! Locks, conditions, events, barriers and shared values, checked against CPython's own
//! tests: the methods of `_TestLock`, `_TestCondition`, `_TestEvent`, `_TestBarrier`,
//! `_TestValue` and `_TestArray` in Lib/test/_test_multiprocessing.py, translated the way a
//! user would (threads become processes; `self.assertX` becomes a `throw` or a printed
//! line). Then what procscript promises beyond Python: a dead holder is noticed at once,
//! `notify` wakes exactly one waiter, and blocked processes use no CPU.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;

fn run(script: &str) -> Run {
    Test::new().script(script).run()
}

/// A script that must print `ok` and nothing else, and end with 0.
#[track_caller]
fn ok(script: &str) {
    run(script).success().stdout("ok\n");
}

// ------------------------------------------------------------------ _TestLock

#[test]
fn test_lock() {
    ok(r#"
        let lock = Lock();
        if lock.acquire() != true { throw "acquire"; }
        if !lock.locked() { throw "locked"; }
        if lock.acquire(false) != false { throw "acquire(false)"; }
        lock.release();
        if lock.locked() { throw "still locked"; }
        try { lock.release(); throw "no error"; } catch (e) { if e.kind != "ValueError" { throw e; } }
        print("ok");
    "#);
}

#[test]
fn test_lock_locked_2processes_and_rlock_locked_2processes() {
    run(r#"
        fn f(lock, event, res) {
            lock.acquire();
            res.value = if lock.locked() { 1 } else { 0 };
            event.set();
        }
        for lock in [Lock(), RLock()] {
            let event = Event();
            let res = Value("b", 0);
            let p = Process(f, [lock, event, res]);
            p.start();
            event.wait();
            print(`${lock.locked()} ${res.value}`);
            p.join();
        }
    "#)
    .success()
    .stdout("true 1\ntrue 1\n");
}

#[test]
fn test_rlock() {
    ok(r#"
        let lock = RLock();
        if !lock.acquire() { throw 1; }
        if !lock.locked() { throw 2; }
        if !lock.acquire() || !lock.acquire() { throw 3; }
        lock.release();
        if !lock.locked() { throw 4; }
        lock.release();
        lock.release();
        if lock.locked() { throw 5; }
        try { lock.release(); throw "no error"; } catch (e) { if e.kind != "AssertionError" { throw e; } }
        print("ok");
    "#);
}

#[test]
fn test_lock_context_and_rlock_context() {
    run(r#"
        with Lock() { print("locked"); }
        let r = RLock();
        with r { print(r.locked()); }
    "#)
    .success()
    .stdout("locked\ntrue\n");
}

#[test]
fn test_repr_lock_and_rlock() {
    // Difference: the owner is shown as a pid, not a process name.
    run(r#"
        let lock = Lock();
        print(lock);
        lock.acquire();
        print(`${lock}` == `<Lock(owner=${getpid()})>`);
        lock.release();
        let held = Event();
        let p = spawn { lock.acquire(); held.set(); sleep(30); };
        held.wait(30);
        print(`${lock}` == `<Lock(owner=${p.pid})>`);
        p.terminate();
        p.join();
        let r = RLock();
        print(r);
        for i in 0..3 { r.acquire(); }
        print(`${r}` == `<RLock(owner=${getpid()}, count=3)>`);
    "#)
    .success()
    .stdout("<Lock(owner=None)>\ntrue\ntrue\n<RLock(owner=None, count=0)>\ntrue\n");
}

// ------------------------------------------------------------------ _TestSemaphore (timeouts)

#[test]
fn semaphore_test_timeout() {
    let run = run(r#"
        let sem = Semaphore(0);
        let t = timestamp();
        print(sem.acquire(false));
        print(sem.acquire(0.1));
        let e = t.elapsed;
        print(e >= 0.09 && e < 5.0);
    "#);
    run.success().stdout("false\nfalse\ntrue\n");
}

// ------------------------------------------------------------------ _TestCondition

/// The worker of CPython's condition tests: `f(cond, sleeping, woken, timeout)`.
const CONDITION_F: &str = r#"
    fn f(cond, sleeping, woken, timeout) {
        cond.acquire();
        sleeping.release();
        cond.wait(timeout);
        woken.release();
        cond.release();
    }
    // Polls `get_value()` until it is `value` (CPython's assertReachesEventually).
    fn reaches(sem, value) {
        let t = timestamp();
        while sem.get_value() != value && t.elapsed < 30 { sleep(0.01); }
        sem.get_value()
    }
"#;

#[test]
fn test_notify() {
    run(&format!(
        "{CONDITION_F}{}",
        r#"
        let cond = Condition();
        let sleeping = Semaphore(0);
        let woken = Semaphore(0);
        let ps = [Process(f, [cond, sleeping, woken, ()]), Process(f, [cond, sleeping, woken, ()])];
        for p in ps { p.start(); }
        sleeping.acquire();
        sleeping.acquire();
        sleep(0.1);
        print(woken.get_value());
        cond.acquire(); cond.notify(); cond.release();
        print(reaches(woken, 1));
        sleep(0.2);
        print(woken.get_value());      // still exactly one
        cond.acquire(); cond.notify(); cond.release();
        print(reaches(woken, 2));
        for p in ps { p.join(); }
    "#
    ))
    .success()
    .stdout("0\n1\n1\n2\n");
}

#[test]
fn test_notify_all() {
    run(&format!(
        "{CONDITION_F}{}",
        r#"
        let cond = Condition();
        let sleeping = Semaphore(0);
        let woken = Semaphore(0);
        let workers = [];
        // Some which time out.
        for i in 0..6 { let p = Process(f, [cond, sleeping, woken, 0.1]); p.start(); workers.push(p); }
        for i in 0..6 { sleeping.acquire(); }
        for i in 0..6 { woken.acquire(); }
        print(woken.get_value());
        // Some more, woken all at once.
        for i in 0..6 { let p = Process(f, [cond, sleeping, woken, ()]); p.start(); workers.push(p); }
        for i in 0..6 { sleeping.acquire(); }
        sleep(0.1);
        print(woken.get_value());
        cond.acquire(); cond.notify_all(); cond.release();
        for i in 0..6 { woken.acquire(); }
        print(woken.get_value());
        for w in workers { w.join(); }
    "#
    ))
    .success()
    .stdout("0\n0\n0\n");
}

#[test]
fn test_notify_n() {
    run(&format!(
        "{CONDITION_F}{}",
        r#"
        let cond = Condition();
        let sleeping = Semaphore(0);
        let woken = Semaphore(0);
        let workers = [];
        for i in 0..6 { let p = Process(f, [cond, sleeping, woken, ()]); p.start(); workers.push(p); }
        for i in 0..6 { sleeping.acquire(); }
        sleep(0.1);
        print(woken.get_value());
        cond.acquire(); cond.notify(2); cond.release();
        print(reaches(woken, 2));
        cond.acquire(); cond.notify(4); cond.release();
        print(reaches(woken, 6));
        cond.acquire(); cond.notify(3); cond.release();
        sleep(0.1);
        print(woken.get_value());
        for w in workers { w.join(); }
    "#
    ))
    .success()
    .stdout("0\n2\n6\n6\n");
}

#[test]
fn condition_test_timeout() {
    run(r#"
        let cond = Condition();
        let t = timestamp();
        cond.acquire();
        let res = cond.wait(0.1);
        cond.release();
        let e = t.elapsed;
        print(`${res} ${e >= 0.09 && e < 5.0}`);
    "#)
    .success()
    .stdout("false true\n");
}

#[test]
fn test_waitfor() {
    run(r#"
        fn waitfor_f(cond, state) {
            with cond {
                state.value = 0;
                cond.notify();
                let result = cond.wait_for(|| state.value == 4);
                if !result || state.value != 4 { exit(1); }
            }
        }
        let cond = Condition();
        let state = Value("i", -1);
        let p = Process(waitfor_f, [cond, state]);
        p.start();
        with cond {
            let result = cond.wait_for(|| state.value == 0);
            print(`${result} ${state.value}`);
        }
        for i in 0..4 {
            sleep(0.01);
            with cond { state.value += 1; cond.notify(); }
        }
        p.join();
        print(p.exitcode);
    "#)
    .success()
    .stdout("true 0\n0\n");
}

#[test]
fn test_waitfor_timeout() {
    run(r#"
        fn waitfor_timeout_f(cond, state, success, sem) {
            sem.release();
            with cond {
                let expected = 0.1;
                let t = timestamp();
                let result = cond.wait_for(|| state.value == 4, expected);
                if !result && t.elapsed >= expected - 0.01 { success.value = 1; }
            }
        }
        let cond = Condition();
        let state = Value("i", 0);
        let success = Value("i", 0);
        let sem = Semaphore(0);
        let p = Process(waitfor_timeout_f, [cond, state, success, sem]);
        p.start();
        print(sem.acquire(30));
        // Only 3 increments, so state == 4 is never reached.
        for i in 0..3 {
            sleep(0.01);
            with cond { state.value += 1; cond.notify(); }
        }
        p.join();
        print(success.value);
    "#)
    .success()
    .stdout("true\n1\n");
}

#[test]
fn test_wait_result() {
    // Difference: CPython's test then sends SIGINT to see KeyboardInterrupt raised from
    // `wait`; in procscript Ctrl-C ends the script (tested in tests/process.rs).
    run(r#"
        let c = Condition();
        with c {
            print(c.wait(0));
            print(c.wait(0.1));
            let p = spawn { with c { c.notify(); } };
            print(c.wait(60));
            p.join();
        }
    "#)
    .success()
    .stdout("false\nfalse\ntrue\n");
}

// ------------------------------------------------------------------ _TestEvent

#[test]
fn test_event() {
    run(r#"
        let event = Event();
        print(event.is_set());
        let t = timestamp();
        print(event.wait(0.0));
        print(t.elapsed < 1.0);
        let t = timestamp();
        print(event.wait(0.1));
        let e = t.elapsed;
        print(e >= 0.09 && e < 5.0);
        event.set();
        print(event.is_set());
        let t = timestamp();
        print(event.wait());
        print(event.wait(0.1));
        print(t.elapsed < 1.0);
        event.clear();
        let p = spawn { sleep(0.2); event.set(); };
        print(event.wait());
        p.join();
    "#)
    .success()
    .stdout("false\nfalse\ntrue\nfalse\ntrue\ntrue\ntrue\ntrue\ntrue\ntrue\n");
}

#[test]
fn event_test_repr() {
    // Difference: no address in the repr.
    run(r#"
        let event = Event();
        print(event);
        event.set();
        print(event);
        event.clear();
        print(event);
    "#)
    .success()
    .stdout("<Event unset>\n<Event set>\n<Event unset>\n");
}

// ------------------------------------------------------------------ _TestBarrier

/// CPython's `run_threads`: N - 1 processes and the main one run `f(args)`; all must end
/// well. `DummyList` (a list used as a counter) is a `Value`.
const BARRIER_RUN: &str = r#"
    const N = 5;
    fn run_threads(f, args) {
        let ps = [];
        for i in 0..global::N - 1 { let p = Process(f, args); p.start(); ps.push(p); }
        let g = f;
        for a in args { g = g.curry(a); }
        g.call();
        let codes = [];
        for p in ps { p.join(); codes.push(p.exitcode); }
        if codes != [0, 0, 0, 0] { throw `a party failed: ${codes}`; }
    }
"#;

fn barrier(body: &str) -> Run {
    run(&format!("{BARRIER_RUN}{body}"))
}

#[test]
fn test_barrier_and_barrier_10() {
    barrier(
        r#"
        fn multipass(barrier, results0, results1, n) {
            let m = barrier.parties;
            if m != global::N { throw "parties"; }
            for i in 0..n {
                results0.add(1);
                if results1.value != i * m { throw "results1 out of step"; }
                barrier.wait();
                results1.add(1);
                if results0.value != (i + 1) * m { throw "results0 out of step"; }
                barrier.wait();
            }
            if barrier.n_waiting != 0 { throw "n_waiting"; }
            if barrier.broken { throw "broken"; }
        }
        for passes in [1, 10] {
            let b = Barrier(N, (), 30);
            let results0 = Value(0);
            let results1 = Value(0);
            run_threads(multipass, [b, results0, results1, passes]);
            print(`${results0.value} ${results1.value}`);
        }
    "#,
    )
    .success()
    .stdout("5 5\n50 50\n");
}

#[test]
fn barrier_test_wait_return() {
    barrier(
        r#"
        fn wait_return_f(barrier, queue) { queue.put(barrier.wait()); }
        let b = Barrier(N, (), 30);
        let queue = Queue();
        run_threads(wait_return_f, [b, queue]);
        let results = [];
        for i in 0..N { results.push(queue.get()); }
        print(results.filter(|r| r == 0).len());
        results.sort();
        print(results);
    "#,
    )
    .success()
    .stdout("1\n[0, 1, 2, 3, 4]\n");
}

#[test]
fn barrier_test_action() {
    barrier(
        r#"
        fn action_f(barrier, results) {
            barrier.wait();
            if results.value != 1 { throw "RuntimeError"; }
        }
        let results = Value(0);
        let b = Barrier(N, || results.add(1));
        run_threads(action_f, [b, results]);
        print(results.value);
    "#,
    )
    .success()
    .stdout("1\n");
}

#[test]
fn barrier_test_abort() {
    barrier(
        r#"
        fn abort_f(barrier, results1, results2) {
            try {
                let i = barrier.wait();
                if i == global::N / 2 { throw #{ kind: "RuntimeError" }; }
                barrier.wait();
                results1.add(1);
            } catch (e) {
                if e.kind == "BrokenBarrierError" { results2.add(1); }
                else if e.kind == "RuntimeError" { barrier.abort(); }
                else { throw e; }
            }
        }
        let b = Barrier(N, (), 30);
        let results1 = Value(0);
        let results2 = Value(0);
        run_threads(abort_f, [b, results1, results2]);
        print(`${results1.value} ${results2.value} ${b.broken}`);
    "#,
    )
    .success()
    .stdout("0 4 true\n");
}

#[test]
fn barrier_test_reset() {
    barrier(
        r#"
        fn reset_f(barrier, results1, results2, results3) {
            let i = barrier.wait();
            if i == global::N / 2 {
                // Wait until the other parties are all in the barrier.
                while barrier.n_waiting < global::N - 1 { sleep(0.001); }
                barrier.reset();
            } else {
                try {
                    barrier.wait();
                    results1.add(1);
                } catch (e) {
                    if e.kind != "BrokenBarrierError" { throw e; }
                    results2.add(1);
                }
            }
            // Now, pass the barrier again.
            barrier.wait();
            results3.add(1);
        }
        let b = Barrier(N, (), 30);
        let r1 = Value(0);
        let r2 = Value(0);
        let r3 = Value(0);
        run_threads(reset_f, [b, r1, r2, r3]);
        print(`${r1.value} ${r2.value} ${r3.value}`);
    "#,
    )
    .success()
    .stdout("0 4 5\n");
}

#[test]
fn barrier_test_abort_and_reset() {
    barrier(
        r#"
        fn abort_and_reset_f(barrier, barrier2, results1, results2, results3) {
            try {
                let i = barrier.wait();
                if i == global::N / 2 { throw #{ kind: "RuntimeError" }; }
                barrier.wait();
                results1.add(1);
            } catch (e) {
                if e.kind == "BrokenBarrierError" { results2.add(1); }
                else if e.kind == "RuntimeError" { barrier.abort(); }
                else { throw e; }
            }
            // Synchronize and reset the barrier. Must synchronize first so that everyone
            // has left it when we reset, and after so that no one enters it before the reset.
            if barrier2.wait() == global::N / 2 { barrier.reset(); }
            barrier2.wait();
            barrier.wait();
            results3.add(1);
        }
        let b = Barrier(N, (), 30);
        let b2 = Barrier(N);
        let r1 = Value(0);
        let r2 = Value(0);
        let r3 = Value(0);
        run_threads(abort_and_reset_f, [b, b2, r1, r2, r3]);
        print(`${r1.value} ${r2.value} ${r3.value}`);
    "#,
    )
    .success()
    .stdout("0 4 5\n");
}

#[test]
fn barrier_test_timeout() {
    barrier(
        r#"
        fn timeout_f(barrier, results) {
            let i = barrier.wait();
            if i == global::N / 2 { sleep(1.0); }   // one party is late
            try { barrier.wait(0.5); } catch (e) {
                if e.kind != "BrokenBarrierError" { throw e; }
                results.add(1);
            }
        }
        let b = Barrier(N, (), 30);
        let results = Value(0);
        run_threads(timeout_f, [b, results]);
        print(`${results.value} ${b.broken}`);
    "#,
    )
    .success()
    .stdout("5 true\n");
}

#[test]
fn barrier_test_default_timeout() {
    barrier(
        r#"
        fn default_timeout_f(barrier, results) {
            let i = barrier.wait(30);
            if i == global::N / 2 { sleep(1.0); }   // later than the default timeout
            try { barrier.wait(); } catch (e) {
                if e.kind != "BrokenBarrierError" { throw e; }
                results.add(1);
            }
        }
        let b = Barrier(N, (), 0.5);
        let results = Value(0);
        run_threads(default_timeout_f, [b, results]);
        print(results.value);
    "#,
    )
    .success()
    .stdout("5\n");
}

#[test]
fn barrier_test_single_thread() {
    run(r#"
        let b = Barrier(1);
        print(b.wait());
        print(b.wait());
    "#)
    .success()
    .stdout("0\n0\n");
}

#[test]
fn barrier_test_thousand() {
    let run = run(r#"
        const N = 5;
        let passes = 1000;
        let b = Barrier(N, (), 30);
        let lock = Lock();
        let ends = Pipe();
        let conn = ends[0];
        let child_conn = ends[1];
        fn thousand_f(barrier, passes, conn, lock) {
            for i in 0..passes {
                barrier.wait();
                with lock { conn.send(i); }
            }
        }
        let ps = [];
        for j in 0..N { let p = Process(thousand_f, [b, passes, child_conn, lock]); p.start(); ps.push(p); }
        let bad = 0;
        for i in 0..passes {
            for j in 0..N { if conn.recv(30) != i { bad += 1; } }
        }
        for p in ps { p.join(); }
        print(`out of order: ${bad}`);
    "#);
    run.success().stdout("out of order: 0\n");
}

// ------------------------------------------------------------------ _TestValue

#[test]
fn test_value_and_rawvalue() {
    run(r#"
        let codes_values = [
            ["i", 4343, 24234],
            ["d", 3.625, -4.25],
            ["h", -232, 234],
            ["q", 8589934592, 17179869184],
            ["c", "x".to_blob(), "y".to_blob()],
        ];
        fn set_all(values, codes_values) {
            for i in 0..values.len() { values[i].value = codes_values[i][2]; }
        }
        for raw in [false, true] {
            let values = codes_values.map(|cv| if raw { RawValue(cv[0], cv[1]) } else { Value(cv[0], cv[1]) });
            let before = [];
            for i in 0..values.len() { before.push(values[i].value == codes_values[i][1]); }
            let p = Process(set_all, [values, codes_values]);
            p.start();
            p.join();
            let after = [];
            for i in 0..values.len() { after.push(values[i].value == codes_values[i][2]); }
            print(`${before} ${after}`);
        }
    "#)
    .success()
    .stdout(
        "[true, true, true, true, true] [true, true, true, true, true]\n\
         [true, true, true, true, true] [true, true, true, true, true]\n",
    );
}

/// CPython's test_getobj_getlock for Value, and test_getobj_getlock_obj for Array.
const GETOBJ_GETLOCK: &str = r#"
    fn lacks(f) {
        let lacking = false;
        try { f.call(); } catch (e) { lacking = e.kind == "AttributeError"; }
        lacking
    }
    let v1 = MAKE(#{});
    let lock1 = v1.get_lock();
    let obj1 = v1.get_obj();
    print(type_of(lock1));
    let v2 = MAKE(#{ lock: () });
    let lock2 = v2.get_lock();
    let obj2 = v2.get_obj();
    let lock = Lock();
    let v3 = MAKE(#{ lock: lock });
    let lock3 = v3.get_lock();
    let obj3 = v3.get_obj();
    lock.acquire();
    print(lock3.locked());         // the same lock
    lock.release();
    let v4 = MAKE(#{ lock: false });
    print(lacks(|| v4.get_lock()));
    print(lacks(|| v4.get_obj()));
    print(lacks(|| MAKE(#{ lock: "navalue" })));
    let v5 = RAW;
    print(lacks(|| v5.get_lock()));
    print(lacks(|| v5.get_obj()));
"#;

#[test]
fn test_getobj_getlock() {
    let script = GETOBJ_GETLOCK
        .replace("MAKE(", "Value(\"i\", 5, ")
        .replace("RAW", "RawValue(\"i\", 5)");
    run(&script)
        .success()
        .stdout("RLock\ntrue\ntrue\ntrue\ntrue\ntrue\ntrue\n");
}

#[test]
fn value_test_invalid_typecode() {
    run(r#"
        try { Value("x", ()); } catch (e) { print(`${e.kind} ${e.message.contains("bad typecode")}`); }
        try { RawValue("x", ()); } catch (e) { print(`${e.kind} ${e.message.contains("bad typecode")}`); }
    "#)
    .success()
    .stdout("TypeError true\nTypeError true\n");
}

// ------------------------------------------------------------------ _TestArray

#[test]
fn test_array_and_rawarray() {
    run(r#"
        fn f(seq) {
            for i in 1..seq.len() { seq[i] += seq[i - 1]; }
            seq
        }
        for raw in [false, true] {
            let seq = [680, 626, 934, 821, 150, 233, 548, 982, 714, 831];
            let arr = if raw { RawArray("i", seq) } else { Array("i", seq) };
            let checks = [len(arr) == len(seq), arr[3] == seq[3], arr[2..7] == seq.extract(2..7)];
            arr[4..8] = [1, 2, 3, 4];
            for (v, i) in [1, 2, 3, 4] { seq[4 + i] = v; }
            checks.push(arr[0..len(arr)] == seq);
            seq = f(seq);              // a script array is passed by value
            let p = Process(f, [arr]);
            p.start();
            p.join();
            checks.push(arr.to_array() == seq);
            print(checks);
        }
    "#)
    .success()
    .stdout("[true, true, true, true, true]\n[true, true, true, true, true]\n");
}

#[test]
fn test_array_from_size() {
    run(r#"
        let size = 10;
        for round in 0..3 {
            let arr = Array("i", size);
            let zeros = [];
            zeros.pad(size, 0);
            let fresh = len(arr) == size && arr.to_array() == zeros;
            arr[0..size] = range(0, 10);
            print(`${fresh} ${arr.to_array() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}`);
        }
    "#)
    .success()
    .stdout("true true\ntrue true\ntrue true\n");
}

#[test]
fn test_getobj_getlock_obj() {
    let script = GETOBJ_GETLOCK
        .replace("MAKE(", "Array(\"i\", range(0, 10), ")
        .replace("RAW", "RawArray(\"i\", range(0, 10))");
    run(&script)
        .success()
        .stdout("RLock\ntrue\ntrue\ntrue\ntrue\ntrue\ntrue\n");
}

#[test]
fn array_test_invalid_typecode() {
    run(r#"
        try { Array("x", []); } catch (e) { print(`${e.kind} ${e.message.contains("bad typecode")}`); }
        try { RawArray("x", []); } catch (e) { print(`${e.kind} ${e.message.contains("bad typecode")}`); }
    "#)
    .success()
    .stdout("TypeError true\nTypeError true\n");
}

// ------------------------------------------------------------------ beyond CPython's tests

#[test]
fn typecodes_hold_their_c_ranges_and_chars_their_bytes() {
    run(r#"
        for code in ["b", "B", "h", "H", "i", "I", "l", "L", "q", "Q"] {
            let v = Value(code, 0);
            let out = [];
            for x in [-129, -1, 255, 256, 65535, 65536, 4294967295, 4294967296] {
                try { v.value = x; out.push(if v.value == x { 1 } else { 9 }); } catch (e) { out.push(0); }
            }
            print(`${code} ${out}`);
        }
        let f = Value("f", 0.1);
        print(f.value != 0.1 && (f.value - 0.1).abs() < 1e-7);
        try { f.value = 1e300; } catch (e) { print(e.kind); }
        try { Value("i", 1.5); } catch (e) { print(e.kind); }
        print(Value("d", 1).value);
        let c = Value("c", "x");
        print(c);
        c.value = 65;
        print(c);
        try { c.value = "xy"; } catch (e) { print(e.kind); }
        try { c.add(1); } catch (e) { print(e.kind); }
        let s = Array("c", "hello");
        print(s);
        print(s.value == "hello".to_blob());
        s.value = "hi";
        print(s);
        print(s.value == "hi".to_blob());
        s.raw = "HEY";
        print(s);
        try { s.value = "much too long"; } catch (e) { print(e.kind); }
        print(s[1] == "E".to_blob());
        print(s[0..2] == "HE".to_blob());
        s[3..5] = "LO";
        print(s);
        try { Array("i", 3).value; } catch (e) { print(e.kind); }
        let h = Value("h", 32767);
        try { h.add(1); } catch (e) { print(e.kind); }
        print(h.add(-1));
        print(Value("i", 5).typecode);
    "#)
    .success()
    .stdout(
        "b [0, 1, 0, 0, 0, 0, 0, 0]\n\
         B [0, 0, 1, 0, 0, 0, 0, 0]\n\
         h [1, 1, 1, 1, 0, 0, 0, 0]\n\
         H [0, 0, 1, 1, 1, 0, 0, 0]\n\
         i [1, 1, 1, 1, 1, 1, 0, 0]\n\
         I [0, 0, 1, 1, 1, 1, 1, 0]\n\
         l [1, 1, 1, 1, 1, 1, 1, 1]\n\
         L [0, 0, 1, 1, 1, 1, 1, 1]\n\
         q [1, 1, 1, 1, 1, 1, 1, 1]\n\
         Q [0, 0, 1, 1, 1, 1, 1, 1]\n\
         true\nValueError\nTypeError\n1.0\n\
         Value('c', b'x')\nValue('c', b'A')\nValueError\nTypeError\n\
         Array('c', b'hello')\ntrue\nArray('c', b'hi\\x00lo')\ntrue\nArray('c', b'HEYlo')\n\
         ValueError\ntrue\ntrue\nArray('c', b'HEYLO')\nAttributeError\nValueError\n32766\ni\n",
    );
}

#[test]
fn array_slices_follow_python() {
    run(r#"
        let a = Array("i", [1, 2, 3, 4, 5]);
        print(a[1..3]);
        print(a[-2..5]);
        print(a[-3..=-1]);
        print(a[0..100]);
        print(a[4..2]);
        print(a[-1]);
        try { a[5]; } catch (e) { print(e.kind); }
        a[0..2] = [9, 8];
        a[-1..=-1] = [0];
        print(a.to_array());
        try { a[0..2] = [1]; } catch (e) { print(e.kind); }
        try { a[0..2] = [1, 2.5]; } catch (e) { print(e.kind); }
        print(a.to_array());
        let sum = 0;
        for x in a { sum += x; }
        print(sum);
        let d = Array("d", [0.5, 1, 2]);
        print(d);
        print(RawArray("H", 2));
    "#)
    .success()
    .stdout(
        "[2, 3]\n[4, 5]\n[3, 4, 5]\n[1, 2, 3, 4, 5]\n[]\n5\nIndexError\n[9, 8, 3, 4, 0]\n\
         ValueError\nTypeError\n[9, 8, 3, 4, 0]\n24\nArray('d', [0.5, 1.0, 2.0])\n\
         RawArray('H', [0, 0])\n",
    );
}

#[test]
fn a_lock_holder_killed_is_noticed_by_its_waiters_at_once() {
    let run = run(r#"
        let lock = Lock();
        let held = Event();
        let holder = spawn { lock.acquire(); held.set(); sleep(60); };
        held.wait(30);
        let results = Queue();
        let ready = Semaphore(0);
        let waiters = [];
        for i in 0..3 {
            waiters.push(spawn {
                ready.release();
                let outcome = "";
                try {
                    outcome = if lock.acquire(30) { "acquired" } else { "timed out" };
                    lock.release();
                } catch (e) {
                    outcome = if e.message.contains(`process ${holder.pid}`) { e.kind } else { e.message };
                }
                results.put(outcome);
            });
        }
        for i in 0..3 { ready.acquire(); }
        sleep(0.3);                       // all three are asleep in acquire
        let t = timestamp();
        holder.kill();
        let got = [results.get(30), results.get(30), results.get(30)];
        let took = t.elapsed;
        got.sort();
        print(got);
        print(`within a second: ${took < 1.0} (${took})`);
        for w in waiters { w.join(); }
        holder.join();
        print(lock.locked());
    "#);
    run.success();
    assert_eq!(
        run.lines()[0],
        r#"["ProcessError", "acquired", "acquired"]"#,
        "{}",
        run.stdout
    );
    assert!(
        run.lines()[1].starts_with("within a second: true"),
        "{}",
        run.stdout
    );
    assert_eq!(run.lines()[2], "false");
}

#[test]
fn a_lock_released_by_another_process_is_watched_again_after_its_holder_lets_go() {
    // Python lets any process release a Lock: the holder's robust list still has it then,
    // until the holder's next lock operation. Afterwards a new holder's death is noticed.
    run(r#"
        let lock = Lock();
        let other = Lock();
        let step = Semaphore(0);
        let proceed = Semaphore(0);
        let a = spawn {
            lock.acquire();
            step.release();
            proceed.acquire();                   // the parent released `lock` meanwhile
            with other {}                   // a lock operation: `lock` leaves a's list
            lock.acquire();
            lock.release();
            step.release();
            proceed.acquire();
        };
        step.acquire();
        lock.release();                     // released by another process than its holder
        proceed.release();
        step.acquire();
        let held = Event();
        let b = spawn { lock.acquire(); held.set(); sleep(60); };
        held.wait(30);
        b.kill();
        let t = timestamp();
        try { lock.acquire(30); print("no error"); } catch (e) { print(e.kind); }
        print(t.elapsed < 5.0);
        proceed.release();
        a.join();
        b.join();
    "#)
    .success()
    .stdout("ProcessError\ntrue\n");
}

#[test]
fn a_lock_holder_ending_normally_still_frees_the_lock_for_the_next() {
    run(r#"
        let r = RLock();
        let p = spawn { r.acquire(); r.acquire(); };
        p.join();
        print(r.locked());
        try { r.acquire(5); } catch (e) { print(`${e.kind} ${e.message.contains(`${p.pid}`)}`); }
        print(r.acquire(5));
        r.release();
        print(r.locked());
    "#)
    .success()
    .stdout("true\nProcessError true\ntrue\nfalse\n");
}

#[test]
fn notify_wakes_exactly_one_of_several_waiters_and_only_it_returns_true() {
    run(r#"
        let cond = Condition(Lock());
        let results = Queue();
        let sleeping = Semaphore(0);
        let ps = [];
        for i in 0..4 {
            ps.push(spawn { with cond { sleeping.release(); results.put(cond.wait(30)); } });
        }
        for i in 0..4 { sleeping.acquire(); }
        with cond { cond.notify(); }
        print(results.get(30));
        try { results.get(0.3); print("a second waiter woke"); } catch (e) { print(e.kind); }
        with cond { cond.notify(2); }
        print([results.get(30), results.get(30)]);
        try { results.get(0.3); print("a fourth waiter woke"); } catch (e) { print(e.kind); }
        with cond { cond.notify_all(); }
        print(results.get(30));
        for p in ps { p.join(); }
        with cond { print(cond.wait(0.05)); }
    "#)
    .success()
    .stdout("true\nEmpty\n[true, true]\nEmpty\ntrue\nfalse\n");
}

#[test]
fn timed_out_waits_return_on_time() {
    let run = run(r#"
        let lock = Lock();
        let cond = Condition();
        let b = Barrier(2);
        let held = Event();
        let p = spawn { lock.acquire(); held.set(); sleep(30); };
        held.wait(30);
        let check = |what, f| {
            let t = timestamp();
            let r = ();
            try { r = f.call(); } catch (e) { r = e.kind; }
            let e = t.elapsed;
            print(`${what}: ${r} ${e >= 0.19 && e < 2.0}`);
        };
        check.call("lock", || lock.acquire(0.2));
        check.call("condition", || { with cond { cond.wait(0.2) } });
        check.call("barrier", || b.wait(0.2));
        check.call("event", || Event().wait(0.2));
        check.call("semaphore", || Semaphore(0).acquire(0.2));
        p.kill();
        p.join();
    "#);
    run.success().stdout(
        "lock: false true\ncondition: false true\nbarrier: BrokenBarrierError true\n\
         event: false true\nsemaphore: false true\n",
    );
}

/// utime + stime of `pid` in clock ticks, from /proc/<pid>/stat.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After the command: state is field 3, utime 14 and stime 15 (1-based).
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    field(14).unwrap_or(0) + field(15).unwrap_or(0)
}

/// How many times `pid` gave up the CPU of its own accord (went to sleep), from
/// /proc/<pid>/status: a process blocked for good does not move it, one that polls does.
fn voluntary_switches(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn processes_blocked_in_locks_and_events_use_no_cpu() {
    let test = Test::new().script(
        r#"
        let lock = Lock();
        let rlock = RLock();
        let event = Event();
        let cond = Condition();
        let sem = Semaphore(0);
        let barrier = Barrier(11);
        let started = Semaphore(0);
        lock.acquire();
        rlock.acquire();
        let ps = [];
        for i in 0..10 { ps.push(spawn { started.release(); lock.acquire(); lock.release(); }); }
        for i in 0..10 { ps.push(spawn { started.release(); rlock.acquire(); rlock.release(); }); }
        for i in 0..10 { ps.push(spawn { started.release(); event.wait(); }); }
        for i in 0..10 { ps.push(spawn { with cond { started.release(); cond.wait(); } }); }
        for i in 0..10 { ps.push(spawn { started.release(); sem.acquire(); }); }
        for i in 0..10 { ps.push(spawn { started.release(); barrier.wait(); }); }
        print(ps.map(|p| p.pid));
        for p in ps { started.acquire(); }
        sleep(0.5);
        print("ready");
        input();
        lock.release();
        rlock.release();
        event.set();
        with cond { cond.notify_all(); }
        for i in 0..10 { sem.release(); }
        barrier.wait();
        for p in ps { p.join(); }
        print(`done ${ps.filter(|p| p.exitcode == 0).len()}`);
    "#,
    );
    let mut cmd = test.command();
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("procscript starts");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let lines = read_until(&mut out, |l| l == "ready");
    assert_eq!(lines.last().map(String::as_str), Some("ready"), "{lines:?}");
    let pids: Vec<u32> = lines[0]
        .trim_matches(|c| c == '[' || c == ']')
        .split(", ")
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 60);
    let before: u64 = pids.iter().map(|&p| cpu_ticks(p)).sum();
    let switches_before: u64 = pids.iter().map(|&p| voluntary_switches(p)).sum();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let after: u64 = pids.iter().map(|&p| cpu_ticks(p)).sum();
    let switches_after: u64 = pids.iter().map(|&p| voluntary_switches(p)).sum();
    let elapsed = start.elapsed();
    writeln!(child.stdin.take().unwrap(), "go").unwrap();
    let mut rest = String::new();
    for line in out.lines() {
        rest.push_str(&line.unwrap());
        rest.push('\n');
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{rest}");
    assert_eq!(rest, "done 60\n");
    // 60 processes asleep for 2 s: a 50 ms poll would cost each ~40 wake-ups a second.
    // Ticks are 10 ms; allow a few for scheduler accounting noise.
    assert!(
        after - before <= 3,
        "60 blocked processes used {} ticks of CPU in {elapsed:?}",
        after - before
    );
    // And none of them woke up to look (polling every 50 ms would be ~2,400 wake-ups).
    assert!(
        switches_after - switches_before <= 10,
        "60 blocked processes woke {} times in {elapsed:?}",
        switches_after - switches_before
    );
}
