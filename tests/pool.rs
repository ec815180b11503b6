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
    "#)
    .success()
    .stdout("[11, 12, 13]\n[\"item:alpha\", \"item:beta\"]\n[5]\n0\n[4, 5]\n[14]\n");
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
    run(r#"
        let pool = Pool(1);
        try {
            for x in pool.imap(|x| { if x == 2 { exit(5); } x }, [1, 2, 3]) { print(`got ${x}`); }
        } catch (e) { print(`${e.kind} ${e.exitcode}`); }
        print(pool.pids.len());             // no fork inside the loop...
        print(pool.map(|x| x, [1, 2]));     // ...the next call forks a new worker
        print(pool.pids.len());
    "#)
    .success()
    .stdout("got 1\nProcessError 5\n0\n[1, 2]\n1\n");
}
