//! `Pool`: results and their order, closures, task errors, dead workers (killed, `exit()`),
//! terminate, close/join, timeouts, wrong arguments, and no process left behind.

use std::io::BufReader;
use std::time::Duration;

use crate::support::*;

fn run(script: &str) -> Run {
    Test::new().script(script).run()
}

#[test]
fn results_come_back_in_order() {
    run(r#"
        fn square(x) { x * x }
        fn add(a, b) { a + b }
        let pool = Pool(2);
        let list = [];
        for i in 0..100 { list.push(i); }
        let squares = pool.map(square, list);
        print(squares.len());
        print(squares[0] == 0 && squares[99] == 9801 && squares[57] == 57 * 57);
        print(pool.map(square, []));
        print(pool.map(square, [3], #{ chunksize: 1, progress: true }));
        print(pool.starmap(add, [[1, 2], [3, 4], ["a", "b"]]));
        let out = [];
        for r in pool.imap(square, [1, 2, 3, 4, 5]) { out.push(r); }
        print(out);
        let got = [];
        for r in pool.imap_unordered(square, [1, 2, 3, 4, 5], #{ chunksize: 2 }) { got.push(r); }
        got.sort();
        print(got);
        print(pool.apply(add, [2, 3]));
        print(pool.apply(|| "none"));
        let rs = [];
        for i in 0..6 { rs.push(pool.apply_async(square, [i])); }
        let values = [];
        for r in rs { values.push(r.get()); }
        print(values);
        print(pool.map(|x| #{ x: x, b: blob(2, x) }, [1])[0].b);
    "#)
    .success()
    .stdout(
        "100\ntrue\n[]\n[9]\n[3, 7, \"ab\"]\n[1, 4, 9, 16, 25]\n[1, 4, 9, 16, 25]\n5\nnone\n\
         [0, 1, 4, 9, 16, 25]\nb'\\x01\\x01'\n",
    )
    .stderr("");
}

#[test]
fn work_is_spread_over_the_workers() {
    run(r#"
        let pool = Pool(2);
        let pids = pool.map(|x| { sleep(0.05); getpid() }, [1, 2, 3, 4], #{ chunksize: 1 });
        let seen = #{};
        for p in pids { seen[`${p}`] = true; }
        print(seen.len());
        print(pool.pids.len());
        print(pool.processes);
        print(pool.pids.contains(pids[0]));
        print(pool.map(|x| current_process().name.starts_with("ForkPoolWorker-"), [1])[0]);
        print(pool.map(|x| current_process().daemon, [1])[0]);
    "#)
    .success()
    .stdout("2\n2\n2\ntrue\ntrue\ntrue\n");
}

#[test]
fn closures_carry_their_captured_values() {
    run(r#"
        let pool = Pool(2);
        let k = 10;
        let names = #{ a: "alpha", b: "beta" };
        let prefix = "item";
        print(pool.map(|x| x + k, [1, 2, 3]));
        print(pool.map(|key| `${prefix}:${names[key]}`, ["a", "b"]));
        let counter = 0;
        print(pool.map(|x| { counter += x; counter }, [5]));
        print(counter);                    // each task changes its own copy
        let f = Fn("add3").curry(3);
        fn add3(a, b) { a + b }
        print(pool.map(f, [1, 2]));
        fn outer(pool) { let m = 7; pool.map(|x| x * m, [2]) }
        print(outer(pool));
        // The same closure sent again with other captured values: each call gets its own.
        let one = Pool(1);
        for k in [1, 2, 3] { print(one.map(|x| x * k, [1, 2])); }
    "#)
    .success()
    .stdout(
        "[11, 12, 13]\n[\"item:alpha\", \"item:beta\"]\n[5]\n0\n[4, 5]\n[14]\n\
         [1, 2]\n[2, 4]\n[3, 6]\n",
    );
}

#[test]
fn task_errors_are_raised_with_message_and_line() {
    run(r#"
        fn bad(x) {
            if x == 3 { throw "bad input " + x; }
            x
        }
        let pool = Pool(2);
        try { pool.map(bad, [1, 2, 3, 4]); print("no error"); } catch (e) {
            print(e.kind);
            print(e.message.starts_with("bad input 3 (in a pool task, at "));
            print(e.message.ends_with("script.rhai:3)"));
            print(e.line);
            print(e.thrown);
        }
        try { pool.apply(|| sleep(-1)); } catch (e) {
            print(e.kind);                 // a procscript error keeps its kind
            print(e.message.contains("non-negative"));
            print(e.line);
        }
        try { pool.map(|x| x / 0, [1]); } catch (e) {
            print(e.kind);
            print(e.message.contains("Division by zero"));
        }
        let r = pool.apply_async(bad, [3]);
        try { r.get(); } catch (e) { print(e.thrown); }
        print(r.successful());
        try {
            for x in pool.imap(bad, [1, 2, 3, 4]) { print(`got ${x}`); }
        } catch (e) { print(e.thrown); }
        try { pool.map(|x| Pipe(), [1]); } catch (e) { print(`${e.kind} ${e.message.contains("cannot be sent back")}`); }
        print(pool.map(bad, [5]));       // the pool goes on
    "#)
    .success()
    .stdout(
        "ProcessError\ntrue\ntrue\n3\nbad input 3\n\
         ValueError\ntrue\n14\nProcessError\ntrue\nbad input 3\nfalse\ngot 1\ngot 2\nbad input 3\n\
         ValueError true\n[5]\n",
    );
}

#[test]
fn uncaught_task_error_shows_the_task_message() {
    let run = run(r#"
        let pool = Pool(1);
        pool.map(|x| { throw "boom"; }, [1]);
    "#);
    run.code(1);
    run.stderr_has("boom (in a pool task, at");
}

#[test]
fn a_killed_worker_fails_the_call_instead_of_hanging() {
    let test = Test::new().script(
        r#"
        let pool = Pool(2);
        try {
            pool.map(|x| { print(`started ${getpid()}`); sleep(60); x }, [1], #{ chunksize: 1 });
            print("no error");
        } catch (e) {
            print(`${e.kind} ${e.exitcode}`);
            print(e.message.contains("killed by SIGKILL"));
        }
        print(pool.map(|x| x + 1, [1, 2, 3]));   // a replacement took its place
        print(pool.pids.len());
        "#,
    );
    let mut child = test.spawn();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let lines = read_until(&mut out, |l| l.starts_with("started "));
    let pid: i32 = lines.last().unwrap()["started ".len()..].parse().unwrap();
    // SAFETY: sending a signal to a pid the script just printed as its worker.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let rest = read_until(&mut out, |l| l.starts_with("2"));
    assert_eq!(rest, ["ProcessError -9", "true", "[2, 3, 4]", "2"]);
    child.stdout = None;
    let output = wait_with_timeout(child, Duration::from_secs(20));
    assert!(output.status.success());
}

#[test]
fn exit_in_a_task_fails_the_call_and_the_pool_goes_on() {
    let run = run(r#"
        let pool = Pool(2);
        try { pool.map(|x| { if x == 2 { exit(3); } x }, [1, 2, 3]); } catch (e) {
            print(`${e.kind} ${e.exitcode}`);
            print(e.message.contains("exited with code 3"));
        }
        let r = pool.apply_async(|| exit(4));
        try { r.get(); } catch (e) { print(e.exitcode); }
        print(pool.map(|x| x * 2, [1, 2, 3]));
        print(pool.pids.len());
    "#);
    run.success()
        .stdout("ProcessError 3\ntrue\n4\n[2, 4, 6]\n2\n");
    assert!(
        run.elapsed < Duration::from_secs(20),
        "took {:?}",
        run.elapsed
    );
}

#[test]
fn terminate_ends_workers_and_fails_waiting_results() {
    let run = run(r#"
        let pool = Pool(2);
        let r = pool.apply_async(|| { sleep(60); 1 });
        pool.terminate();
        try { r.get(); } catch (e) { print(`${e.kind} ${e.message}`); }
        print(active_children().len());
        print(pool.pids.len());
        try { pool.map(|x| x, [1]); } catch (e) { print(e.kind); }
        pool.join();                       // after terminate, join is fine
        pool.terminate();                  // twice too
        print(pool);
    "#);
    run.success().stdout(
        "ProcessError the Pool was terminated before this task finished\n0\n0\nValueError\n\
         <Pool processes=2 state=TERMINATE pool_size=0>\n",
    );
    assert!(
        run.elapsed < Duration::from_secs(20),
        "took {:?}",
        run.elapsed
    );
}

#[test]
fn close_then_join_finishes_queued_work() {
    run(r#"
        let pool = Pool(2);
        try { pool.join(); } catch (e) { print(e.kind); }
        let rs = [];
        for i in 0..5 { rs.push(pool.apply_async(|x| { sleep(0.02); x * 10 }, [i])); }
        pool.close();
        try { pool.apply(|| 1); } catch (e) { print(e.kind); }
        pool.join();
        let values = [];
        for r in rs { values.push(r.ready()); values.push(r.get()); }
        print(values);
        print(active_children().len());
        pool.close();
        pool.join();
    "#)
    .success()
    .stdout("ValueError\nValueError\n[true, 0, true, 10, true, 20, true, 30, true, 40]\n0\n");
}

#[test]
fn timeouts() {
    run(r#"
        let pool = Pool(1);
        let r = pool.apply_async(|| { sleep(0.3); "late" });
        print(r.ready());
        try { r.get(0.01); } catch (e) { print(e.kind); }
        print(r.get(30));
        print(r.get());
        print(r.ready());
        print(r.successful());
        let it = pool.imap(|x| { sleep(0.3); x }, [1, 2]);
        try { it.next(0.01); } catch (e) { print(e.kind); }
        print(it.next());
        print(it.next(30));
        print(it.next());
        try { r.get("soon"); } catch (e) { print(e.kind); }
        try { r.get(-1); } catch (e) { print(e.kind); }
        let q = pool.apply_async(|| { sleep(30); 1 });
        try { q.successful(); } catch (e) { print(e.kind); }
    "#)
    .success()
    .stdout(
        "false\nTimeoutError\nlate\nlate\ntrue\ntrue\nTimeoutError\n1\n2\nNone\nTypeError\nValueError\n\
         ValueError\n",
    );
}

#[test]
fn wrong_arguments_are_catchable_errors() {
    run(r#"
        fn square(x) { x * x }
        fn show(f) { try { f.call(); print("no error"); } catch (e) { print(e.kind); } }
        show(|| Pool(0));
        show(|| Pool(-1));
        show(|| Pool(5000));
        show(|| Pool("two"));
        show(|| Pool(1.5));
        let pool = Pool(1);
        show(|| pool.map(42, [1]));
        show(|| pool.map(square, 5));
        show(|| pool.map(square, [1], 5));
        show(|| pool.map(square, [1], #{ chunksize: 0 }));
        show(|| pool.map(square, [1], #{ chunksize: "x" }));
        show(|| pool.map(square, [1], #{ progress: 1 }));
        show(|| pool.map(square, [1], #{ colour: true }));
        show(|| pool.starmap(square, [1]));
        show(|| pool.imap("square", [1]));
        show(|| pool.apply(square, 3));
        show(|| pool.apply_async(square, #{}));
        show(|| pool.map(|x| x, [|| 1]));   // a closure cannot travel
        show(|| pool.map(square, [current_process()]));
        show(|| pool.map(Fn("nowhere"), [1]));
        show(|| pool.apply(|| Pool(1)));     // a worker is a daemon: no children
        print(pool.map(square, [4]));
    "#)
    .success()
    .stdout(
        "ValueError\nValueError\nValueError\nTypeError\nTypeError\nTypeError\nTypeError\n\
         TypeError\nValueError\nTypeError\nTypeError\nValueError\nTypeError\nTypeError\n\
         TypeError\nTypeError\nValueError\nValueError\nProcessError\nProcessError\n[16]\n",
    );
}

#[test]
fn a_pool_belongs_to_the_process_that_made_it() {
    run(r#"
        let pool = Pool(1);
        let q = Queue();
        let p = spawn {
            try { pool.map(|x| x, [1]); q.put("no error"); } catch (e) { q.put(e.kind); }
        };
        print(q.get(30));
        p.join();
        print(pool.map(|x| x + 1, [1]));
    "#)
    .success()
    .stdout("ProcessError\n[2]\n");
}

#[test]
fn dropped_pools_leave_no_process_behind() {
    let test = Test::new().script(
        r#"
        fn use_pool() {
            let pool = Pool(2);
            print(`pids ${pool.pids}`);
            pool.map(|x| x, [1, 2]);
        }
        use_pool();
        print(`children ${active_children().len()}`);
        let pool = Pool(2);
        print(`pids ${pool.pids}`);
        let r = pool.apply_async(|| { sleep(60); 1 });
        print("ready");
        // The script ends with the pool busy: it must not wait for the task.
        "#,
    );
    let mut child = test.spawn();
    let main = child.id();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let lines = read_until(&mut out, |l| l == "ready");
    let pids: Vec<u32> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("pids "))
        .flat_map(|l| {
            l.trim_matches(['[', ']'])
                .split(", ")
                .map(|p| p.parse::<u32>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(pids.len(), 4, "{lines:?}");
    assert!(lines.contains(&"children 0".to_string()), "{lines:?}");
    assert!(!alive(pids[0]) && !alive(pids[1]));
    // A worker ended by the script's end is a zombie for an instant, until it is reaped.
    assert!(eventually(Duration::from_secs(5), || zombies_of(main).is_empty()));
    child.stdout = None;
    let start = std::time::Instant::now();
    let output = wait_with_timeout(child, Duration::from_secs(20));
    assert!(output.status.success(), "{output:?}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
    for pid in pids {
        assert!(
            eventually(Duration::from_secs(5), || !alive(pid)),
            "worker {pid} outlived the script"
        );
    }
}

#[test]
fn script_pool_map() {
    let run = Test::new()
        .file("scripts/pool_map.rhai")
        .script_args(&["2000"])
        .run();
    run.success();
    run.stdout_has("squares: [0, 1, 4, 9, 16]");
    run.stdout_has("same results: true");
}

#[test]
fn a_worker_dying_inside_an_imap_loop_ends_the_loop_with_an_error() {
    // The worker waits a moment before it exits, so that it dies while the loop runs and
    // not already during the `imap` call (a pool call, which may fork a replacement).
    run(r#"
        let pool = Pool(1);
        try {
            for x in pool.imap(|x| { if x == 2 { sleep(0.2); exit(5); } x }, [1, 2, 3]) { print(`got ${x}`); }
        } catch (e) { print(`${e.kind} ${e.exitcode}`); }
        print(pool.pids.len());             // no fork inside the loop...
        print(pool.map(|x| x, [1, 2]));     // ...the next call forks a new worker
        print(pool.pids.len());
    "#)
    .success()
    .stdout("got 1\nProcessError 5\n0\n[1, 2]\n1\n");
}

/// Runs scripts at once, each in its own `procscript`, and returns their runs in order.
fn run_together(scripts: &[&str]) -> Vec<Run> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = scripts
            .iter()
            .map(|script| scope.spawn(move || Test::new().script(script).run()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn ranges_strings_and_blobs_are_lists() {
    run(r#"
        fn add(a, b) { a + b }
        let pool = Pool(2);
        print(pool.map(|x| x * 2, 0..5));
        print(pool.map(|x| x * 2, 0..=5));
        print(pool.map(|x| x * 2, range(0, 5)));
        print(pool.map(|x| x * 2, range(0, 10, 3)));
        print(pool.map(|x| x, 5..0));
        print(pool.map(|c| c.to_upper(), "abc"));
        print(pool.map(|b| b + 1, blob(3, 7)));
        print(pool.starmap(add, [0..2, "ab"]));
        print(pool.map_async(|x| x + 1, 0..3).get());
        let out = [];
        for r in pool.imap(|x| -x, 1..=3) { out.push(r); }
        print(out);
        print(pool.apply(add, 1..=2));
        for bad in [#{ a: 1 }, current_process(), 5, ()] {
            try { pool.map(|x| x, bad); } catch (e) { print(`${e.kind}: ${e.message}`); }
        }
        try { pool.map(|x| x, 0..100000000); } catch (e) { print(`${e.kind}: ${e.message}`); }
    "#)
    .success()
    .stdout(
        "[0, 2, 4, 6, 8]\n[0, 2, 4, 6, 8, 10]\n[0, 2, 4, 6, 8]\n[0, 6, 12, 18]\n[]\n\
         [A, B, C]\n[8, 8, 8]\n[1, \"ab\"]\n[1, 2, 3]\n[-1, -2, -3]\n3\n\
         TypeError: the list must be an array, a range, a string or another iterable, not map\n\
         TypeError: the list must be an array, a range, a string or another iterable, not Process\n\
         TypeError: the list must be an array, a range, a string or another iterable, not i64\n\
         TypeError: the list must be an array, a range, a string or another iterable, not ()\n\
         ValueError: a list of 100000000 items is too long for a pool call (at most 10000000): \
         cut it into parts\n",
    )
    .stderr("");
}

#[test]
fn a_task_with_the_wrong_number_of_arguments_is_a_type_error_in_the_caller() {
    let run = run(r#"
        fn task(x) { print("task ran"); x }
        fn pair(a, b) { print("pair ran"); a + b }
        fn two(a) { 1 }
        fn two(a, b) { 2 }
        let pool = Pool(1);
        let k = 1;
        for f in [
            || pool.apply(task, [1, 2]),
            || pool.apply_async(task, []),
            || pool.starmap(task, [[1], [1, 2]]),
            || pool.starmap_async(pair, [[1, 2], [3]]),
            || pool.map(pair, [1, 2]),
            || pool.map_async(pair, [1]),
            || pool.imap(pair, [1]),
            || pool.imap_unordered(pair, [1]),
            || pool.map(|a, b| a + b + k, [1]),
            || pool.apply(two, [1, 2, 3]),
            || pool.apply(task, [], #{ y: 1 }),
            || pool.map_async(task, [1], #{ callback: pair }),
            || Pool(#{ processes: 1, initializer: pair, initargs: [1] }),
        ] {
            try { f.call(); print("no error"); } catch (e) { print(`${e.kind}: ${e.message}`); }
        }
        print(pool.map(task, []));             // nothing to call: no error, as in Python
        print(pool.apply(two, [1]) + pool.apply(two, [1, 2]));
        print(pool.apply(pair, [], #{ b: 2, a: 1 }));
    "#);
    run.success().stdout(
        "TypeError: task takes 1 argument, 2 given\n\
         TypeError: task takes 1 argument, 0 given\n\
         TypeError: task takes 1 argument, 2 given (item 1)\n\
         TypeError: pair takes 2 arguments, 1 given (item 1)\n\
         TypeError: pair takes 2 arguments, 1 given\n\
         TypeError: pair takes 2 arguments, 1 given\n\
         TypeError: pair takes 2 arguments, 1 given\n\
         TypeError: pair takes 2 arguments, 1 given\n\
         TypeError: the closure takes 2 arguments, 1 given\n\
         TypeError: two takes 1 or 2 arguments, 3 given\n\
         TypeError: task got an unexpected keyword argument `y`\n\
         TypeError: `callback`: pair takes 2 arguments, 1 given\n\
         TypeError: pair takes 2 arguments, 1 given\n\
         []\n3\npair ran\n3\n",
    );
    assert!(!run.stdout.contains("task ran"), "{}", run.stdout);
}

#[test]
fn a_worker_killed_while_idle_is_replaced_and_the_next_call_succeeds() {
    // Each round kills an idle worker from outside (SIGKILL, as `kill -9` does) and calls
    // map at once, before or after its death is complete: the call must never fail.
    run(r#"
        let pool = Pool(2);
        let ok = 0;
        for round in 0..10 {
            let victim = pool.pids[round % 2];
            run(["kill", "-9", `${victim}`]);
            if pool.map(|x| x * 10, [1, 2, 3, 4], #{ chunksize: 1 }) == [10, 20, 30, 40] {
                ok += 1;
            }
            let pids = pool.pids;
            if pids.contains(victim) || pids.len() != 2 { print(`round ${round}: ${pids}`); }
        }
        print(`ok ${ok}`);
        // Noticed without a call that forks: the dead worker leaves pool.pids at once.
        let victim = pool.pids[0];
        run(["kill", "-9", `${victim}`]);
        let waited = 0;
        while pool.pids.contains(victim) && waited < 200 { sleep(0.05); waited += 1; }
        print(pool.pids.len());
        print(pool.apply(|| "next call"));
        print(pool.pids.len());
    "#)
    .success()
    .stdout("ok 10\n1\nnext call\n2\n")
    .stderr("");
}

#[test]
fn after_a_busy_worker_is_killed_the_rest_of_the_map_stops() {
    // Two chunks: the first worker blocks on item 0 and is SIGKILLed; the other has twelve
    // items of 0.4 s each. Without cancellation it would run all twelve (4.8 s); with it,
    // it stops after the item it is in.
    let test = Test::new().script(
        r#"
        let pool = Pool(2);
        try {
            pool.map(|x| {
                if x == 0 { print(`started ${getpid()}`); sleep(60); }
                if x >= 12 { print(`ran ${x}`); sleep(0.4); }
                x
            }, 0..24, #{ chunksize: 12 });
            print("no error");
        } catch (e) {
            print(`caught ${e.kind} ${e.exitcode}`);
        }
        sleep(4);
        print("after");
        print(pool.map(|x| x + 1, [1, 2]));
        "#,
    );
    let mut child = test.spawn();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let lines = read_until(&mut out, |l| l.starts_with("started "));
    let pid: i32 = lines.last().unwrap()["started ".len()..].parse().unwrap();
    // SAFETY: sending a signal to a pid the script just printed as its busy worker.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let mut lines = lines;
    lines.extend(read_until(&mut out, |l| l.starts_with('[')));
    child.stdout = None;
    let output = wait_with_timeout(child, Duration::from_secs(30));
    assert!(output.status.success(), "{output:?}");
    assert!(
        lines.contains(&"caught ProcessError -9".into()),
        "{lines:?}"
    );
    let after = lines.iter().position(|l| l == "after").unwrap();
    let ran = lines[..after]
        .iter()
        .filter(|l| l.starts_with("ran "))
        .count();
    assert!(ran <= 5, "the rest of the map ran on: {lines:?}");
    assert!(
        lines[after..].iter().all(|l| !l.starts_with("ran ")),
        "{lines:?}"
    );
    assert_eq!(lines.last().unwrap(), "[2, 3]");
}

#[test]
fn map_async_and_starmap_async_give_async_results() {
    run(r#"
        fn mul(a, b) { a * b }
        let pool = Pool(2);
        let r = pool.map_async(|x| { sleep(0.2); x * x }, [1, 2, 3], #{ chunksize: 1 });
        print(r);
        print(r.ready());
        try { r.successful(); } catch (e) { print(e.kind); }
        r.wait(0.01);
        print(r.ready());
        try { r.get(0.01); } catch (e) { print(e.kind); }
        r.wait();
        print(r.ready());
        print(r.successful());
        print(r.get());
        print(r.get(0));
        print(r);
        print(pool.starmap_async(mul, [[2, 3], [4, 5]], #{ chunksize: 2 }).get(30));
        let bad = pool.map_async(|x| { if x == 2 { throw "two"; } x }, [1, 2, 3]);
        bad.wait();
        print(bad.successful());
        try { bad.get(); } catch (e) { print(e.thrown); }
        try { bad.get(); } catch (e) { print(e.thrown); }
        try { pool.map_async(|x| x, [1], #{ colour: 1 }); } catch (e) { print(e.kind); }
        try { pool.map_async(|x| x, [1], #{ callback: 5 }); } catch (e) { print(e.kind); }
        try { pool.map(|x| x, [1], #{ callback: |v| v }); } catch (e) { print(e.kind); }
        try { r.wait("soon"); } catch (e) { print(e.kind); }
    "#)
    .success()
    .stdout(
        "<AsyncResult pending>\nfalse\nValueError\nfalse\nTimeoutError\ntrue\ntrue\n[1, 4, 9]\n\
         [1, 4, 9]\n<AsyncResult ready>\n[6, 20]\nfalse\ntwo\ntwo\nValueError\nTypeError\n\
         ValueError\nTypeError\n",
    )
    .stderr("");
}

#[test]
fn callbacks_run_in_the_callers_process() {
    run(r#"
        let pool = Pool(2);
        let me = getpid();
        let seen = [];
        let r = pool.apply_async(|x| x * 2, [21], #{},
            #{ callback: |v| seen.push(`value ${v} in main ${getpid() == me}`) });
        print(r.get());
        print(seen);
        let r = pool.map_async(|x| { if x == 3 { throw "three"; } x }, [1, 2, 3],
            #{ callback: |v| seen.push("wrong"), error_callback: |e| seen.push(`error ${e.thrown}`) });
        try { r.get(); } catch (e) { print(e.thrown); }
        print(seen);
        // A result the script does not keep still gets its callback, at a later pool call.
        pool.map_async(|x| x + 1, [1, 2], #{ callback: |v| seen.push(`dropped ${v}`) });
        pool.close();
        pool.join();
        print(seen);
        // A callback's error is raised by the pool call it ran in; the result is kept.
        let p = Pool(1);
        let r = p.apply_async(|| 5, [], #{}, #{ callback: |v| throw "callback failed" });
        try { r.get(); } catch (e) { print(e); }
        print(r.get());
        // With terminate, callbacks of unfinished results never run, as in Python.
        let r = p.apply_async(|| { sleep(30); 1 }, [], #{}, #{ callback: |v| print("never") });
        p.terminate();
        try { r.get(); } catch (e) { print(e.kind); }
    "#)
    .success()
    .stdout(
        "42\n[\"value 42 in main true\"]\nthree\n[\"value 42 in main true\", \"error three\"]\n\
         [\"value 42 in main true\", \"error three\", \"dropped [2, 3]\"]\ncallback failed\n5\n\
         ProcessError\n",
    )
    .stderr("");
}

#[test]
fn fire_and_forget_tasks_still_run() {
    let run = run(r#"
        let pool = Pool(2);
        for i in 0..4 { pool.apply_async(|i| print(`task ${i}`), [i]); }
        pool.map_async(|i| print(`map ${i}`), [7, 8]);
        pool.close();
        pool.join();
        print("joined");
    "#);
    run.success();
    assert_eq!(
        run.sorted_lines(),
        ["joined", "map 7", "map 8", "task 0", "task 1", "task 2", "task 3"]
    );
    assert_eq!(run.lines().last(), Some(&"joined"));
}

#[test]
fn pool_options_initializer_and_maxtasksperchild() {
    run(r#"
        fn setup(tag, count) { if tag == "a" { count.add(1); } }
        let started = Value(0);
        let pool = Pool(#{ processes: 2, initializer: setup, initargs: ["a", started],
                           maxtasksperchild: 2 });
        let first = pool.pids;
        let pids = pool.map(|x| getpid(), 0..12, #{ chunksize: 1 });
        let distinct = #{};
        for p in pids { distinct[`${p}`] = true; }
        print(distinct.len() >= 6);        // each worker took at most 2 tasks
        print(pool.pids.len());
        print(!pool.pids.contains(first[0]) && !pool.pids.contains(first[1]));
        pool.close();
        pool.join();
        print(started.value >= 6);
        print(active_children().len());
        fn failing() { throw "no setup"; }
        let broken = Pool(#{ processes: 2, initializer: failing });
        try { broken.map(|x| x, [1, 2]); } catch (e) {
            print(e.message.starts_with("no setup (in the pool's initializer, at "));
            print(e.message.ends_with("script.rhai:17)"));
        }
        try { broken.apply(|| 1); } catch (e) {
            print(e.message.starts_with("the Pool takes no tasks: its initializer failed (no setup"));
        }
        broken.terminate();
        for v in [0, -1, 0.5, "12"] {
            try { Pool(#{ processes: 1, maxtasksperchild: v }); } catch (e) { print(`${e.kind}: ${e.message}`); }
        }
        for o in [#{ initializer: 1 }, #{ processes: "2" }, #{ processes: 1, initargs: [1] },
                  #{ procs: 2 }, #{ processes: 1, initializer: setup, initargs: 5 }] {
            try { Pool(o); print("no error"); } catch (e) { print(`${e.kind}: ${e.message}`); }
        }
        let p = Pool(#{ processes: (), maxtasksperchild: () });
        print(p.processes == cpu_count());
    "#)
    .success()
    .stdout(
        "true\n2\ntrue\ntrue\n0\ntrue\ntrue\ntrue\n\
         ValueError: `maxtasksperchild` must be a positive integer or (), not 0\n\
         ValueError: `maxtasksperchild` must be a positive integer or (), not -1\n\
         ValueError: `maxtasksperchild` must be a positive integer or (), not 0.5\n\
         ValueError: `maxtasksperchild` must be a positive integer or (), not string\n\
         TypeError: `initializer` must be a function (a name, `Fn(\"name\")` or a closure), not i64\n\
         TypeError: the number of processes must be an integer, not string\n\
         ValueError: `initargs` without an `initializer`\n\
         ValueError: unknown Pool option `procs` (expected `processes`, `initializer`, `initargs`, `maxtasksperchild`, `hosts`, `ssh`, `procscript`)\n\
         TypeError: `initargs` must be an array, a range, a string or another iterable, not i64\n\
         true\n",
    );
}

#[test]
fn with_pool_terminates_at_the_end() {
    run(r#"
        let pool = Pool(2);
        with pool {
            print(pool.map(|x| x + 1, [1, 2]));
            print(pool);
        }
        print(pool);
        print(active_children().len());
        try { with pool { print("not run"); } } catch (e) { print(`${e.kind}: ${e.message}`); }
        pool.join();
        // An error in the block still terminates the pool, and goes on up.
        let other = Pool(1);
        try { with other { throw "inside"; } } catch (e) { print(e); }
        print(other);
        try { other.map_async(|x| x, [1]); } catch (e) { print(e.kind); }
        try { with 5 { } } catch (e) { print(`${e.kind}: ${e.message}`); }
        try { with current_process() { } } catch (e) { print(`${e.kind}: ${e.message}`); }
    "#)
    .success()
    .stdout(
        "[2, 3]\n<Pool processes=2 state=RUN pool_size=2>\n\
         <Pool processes=2 state=TERMINATE pool_size=0>\n0\n\
         ValueError: the Pool is not running (it was terminated): no new tasks\n\
         inside\n<Pool processes=1 state=TERMINATE pool_size=0>\nValueError\n\
         TypeError: `with` needs a Lock, RLock, Semaphore, BoundedSemaphore, Condition or Pool, not i64\n\
         TypeError: `with` needs a Lock, RLock, Semaphore, BoundedSemaphore, Condition or Pool, not Process\n",
    )
    .stderr("");
}

/// CPython's `_TestPool` (Lib/test/_test_multiprocessing.py), translated test by test.
/// Differences, all in docs/pool.md: `()` ends an iterator instead of StopIteration; a
/// failed `map` raises at once and cancels the rest instead of waiting for every task
/// (test_map_no_failfast); Rhai's own errors are `ProcessError`s; a result that cannot
/// travel is a `ValueError` (Python: MaybeEncodingError).
const CPYTHON_TEST_POOL: &str = r#"
fn sqr(x) { x * x }
fn sqr_wait(x, wait) { sleep(wait); x * x }
fn mul(x, y) { x * y }
fn squares(n) { let out = []; for i in 0..n { out.push(i * i); } out }
fn check(ok, what) { if !ok { throw `failed: ${what}`; } }
fn raises(f, kind) {
    try { f.call(); } catch (e) { return type_of(e) == "map" && e.kind == kind; }
    false
}

fn test_apply(pool) {
    check(pool.apply(sqr, [5]) == 25, "apply");
    check(pool.apply(sqr, [], #{ x: 3 }) == 9, "apply with kwargs");
}

fn test_map(pool) {
    check(pool.map(sqr, 0..10) == squares(10), "map");
    check(pool.map(sqr, 0..100, #{ chunksize: 20 }) == squares(100), "map chunksize");
}

fn test_starmap(pool) {
    let tuples = [];
    for i in 0..10 { tuples.push([i, 9 - i]); }
    let expected = [];
    for t in tuples { expected.push(t[0] * t[1]); }
    check(pool.starmap(mul, tuples) == expected, "starmap");
    let tuples = [];
    for i in 0..100 { tuples.push([i, 99 - i]); }
    let expected = [];
    for t in tuples { expected.push(t[0] * t[1]); }
    check(pool.starmap(mul, tuples, #{ chunksize: 20 }) == expected, "starmap chunksize");
}

fn test_starmap_async(pool) {
    let tuples = [];
    let expected = [];
    for i in 0..100 { tuples.push([i, 99 - i]); expected.push(i * (99 - i)); }
    check(pool.starmap_async(mul, tuples).get() == expected, "starmap_async");
}

fn test_map_async(pool) {
    check(pool.map_async(sqr, 0..10).get() == squares(10), "map_async");
}

fn test_map_async_callbacks(pool) {
    let call_args = [];
    pool.map_async(|s| parse_int(s), ["1"],
        #{ callback: |v| call_args.push(v), error_callback: |e| call_args.push(e) }).wait();
    check(call_args.len() == 1 && call_args[0] == [1], "callback");
    pool.map_async(|s| parse_int(s), ["a"],
        #{ callback: |v| call_args.push(v), error_callback: |e| call_args.push(e) }).wait();
    check(call_args.len() == 2 && call_args[1].kind == "ProcessError", "error_callback");
}

fn test_map_unpicklable(pool) {
    check(raises(|| pool.map(sqr, [current_process(), current_process()]), "ValueError"),
          "map of values that cannot travel");
}

fn test_map_chunksize(pool) {
    check(pool.map_async(sqr, [], #{ chunksize: 1 }).get(0.1) == [], "empty map_async");
}

fn test_map_handle_iterable_exception(pool) {
    // A generator that raises: here an imap whose task raises, given as the list.
    for round in 0..2 {
        let it = pool.imap(|x| { if x == 3 { throw "Somebody said when"; } x }, 0..10);
        try { pool.map(sqr, it); check(false, "no error"); } catch (e) {
            check(e.thrown == "Somebody said when", "the iterable's error");
        }
    }
}

fn test_async(pool) {
    let res = pool.apply_async(sqr_wait, [7, 0.1]);
    check(res.get() == 49, "apply_async");
}

fn test_async_timeout() {
    let p = Pool(3);
    let res = p.apply_async(sqr_wait, [6, 30.1]);
    check(raises(|| res.get(0.1), "TimeoutError"), "get timeout");
    p.terminate();
    p.join();
}

fn test_imap(pool) {
    let got = [];
    for r in pool.imap(sqr, 0..10) { got.push(r); }
    check(got == squares(10), "imap");
    let it = pool.imap(sqr, 0..10);
    for i in 0..10 { check(it.next() == i * i, "next"); }
    check(it.next() == (), "end of the iterator");
    let it = pool.imap(sqr, 0..1000, #{ chunksize: 100 });
    for i in 0..1000 { check(it.next() == i * i, "next, chunksize 100"); }
    check(it.next() == (), "end of the iterator, chunksize 100");
}

fn test_imap_handle_iterable_exception(pool) {
    // SayWhenError seen at start of problematic chunk's results
    let it = pool.imap(|x| { if x == 7 { throw "when"; } x * x }, 0..20, #{ chunksize: 2 });
    for i in 0..6 { check(it.next() == i * i, "before the failed chunk"); }
    check(raises(|| it.next(), "ProcessError"), "the failed chunk");
    let it = pool.imap(|x| { if x == 7 { throw "when"; } x * x }, 0..20, #{ chunksize: 4 });
    for i in 0..4 { check(it.next() == i * i, "before the failed chunk of 4"); }
    check(raises(|| it.next(), "ProcessError"), "the failed chunk of 4");
}

fn test_imap_unordered(pool) {
    let got = [];
    for r in pool.imap_unordered(sqr, 0..10) { got.push(r); }
    got.sort();
    check(got == squares(10), "imap_unordered");
    let got = [];
    for r in pool.imap_unordered(sqr, 0..1000, #{ chunksize: 100 }) { got.push(r); }
    got.sort();
    check(got == squares(1000), "imap_unordered chunksize");
}

fn test_imap_unordered_handle_iterable_exception(pool) {
    let expected = squares(10);
    try {
        for value in pool.imap_unordered(|x| { if x == 3 { throw "when"; } x * x }, 0..10) {
            check(expected.contains(value), "a value it should give");
            expected.remove(expected.index_of(value));
        }
        check(false, "no error");
    } catch (e) { check(e.thrown == "when", "the error"); }
}

fn test_make_pool() {
    check(raises(|| Pool(-1), "ValueError"), "Pool(-1)");
    check(raises(|| Pool(0), "ValueError"), "Pool(0)");
    let p = Pool(3);
    check(p.pids.len() == 3, "three workers");
    p.close();
    p.join();
}

fn test_terminate() {
    let p = Pool(3);
    let args = [];
    for i in 0..10000 { args.push(30); }
    let result = p.map_async(|t| sleep(t), args, #{ chunksize: 1 });
    sleep(0.2);
    p.terminate();
    p.join();
}

fn test_empty_iterable() {
    let p = Pool(1);
    check(p.map(sqr, []) == [], "map");
    let got = [];
    for r in p.imap(sqr, []) { got.push(r); }
    for r in p.imap_unordered(sqr, []) { got.push(r); }
    check(got == [], "imap");
    check(p.map_async(sqr, []).get() == [], "map_async");
    p.close();
    p.join();
}

fn test_context() {
    let p = Pool(2);
    with p {
        let r = p.map_async(sqr, 0..10);
        check(r.get() == squares(10), "inside with");
    }
    p.join();
    check(raises(|| p.map_async(sqr, 0..10), "ValueError"), "after with");
}

fn test_traceback() {
    let p = Pool(1);
    let line = ();
    with p {
        try { p.apply(|| throw #{ kind: "RuntimeError", message: "123" }); check(false, "no error"); }
        catch (e) {
            check(e.kind == "RuntimeError", "the kind");
            check(e.message.starts_with("123 (in a pool task, at "), "the message");
            check(e.message.ends_with(`script.rhai:${e.line})`), "the place");
            line = e.line;
        }
    }
    p.join();
    line
}

fn test_wrapped_exception() {
    let p = Pool(1);
    with p {
        check(raises(|| p.apply(|| throw #{ kind: "RuntimeError", message: "foo" }), "RuntimeError"),
              "the task's own kind");
    }
    p.join();
}

fn test_map_no_failfast() {
    let p = Pool(2);
    let failed = false;
    try {
        let big = "";
        big.pad(1024 * 1024, 'x');
        p.map(|wait| { sleep(wait); throw big; }, [0, 1], #{ chunksize: 1 });
    } catch (e) { failed = e.thrown.len() == 1024 * 1024; }
    sleep(0.5);
    p.close();
    p.join();
    check(failed, "a large error comes back, and join does not deadlock");
}

fn test_enter() {
    let pool = Pool(1);
    with pool { }
    check(raises(|| { with pool { } }, "ValueError"), "with a pool that is not running");
    pool.join();
}

let pool = Pool(4);
test_apply(pool); print("ok test_apply");
test_map(pool); print("ok test_map");
test_starmap(pool); print("ok test_starmap");
test_starmap_async(pool); print("ok test_starmap_async");
test_map_async(pool); print("ok test_map_async");
test_map_async_callbacks(pool); print("ok test_map_async_callbacks");
test_map_unpicklable(pool); print("ok test_map_unpicklable");
test_map_chunksize(pool); print("ok test_map_chunksize");
test_map_handle_iterable_exception(pool); print("ok test_map_handle_iterable_exception");
test_async(pool); print("ok test_async");
test_async_timeout(); print("ok test_async_timeout");
test_imap(pool); print("ok test_imap");
test_imap_handle_iterable_exception(pool); print("ok test_imap_handle_iterable_exception");
test_imap_unordered(pool); print("ok test_imap_unordered");
test_imap_unordered_handle_iterable_exception(pool); print("ok test_imap_unordered_handle_iterable_exception");
test_make_pool(); print("ok test_make_pool");
test_terminate(); print("ok test_terminate");
test_empty_iterable(); print("ok test_empty_iterable");
test_context(); print("ok test_context");
let line = test_traceback(); print(`ok test_traceback, line ${line}`);
test_wrapped_exception(); print("ok test_wrapped_exception");
test_map_no_failfast(); print("ok test_map_no_failfast");
test_enter(); print("ok test_enter");
pool.terminate();
pool.join();
"#;

/// CPython's `_TestPoolWorkerErrors`, `_TestPoolWorkerLifetime` and
/// `TestInitializers.test_pool_initializer`, translated.
const CPYTHON_TEST_POOL_WORKERS: &str = r#"
fn sqr(x) { x * x }
fn sqr_wait(x, wait) { sleep(wait); x * x }
fn check(ok, what) { if !ok { throw `failed: ${what}`; } }
fn raises(f, kind) {
    try { f.call(); } catch (e) { return type_of(e) == "map" && e.kind == kind; }
    false
}

fn test_async_error_callback() {
    let p = Pool(2);
    let scratchpad = [];
    let res = p.apply_async(|| throw #{ kind: "KeyError", message: "key" }, [], #{},
                            #{ error_callback: |e| scratchpad.push(e) });
    check(raises(|| res.get(), "KeyError"), "get raises");
    check(scratchpad.len() == 1 && scratchpad[0].kind == "KeyError", "error_callback");
    p.close();
    p.join();
}

fn test_unpickleable_result() {
    let p = Pool(2);
    for iteration in 0..20 {
        let scratchpad = [];
        let res = p.apply_async(|| Pipe(), [], #{}, #{ error_callback: |e| scratchpad.push(e) });
        check(raises(|| res.get(), "ValueError"), "a result that cannot travel");
        check(scratchpad.len() == 1 && scratchpad[0].message.contains("cannot be sent back"),
              "error_callback");
    }
    check(p.pids.len() == 2, "no worker lost");
    p.close();
    p.join();
}

fn test_pool_worker_lifetime() {
    let p = Pool(#{ processes: 3, maxtasksperchild: 10 });
    check(p.pids.len() == 3, "three workers");
    let origworkerpids = p.pids;
    let results = [];
    for i in 0..100 { results.push(p.apply_async(sqr, [i])); }
    for j in 0..100 { check(results[j].get() == j * j, "a result"); }
    let finalworkerpids = p.pids;
    check(finalworkerpids.len() == 3, "three workers again");
    origworkerpids.sort();
    finalworkerpids.sort();
    check(origworkerpids != finalworkerpids, "new workers");
    p.close();
    p.join();
}

fn test_pool_worker_lifetime_early_close() {
    let p = Pool(#{ processes: 3, maxtasksperchild: 1 });
    let results = [];
    for i in 0..6 { results.push(p.apply_async(sqr_wait, [i, 0.3])); }
    p.close();
    p.join();
    for j in 0..6 { check(results[j].get() == j * j, "a result"); }
}

fn test_pool_maxtasksperchild_invalid() {
    for value in [0, -1, 0.5, "12"] {
        check(raises(|| Pool(#{ processes: 3, maxtasksperchild: value }), "ValueError"), value);
    }
}

fn test_pool_initializer() {
    check(raises(|| Pool(#{ initializer: 1 }), "TypeError"), "initializer=1");
    let ns = Value(0);
    let p = Pool(#{ processes: 1, initializer: |ns| ns.add(1), initargs: [ns] });
    p.close();
    p.join();
    check(ns.value == 1, "the initializer ran once");
}

test_async_error_callback(); print("ok test_async_error_callback");
test_unpickleable_result(); print("ok test_unpickleable_result");
test_pool_worker_lifetime(); print("ok test_pool_worker_lifetime");
test_pool_worker_lifetime_early_close(); print("ok test_pool_worker_lifetime_early_close");
test_pool_maxtasksperchild_invalid(); print("ok test_pool_maxtasksperchild_invalid");
test_pool_initializer(); print("ok test_pool_initializer");
"#;

#[test]
fn cpython_test_pool_translated() {
    let runs = run_together(&[CPYTHON_TEST_POOL, CPYTHON_TEST_POOL_WORKERS]);
    for (run, script) in runs
        .iter()
        .zip([CPYTHON_TEST_POOL, CPYTHON_TEST_POOL_WORKERS])
    {
        run.success().stderr("");
        let wanted: Vec<String> = script
            .lines()
            .filter_map(|l| l.split("print(").nth(1))
            .map(|l| l[1..].split(['"', '`', '$']).next().unwrap().to_string())
            .collect();
        let lines = run.lines();
        assert_eq!(lines.len(), wanted.len(), "{lines:?}");
        for (line, wanted) in lines.iter().zip(&wanted) {
            assert!(
                line.starts_with(wanted.as_str()),
                "{line:?} is not {wanted:?}"
            );
        }
    }
    // The error of test_traceback names the line of the task's `throw`.
    let traceback = runs[0]
        .lines()
        .into_iter()
        .find(|l| l.contains("test_traceback"));
    let line: usize = traceback
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let source = CPYTHON_TEST_POOL.lines().nth(line - 1).unwrap();
    assert!(source.contains("message: \"123\""), "line {line}: {source}");
}
