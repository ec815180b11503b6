//! Pipes, queues, locks, events, conditions, barriers and shared values across real
//! processes, including their failure paths (timeouts, closed pipes, dead holders, values
//! that cannot travel).

use crate::support::*;

fn run(script: &str) -> Run {
    Test::new().script(script).run()
}

// ------------------------------------------------------------------ Pipe

#[test]
fn pipe_carries_every_data_type_between_processes() {
    run(r#"
        let ends = Pipe();
        let a = ends[0];
        let b = ends[1];
        let p = spawn {
            let v = b.recv();
            b.send(v);   // echo it back unchanged
        };
        let value = #{ unit: (), yes: true, no: false, int: -7, float: 2.5, text: "héllo",
                       ch: 'x', bytes: blob(3, 0xff), list: [1, [2, #{ deep: [3] }]], empty: #{} };
        a.send(value);
        let back = a.recv();
        p.join();
        print(back == value);
        print(type_of(back.bytes));
        print(back.list[1][1].deep[0]);
        print(type_of(back.unit));
    "#)
    .success()
    .stdout("true\nblob\n3\n()\n");
}

#[test]
fn pipe_recv_timeout_poll_and_eof() {
    run(r#"
        let ends = Pipe();
        let a = ends[0];
        let b = ends[1];
        print(a.poll());
        try { a.recv(0.05); } catch (e) { print(e.kind); }
        let p = spawn { b.send("late"); };
        print(a.poll(10));
        print(a.recv(10));
        p.join();
        b.close();
        print(b.closed);
        print(a.poll(10));   // end of input counts as readable
        try { a.recv(); } catch (e) { print(e.kind); }
        try { b.send(1); } catch (e) { print(e.kind); }
        try { a.send(1); } catch (e) { print(e.kind); }
    "#)
    .success()
    .stdout("false\nTimeoutError\ntrue\nlate\ntrue\ntrue\nEOFError\nOSError\nBrokenPipeError\n");
}

#[test]
fn values_that_cannot_travel_are_value_errors() {
    run(r#"
        let ends = Pipe();
        let q = Queue();
        let x = 1;
        for v in [|| x, Process(|| 1), Lock(), [1, Event()], #{ inner: Value(1) }] {
            try { ends[0].send(v); } catch (e) { print(`${e.kind}: ${e.message.split("`")[1]}`); }
            try { q.put(v); } catch (e) { print(e.kind); }
        }
        print(q.qsize());
        print(ends[1].poll());
    "#)
    .success()
    .stdout(
        "ValueError: Fn\nValueError\nValueError: Process\nValueError\nValueError: Lock\nValueError\n\
         ValueError: Event\nValueError\nValueError: SharedValue\nValueError\n0\nfalse\n",
    );
}

#[test]
fn one_mebibyte_messages_travel_through_pipe_and_queue() {
    run(r#"
        let ends = Pipe();
        let q = Queue();
        let big = blob(1048576, 7);
        big[1048575] = 9;
        let p = spawn {
            ends[1].send(big);
            q.put(big);
            let text = "x";
            text.pad(1048576, 'y');
            q.put(#{ text: text });
        };
        let a = ends[0].recv();
        let b = q.get(30);
        let c = q.get(30);
        p.join();
        print(`${a.len()} ${a[0]} ${a[1048575]} ${a == big}`);
        print(`${b.len()} ${b == big}`);
        print(c.text.len());
    "#)
    .success()
    .stdout("1048576 7 9 true\n1048576 true\n1048576\n");
}

#[test]
fn script_pipe_ping() {
    Test::new()
        .file("scripts/pipe_ping.rhai")
        .run()
        .success()
        .stdout(
        "ping 1 -> pong 1 from child\nping 2 -> pong 2 from child\nping 3 -> pong 3 from child\n\
         after the child ended: EOFError\n",
    );
}

// ------------------------------------------------------------------ Queue

#[test]
fn queue_get_and_put_timeouts() {
    run(r#"
        let q = Queue(2);
        try { q.get(0.05); } catch (e) { print(e.kind); }
        try { q.get_nowait(); } catch (e) { print(e.kind); }
        print(q.empty());
        q.put(1);
        q.put(2, 0.05);
        print(`${q.qsize()} ${q.full()} ${q.empty()}`);
        try { q.put(3, 0.05); } catch (e) { print(e.kind); }
        try { q.put_nowait(3); } catch (e) { print(e.kind); }
        try { q.put(3, false); } catch (e) { print(e.kind); }
        let p = spawn { print(`child got ${q.get()}`); };
        p.join();
        q.put(3, 10);
        print(`${q.get()} ${q.get()} ${q.qsize()}`);
    "#)
    .success()
    .stdout("Empty\nEmpty\ntrue\n2 true false\nFull\nFull\nFull\nchild got 1\n2 3 0\n");
}

#[test]
fn queue_many_producers_and_consumers() {
    run(r#"
        let q = Queue(16);
        let out = Queue();
        let producers = [];
        for id in 0..4 {
            producers.push(spawn { for i in 0..250 { q.put([id, i]); } });
        }
        let consumers = [];
        for c in 0..3 {
            consumers.push(spawn {
                let seen = 0;
                let sum = 0;
                loop {
                    let item = q.get(30);
                    if item == () { break; }
                    seen += 1;
                    sum += item[1];
                }
                out.put([seen, sum]);
            });
        }
        for p in producers { p.join(); }
        for c in 0..3 { q.put(()); }
        let seen = 0;
        let sum = 0;
        for c in 0..3 { let r = out.get(30); seen += r[0]; sum += r[1]; }
        for p in consumers { p.join(); }
        print(`${seen} ${sum} ${q.qsize()} ${q.empty()}`);
    "#)
    .success()
    .stdout(&format!("1000 {} 0 true\n", 4 * (249 * 250 / 2)));
}

#[test]
fn queue_consumer_killed_while_waiting_does_not_break_the_queue() {
    run(r#"
        let q = Queue();
        let ready = Event();
        let p = spawn { ready.set(); q.get(); };
        ready.wait(10);
        sleep(0.05);   // let it block in get(), holding the read lock
        p.kill();
        p.join();
        q.put("after");
        print(q.get(10));
    "#)
    .success()
    .stdout("after\n");
}

#[test]
fn script_producer_consumer() {
    Test::new()
        .file("scripts/producer_consumer.rhai")
        .run()
        .success()
        .stdout("items consumed: 300 of 300\nsum: 14850 (expected 14850)\nleft in the queue: 0\n");
}

// ------------------------------------------------------------------ Locks and semaphores

#[test]
fn lock_timeout_across_processes_and_misuse() {
    run(r#"
        let lock = Lock();
        let held = Event();
        let proceed = Event();
        let p = spawn { lock.acquire(); held.set(); proceed.wait(30); lock.release(); };
        held.wait(30);
        print(lock.holder == p.pid);
        print(lock.acquire(0.05));
        print(lock.acquire(false));
        proceed.set();
        print(lock.acquire(30));
        p.join();
        try { lock.acquire(); } catch (e) { print(e.kind); }
        lock.release();
        try { lock.release(); } catch (e) { print(e.kind); }
        print(lock.holder == ());
        try { lock.acquire("soon"); } catch (e) { print(e.kind); }
        try { lock.acquire(-1); } catch (e) { print(e.kind); }
    "#)
    .success()
    .stdout("true\nfalse\nfalse\ntrue\nProcessError\nValueError\ntrue\nTypeError\nValueError\n");
}

#[test]
fn a_lock_holder_that_dies_is_noticed() {
    let run = run(r#"
        let lock = Lock();
        let held = Event();
        let p = spawn { lock.acquire(); held.set(); sleep(60); };
        held.wait(30);
        print(lock.acquire(0.1));      // a timeout still works while it lives
        p.kill();
        try {
            lock.acquire(30);
            print("no error");
        } catch (e) {
            print(e.kind);
            print(e.message.contains(`${p.pid}`));
        }
        print(lock.acquire(1));          // freed: acquiring again works
        lock.release();
        p.join();
    "#);
    run.success().stdout("false\nProcessError\ntrue\ntrue\n");
    assert!(run.elapsed.as_secs() < 20, "took {:?}", run.elapsed);
}

#[test]
fn a_dead_holder_is_noticed_by_sibling_waiters() {
    run(r#"
        let lock = RLock();
        let held = Event();
        let holder = spawn { lock.acquire(); lock.acquire(); held.set(); sleep(60); };
        held.wait(30);
        let results = Queue();
        let waiters = [];
        for i in 0..2 {
            waiters.push(spawn {
                let outcome = "";
                try { outcome = if lock.acquire(30) { "acquired" } else { "timed out" }; } catch (e) { outcome = e.kind; }
                if outcome == "ProcessError" { outcome = "noticed, then " + if lock.acquire(30) { "acquired" } else { "timed out" }; }
                results.put(outcome);
                lock.release();
            });
        }
        sleep(0.1);
        holder.kill();
        let got = [results.get(30), results.get(30)];
        got.sort();
        for w in waiters { w.join(); }
        print(got);
    "#)
    .success()
    .stdout("[\"acquired\", \"noticed, then acquired\"]\n");
}

#[test]
fn rlock_is_reentrant_and_owned() {
    run(r#"
        let r = RLock();
        print(r.acquire());
        print(r.acquire(0));
        let p = spawn {
            print(`child: ${r.acquire(0.05)}`);
            try { r.release(); } catch (e) { print(`child: ${e.kind}`); }
        };
        p.join();
        r.release();
        print(r.holder == getpid());
        r.release();
        print(r.holder == ());
        try { r.release(); } catch (e) { print(e.kind); }
    "#)
    .success()
    .stdout("true\ntrue\nchild: false\nchild: AssertionError\ntrue\ntrue\nAssertionError\n");
}

#[test]
fn semaphores_count_and_bound() {
    run(r#"
        let s = Semaphore(2);
        let inside = Value(0);
        let most = Value(0);
        let ps = [];
        for i in 0..5 {
            ps.push(spawn {
                for j in 0..20 {
                    with s {
                        let now = inside.add(1);
                        loop { let m = most.value; if now <= m || most.compare_exchange(m, now) { break; } }
                        inside.add(-1);
                    }
                }
            });
        }
        for p in ps { p.join(); }
        print(`most inside at once: ${most.value <= 2}, value ${s.get_value()}`);
        let b = BoundedSemaphore(1);
        print(b.acquire());
        print(b.acquire(0.05));
        b.release();
        try { b.release(); } catch (e) { print(e.kind); }
        let plain = Semaphore(0);
        print(plain.acquire(false));
        plain.release();
        plain.release();
        print(plain.get_value());
        let p = spawn { plain.acquire(); plain.acquire(); plain.acquire(); };
        sleep(0.05);
        plain.release();
        print(p.join(30));
        try { Semaphore(-1); } catch (e) { print(e.kind); }
    "#)
    .success()
    .stdout("most inside at once: true, value 2\ntrue\nfalse\nValueError\nfalse\n2\n0\nValueError\n");
}

#[test]
fn with_releases_on_error_and_on_break() {
    run(r#"
        let lock = Lock();
        try { with lock { throw "boom"; } } catch (e) { print(`${e} ${lock.holder == ()}`); }
        for i in 0..3 { with lock { if i == 1 { break; } } }
        print(lock.holder == ());
        let x = with lock { 40 + 2 };
        print(x);
        let r = RLock();
        with r { with r { print(r.holder == getpid()); } }
        print(r.holder == ());
        let c = Condition();
        with c { print(c.acquire(0)); c.release(); }
        let s = BoundedSemaphore(1);
        with s { print(s.get_value()); }
        print(s.get_value());
        try { with 42 { print("never"); } } catch (e) { print(e.kind); }
        fn f(lock) { with lock { return "returned"; } }
        print(f(lock));
        print(lock.holder == ());
    "#)
    .success()
    .stdout("boom true\ntrue\n42\ntrue\ntrue\ntrue\n0\n1\nTypeError\nreturned\ntrue\n");
}

// ------------------------------------------------------------------ Event, Condition, Barrier

#[test]
fn event_wakes_other_processes() {
    run(r#"
        let e = Event();
        print(e.wait(0.05));
        let out = Queue();
        let ps = [];
        for i in 0..3 { ps.push(spawn { out.put(e.wait(30)); }); }
        e.set();
        print([out.get(30), out.get(30), out.get(30)]);
        for p in ps { p.join(); }
        print(e.is_set());
        e.clear();
        print(e.is_set());
    "#)
    .success()
    .stdout("false\n[true, true, true]\ntrue\nfalse\n");
}

#[test]
fn condition_wait_notify_across_processes() {
    run(r#"
        let c = Condition();
        let items = Value(0);
        let p = spawn {
            for i in 0..3 { with c { items.add(1); c.notify(); } }
        };
        let taken = 0;
        while taken < 3 {
            with c {
                while items.value == 0 { c.wait(30); }
                items.add(-1);
                taken += 1;
            }
        }
        p.join();
        print(taken);
        with c { print(c.wait(0.05)); }
        with c { print(c.wait_for(|| items.value == 0, 1)); }
        with c { print(c.wait_for(|| items.value == 1, 0.05)); }
        try { c.notify(); } catch (e) { print(e.kind); }
        try { c.wait(); } catch (e) { print(e.kind); }
    "#)
    .success()
    .stdout("3\nfalse\ntrue\nfalse\nAssertionError\nAssertionError\n");
}

#[test]
fn barrier_indices_and_timeout() {
    run(r#"
        let b = Barrier(3);
        let out = Queue();
        let ps = [];
        for i in 0..2 { ps.push(spawn { out.put(b.wait(30)); }); }
        let mine = b.wait(30);
        let all = [mine, out.get(30), out.get(30)];
        all.sort();
        for p in ps { p.join(); }
        print(all);
        print(b.parties);
        try { b.wait(0.05); } catch (e) { print(e.kind); }
        print(b.n_waiting);
        try { Barrier(0); } catch (e) { print(e.kind); }
    "#)
    .success()
    .stdout("[0, 1, 2]\n3\nBrokenBarrierError\n0\nValueError\n");
}

#[test]
fn script_barrier() {
    let run = Test::new().file("scripts/barrier.rhai").run();
    run.success();
    let lines = run.lines();
    assert_eq!(lines.first(), Some(&"main: go"), "{}", run.stdout);
    assert_eq!(
        lines.last(),
        Some(&"main: all done [1, 1, 1]"),
        "{}",
        run.stdout
    );
    let phase1: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].ends_with("phase 1"))
        .collect();
    let phase2: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].ends_with("phase 2"))
        .collect();
    assert_eq!((phase1.len(), phase2.len()), (3, 3), "{}", run.stdout);
    assert!(
        phase1.iter().max() < phase2.iter().min(),
        "a phase 2 line came before a phase 1 line:\n{}",
        run.stdout
    );
}

// ------------------------------------------------------------------ Value, Array

#[test]
fn value_add_counts_every_increment() {
    run(r#"
        let v = Value(0);
        let ps = [];
        for i in 0..8 { ps.push(spawn { for j in 0..10000 { v.add(1); } }); }
        for p in ps { p.join(); }
        print(v.value);
    "#)
    .success()
    .stdout("80000\n");
}

#[test]
fn value_kinds_and_compare_exchange() {
    run(r#"
        let v = Value(5);
        print(v.compare_exchange(5, 6));
        print(v.compare_exchange(5, 7));
        print(v);
        v.value = 10;
        try { v.value = 1.5; } catch (e) { print(e.kind); }
        let f = Value(0.5);
        let p = spawn { f.add(1); f.add(0.25); };
        p.join();
        print(f.value);
        f.value = 2;
        print(f.value);
        try { Value("x"); } catch (e) { print(e.kind); }
    "#)
    .success()
    .stdout("true\nfalse\nValue(6)\nTypeError\n1.75\n2.0\nTypeError\n");
}

#[test]
fn shared_array_across_processes() {
    run(r#"
        let a = Array(5);
        let ps = [];
        // Each child stores into its own slot and counts itself in the last one.
        for i in 0..4 { ps.push(spawn { a[i] = i * i; a.add(4, 1); }); }
        for p in ps { p.join(); }
        print(a.to_array());
        print(`${a.len()} ${a[-1]}`);
        try { print(a[5]); } catch (e) { print(e.kind); }
        try { a[-6] = 1; } catch (e) { print(e.kind); }
        let f = Array([1, 2.5]);
        f[0] = 3;
        print(f);
        try { Array(["x"]); } catch (e) { print(e.kind); }
        try { Array(-1); } catch (e) { print(e.kind); }
        print(type_of(a.to_array()));
    "#)
    .success()
    .stdout("[0, 1, 4, 9, 4]\n5 4\nIndexError\nIndexError\nArray([3.0, 2.5])\nTypeError\nValueError\narray\n");
}

#[test]
fn script_counter() {
    let run = Test::new()
        .file("scripts/counter.rhai")
        .script_args(&["2000"])
        .run();
    run.success();
    let lines = run.lines();
    assert_eq!(lines[0], "plain variable:            0", "{}", run.stdout);
    let racy: i64 = lines[1].split_whitespace().nth(4).unwrap().parse().unwrap();
    assert!(racy > 0 && racy <= 16000, "{}", run.stdout);
    assert_eq!(
        lines[2], "shared, with lock:         16000",
        "{}",
        run.stdout
    );
    assert_eq!(
        lines[3], "shared, add(1):            16000",
        "{}",
        run.stdout
    );
}

#[test]
fn docs_examples_run() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/ipc.md")).unwrap();
    let blocks: Vec<&str> = text
        .split("```rhai\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert!(blocks.len() >= 8, "found {} rhai blocks", blocks.len());
    for block in blocks {
        let run = run(block);
        assert_eq!(
            run.code,
            Some(0),
            "docs/ipc.md example failed:\n{block}\nstderr:\n{}",
            run.stderr
        );
    }
}

#[test]
fn get_lock_guards_compound_updates() {
    run(r#"
        let v = Value(0);
        let a = Array([0.5]);
        let ps = [];
        for i in 0..4 {
            ps.push(spawn {
                for j in 0..500 {
                    with v.get_lock() { v.value += 1; }
                    with a.get_lock() { a[0] += 1; }
                }
            });
        }
        for p in ps { p.join(); }
        print(`${v.value} ${a[0]} ${type_of(v.get_lock())}`);
    "#)
    .success()
    .stdout("2000 2000.5 RLock\n");
}

#[test]
fn dropped_pipes_queues_and_locks_release_their_descriptors_and_memory() {
    // 4 descriptors per round: a leak would pass the usual limits (1024, 20000) by the end.
    run(r#"
        for i in 0..6000 {
            let ends = Pipe();
            let q = Queue(1);
            let l = Lock();
            let v = Value(i);
            ends[0].send(i);
            q.put(ends[1].recv());
        }
        print("done");
    "#)
    .success()
    .stdout("done\n");
}
