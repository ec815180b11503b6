//! Issue 14, second half: `Pool(#{ processes, hosts, ssh, procscript })`, pool workers on
//! other hosts through OpenSSH, against a real, throwaway sshd on loopback (tests/sshd.rs).
//!
//! The "remote" host is this machine, so the tests can read its process table: a remote
//! worker must run under the test's sshd and not as a fork of the script, and nothing may be
//! left running there once the pool is gone. Each test runs its workers as a symbolic link to
//! the binary in its own directory (the Pool's `procscript` option), so that its workers have
//! an argv no other test's have.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::sshd::{self, Sshd};
use crate::support::*;

/// `procscript` for the remote side of `sshd`: a link to the binary under test.
fn remote_procscript(sshd: &Sshd) -> PathBuf {
    let link = sshd.dir().join("procscript");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    link
}

/// Live workers started as `LINK worker`.
fn workers(link: &Path) -> Vec<u32> {
    sshd::processes_running(&[link.to_str().unwrap(), "worker"])
}

/// Waits (wide margin: the remote wrapper looks for a lost connection once a second, then
/// allows 2 s between SIGTERM and SIGKILL) until no worker of `link` is left.
#[track_caller]
fn assert_no_worker_left(link: &Path) {
    assert!(
        eventually(Duration::from_secs(20), || workers(link).is_empty()),
        "still running on the host: {:?}",
        workers(link)
    );
}

/// The script's prelude: `HOST`, `SSH` and `EXE` (the remote `procscript`).
fn prelude(sshd: &Sshd, link: &Path) -> String {
    format!(
        "{}const EXE = {};\n",
        sshd.rhai_prelude(),
        sshd::rhai_string(link.to_str().unwrap())
    )
}

#[test]
fn remote_workers_run_under_sshd_and_behave_as_local_ones() {
    let Some(sshd) =
        Sshd::start_or_skip("remote_pool::remote_workers_run_under_sshd_and_behave_as_local_ones")
    else {
        return;
    };
    let link = remote_procscript(&sshd);
    let script = prelude(&sshd, &link)
        + r#"
const K = 100;
fn square(x) { x * x }
fn konst(x) { x + global::K }
fn ids(x) { sleep(0.2); [getpid(), getppid()] }
fn check(x) {
    if x == 3 { throw "bad input " + x; }
    x
}
fn add(a, b) { a + b }
fn power(base, exp) { base ** exp }
let pool = Pool(#{ processes: 2, hosts: [HOST], ssh: SSH, procscript: EXE });
print(pool);
print(pool.map(square, 0..10));
let k = 3;
let labels = #{ a: "apple", b: "banana" };
print(pool.map(|x| x * k, [1, 2, 3]));
print(pool.map(|key| labels[key], ["a", "b"]));
for k in [1, 2] { print(pool.map(|x| x * k, [1, 2])); }
print(pool.map(konst, [1]));
print(pool.map(|i| ARGS[i], [0, 1]));
print(pool.starmap(add, [[1, 2], [3, 4]]));
let out = [];
for r in pool.imap(square, [1, 2, 3]) { out.push(r); }
print(out);
let got = [];
for r in pool.imap_unordered(square, [1, 2, 3], #{ chunksize: 2 }) { got.push(r); }
got.sort();
print(got);
print(pool.apply(power, [2], #{ exp: 10 }));
print(pool.apply_async(add, [20, 22]).get());
print(pool.map_async(square, [4, 5]).get());
let big = "0123456789abcdef";
for i in 0..14 { big += big; }
print(pool.map(|s| s.len(), [big]));
print(pool.map(|x| blob(x, 7), [300000])[0].len());
pool.map(|x| print(`printed remotely ${x}`), [1]);
try {
    pool.map(check, [1, 2, 3, 4]);
} catch (e) {
    print(e.kind);
    print(e.thrown);
    print(e.line);
    print(e.message.starts_with(`bad input 3 (in a pool task on ${HOST}, at `));
    print(e.message.ends_with("script.rhai:10)"));   // after the 3 lines of the prelude
}
try { pool.apply(|| sleep(-1), []); } catch (e) { print(e.kind); }
try {
    pool.map(|x| x, [Lock()]);
} catch (e) {
    print(e.kind);
    print(e.message.contains("belong to this machine"));
}
let counter = Value(1);
try { pool.map(|x| x + counter.value, [1]); } catch (e) { print(e.kind); }
let pairs = pool.map(ids, 0..4, #{ chunksize: 1 });
print(`script ${getpid()}`);
for pair in pairs { print(`worker ${pair[0]} ${pair[1]}`); }
print(`ssh ${pool.pids}`);
input();
pool.close();
pool.join();
print("joined");
"#;
    let test = Test::new()
        .script(&script)
        .script_args(&["first", "second"]);
    let mut command = test.command();
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let stderr = read_in_background(child.stderr.take().unwrap());
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut before = Vec::new();
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            let _ = child.kill();
            panic!(
                "the script ended early: {before:?}\nstderr:\n{}\nsshd log:\n{}",
                stderr.join().unwrap(),
                sshd.log()
            );
        }
        let line = line.trim_end().to_string();
        let last = line.starts_with("ssh ");
        before.push(line);
        if last {
            break;
        }
    }
    let at = before
        .iter()
        .position(|l| l.starts_with("script "))
        .unwrap();
    assert_eq!(
        before[..at].join("\n"),
        "<Pool processes=2 state=RUN pool_size=2>\n\
         [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]\n\
         [3, 6, 9]\n\
         [\"apple\", \"banana\"]\n\
         [1, 2]\n\
         [2, 4]\n\
         [101]\n\
         [\"first\", \"second\"]\n\
         [3, 7]\n\
         [1, 4, 9]\n\
         [1, 4, 9]\n\
         1024\n\
         42\n\
         [16, 25]\n\
         [262144]\n\
         300000\n\
         printed remotely 1\n\
         ProcessError\n\
         bad input 3\n\
         10\n\
         true\n\
         true\n\
         ValueError\n\
         ValueError\n\
         true\n\
         ValueError",
        "stderr so far is not shown until the end"
    );
    let pid = |l: &str, n: usize| -> u32 { l.split_whitespace().nth(n).unwrap().parse().unwrap() };
    let script_pid = pid(&before[at], 1);
    let ssh_pids: Vec<u32> = before
        .last()
        .unwrap()
        .trim_start_matches("ssh [")
        .trim_end_matches(']')
        .split(", ")
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(ssh_pids.len(), 2);
    let mut seen = Vec::new();
    for line in &before[at + 1..before.len() - 1] {
        let (worker, parent) = (pid(line, 1), pid(line, 2));
        seen.push(worker);
        // The worker runs the remote `procscript worker`, under the test's sshd, and not
        // under the script or its ssh clients: it really went through the connection.
        let chain = sshd::ancestors(worker);
        assert_eq!(chain.first(), Some(&parent), "{line}: parents {chain:?}");
        assert!(chain.contains(&sshd.pid()), "{line}: parents {chain:?}");
        assert!(
            !chain
                .iter()
                .any(|p| *p == script_pid || *p == child.id() || ssh_pids.contains(p)),
            "{line} runs under the script: {chain:?}"
        );
        assert!(
            workers(&link).contains(&worker),
            "{line}: {:?}",
            workers(&link)
        );
    }
    seen.sort();
    seen.dedup();
    assert!(!seen.is_empty());
    // The pool's own processes here are the ssh clients, children of the script.
    for ssh in &ssh_pids {
        assert_eq!(sshd::parent_of(*ssh), Some(script_pid));
    }
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let rest: Vec<String> = out.lines().map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert_eq!(rest, ["joined"], "stderr:\n{stderr}");
    assert!(status.success(), "stderr:\n{stderr}");
    assert_eq!(stderr, "");
    // `join()` ended them: stdin closed, the workers ended on their own.
    assert_no_worker_left(&link);
}

#[test]
fn an_unreachable_host_fails_the_call_and_the_other_hosts_carry_on() {
    if !sshd::on_path("ssh") {
        sshd::skip(
            "remote_pool::an_unreachable_host_fails_the_call_and_the_other_hosts_carry_on",
            "no `ssh` on PATH (install it with `apt-get install -y openssh-client`)",
        );
        return;
    }
    // A loopback port nobody listens on: ssh's connection is refused.
    let port = sshd::free_port().to_string();
    let ssh: Vec<String> = ["-F", "/dev/null", "-p", &port, "-o", "BatchMode=yes"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let script = format!(
        "const SSH = {};\n{}",
        sshd::rhai_array(&ssh),
        r#"
let pool = Pool(#{ processes: 1, hosts: ["localhost", "127.0.0.1"], ssh: SSH });
print(pool.processes);
try {
    print(pool.map(|x| x * 2, [1, 2, 3, 4]));
} catch (e) {
    print(e.kind);
    print(e.exitcode);
    print(e.message);
}
// The local worker carries on, and the refused one is not tried again.
print(pool.map(|x| x * 2, [1, 2, 3, 4]));
let me = getpid();
print(pool.map(|x| getppid() == x, [me, me, me]));
print(pool.pids.len());
let lonely = Pool(#{ processes: 2, hosts: ["127.0.0.1"], ssh: SSH });
try { lonely.apply(|| 1, []); } catch (e) { print(e.kind); }
try { lonely.apply(|| 1, []); } catch (e) { print(e.message); }
"#
    );
    let started = Instant::now();
    let run = Test::new().script(&script).run();
    let refused = format!("ssh: connect to host 127.0.0.1 port {port}: Connection refused");
    let out = run.lines();
    assert_eq!(
        out.len(),
        9,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(out[..3], ["2", "ConnectionError", "255"]);
    assert!(
        out[3].starts_with("a remote pool worker (SshPoolWorker-")
            && out[3].contains(" on 127.0.0.1, ssh pid ")
            && out[3].ends_with(&format!(
                "could not start: ssh failed (exit status 255): {refused}"
            )),
        "{}",
        out[3]
    );
    assert_eq!(
        out[4..],
        [
            "[2, 4, 6, 8]",
            "[true, true, true]",
            "1",
            "ConnectionError",
            "the Pool has no workers left: none of its remote workers could start (an \
             earlier call raised why), and they are not tried again"
        ]
    );
    run.success();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_remote_worker_killed_mid_map_fails_the_call_and_leaves_nothing_behind() {
    let Some(sshd) = Sshd::start_or_skip(
        "remote_pool::a_remote_worker_killed_mid_map_fails_the_call_and_leaves_nothing_behind",
    ) else {
        return;
    };
    let link = remote_procscript(&sshd);
    let fake = sshd.dir().join("fake-procscript");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'Welcome to the test host'\n\
         printf '\\000procscript-pool-worker 999 9.9.9\\n'\nexec cat > /dev/null\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let script = prelude(&sshd, &link)
        + format!(
            "const FAKE = {};\n",
            sshd::rhai_string(fake.to_str().unwrap())
        )
        .as_str()
        + r#"
let me = getpid();
// One worker forked here, two through ssh.
let pool = Pool(#{ processes: 1, hosts: ["localhost", HOST, HOST], ssh: SSH, procscript: EXE });
let pairs = pool.map(|x| { sleep(0.1); [getpid(), getppid()] }, 0..12, #{ chunksize: 1 });
let here = 0;
let there = [];
for pair in pairs {
    if pair[1] == me { here += 1; } else if !there.contains(pair[0]) { there.push(pair[0]); }
}
print(here > 0);
print(there.len());
// Kill a remote worker from outside while the map runs on it.
let victim = there[0];
let r = pool.map_async(|x| { sleep(0.3); x }, 0..12, #{ chunksize: 1 });
sleep(0.5);
print(run(["kill", "-KILL", `${victim}`]).code);
let t = time();
try {
    r.get();
    print("no error");
} catch (e) {
    print(e.kind);
    print(e.exitcode);
    print(e.message.contains("was killed by SIGKILL on " + HOST + " (exit status 137) while running this task"));
}
print(time() - t < 30);
// The other workers carry on, and a new worker takes the killed one's place.
print(pool.map(|x| x + 1, [1, 2, 3]));
print(pool.pids.len());
// A remote `procscript` that is not there.
let missing = Pool(#{ processes: 1, hosts: [HOST], ssh: SSH, procscript: EXE + "-missing" });
try {
    missing.map(|x| x, [1]);
} catch (e) {
    print(e.exitcode);
    print(e.message.contains("was not found on " + HOST + " (exit status 127"));
}
// A program there that is not a procscript of this protocol (after a login's chatter).
let fake = Pool(#{ processes: 1, hosts: [HOST], ssh: SSH, procscript: FAKE });
try {
    fake.map(|x| x, [1]);
} catch (e) {
    print(e.message.contains("could not start: the procscript there (version 9.9.9) speaks pool protocol 999"));
}
// terminate() with a long task running remotely: the call fails at once.
let long = pool.apply_async(|| sleep(60), []);
let busy = pool.apply_async(|| sleep(60), []);
let t = time();
pool.terminate();
try { long.get(); } catch (e) { print(e.message); }
print(time() - t < 10);
print(`victim ${victim}`);
"#;
    let started = Instant::now();
    let run = Test::new().script(&script).run();
    let out = run.lines();
    assert_eq!(
        out[..out.len() - 1].join("\n"),
        "true\n2\n0\nProcessError\n137\ntrue\ntrue\n[2, 3, 4]\n3\n127\ntrue\ntrue\n\
         the Pool was terminated before this task finished\ntrue",
        "stderr:\n{}\nsshd log:\n{}",
        run.stderr,
        sshd.log()
    );
    run.success();
    let victim: u32 = out.last().unwrap()[7..].parse().unwrap();
    assert!(!alive(victim), "the killed worker {victim} is still there");
    // Nothing of the pool is left on the host: the killed worker, the one that replaced it,
    // the terminated ones.
    assert_no_worker_left(&link);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn remote_pool_options_are_checked() {
    let run = Test::new()
        .script(
            r#"
fn kind(f) {
    try { f.call(); return "no error"; } catch (e) { return `${e.kind}: ${e.message}`; }
}
fn setup(v) { }
print(kind(|| Pool(#{ hosts: ["node1"] })));
print(kind(|| Pool(#{ processes: 1, ssh: ["-p", "2"] })));
print(kind(|| Pool(#{ processes: 1, procscript: "/opt/procscript" })));
print(kind(|| Pool(#{ processes: 1, hosts: [] })));
print(kind(|| Pool(#{ processes: 1, hosts: "node1" })));
print(kind(|| Pool(#{ processes: 1, hosts: [1] })));
print(kind(|| Pool(#{ processes: 1, hosts: ["-oProxyCommand=x"] })));
print(kind(|| Pool(#{ processes: 1, hosts: ["node1"], ssh: "-p 2" })));
print(kind(|| Pool(#{ processes: 1, hosts: ["node1"], procscript: "" })));
print(kind(|| Pool(#{ processes: 600, hosts: ["a", "b"] })));
print(kind(|| Pool(#{ processes: 1, hosts: ["node1"], initializer: setup, initargs: [Lock()] })));
print(kind(|| Pool(#{ processes: 1, hots: ["node1"] })));
"#,
        )
        .run();
    assert_eq!(
        run.stdout,
        "ValueError: a Pool with `hosts` needs `processes`: the number of workers on each host\n\
         ValueError: `ssh` and `procscript` are for remote workers: give the Pool `hosts` too\n\
         ValueError: `ssh` and `procscript` are for remote workers: give the Pool `hosts` too\n\
         ValueError: `hosts` must name at least one host\n\
         TypeError: `hosts` is a list like [\"localhost\", \"node1\", \"user@node2\"], not one string: \"node1\"\n\
         TypeError: `hosts` must hold strings, not i64\n\
         ValueError: in `hosts`: `host` must not start with `-` (ssh would read \"-oProxyCommand=x\" as an option)\n\
         TypeError: `ssh` is a list like [\"-p\", \"2222\"], not one string: \"-p 2\"\n\
         ValueError: `procscript` must be a path or a name, not empty, without NUL\n\
         ValueError: a Pool needs from 1 to 1024 processes in all, not 1200\n\
         ValueError: the initializer and `initargs` of a Pool with remote hosts travel to each host: \
         a value of type `Lock` cannot be sent to another process (only (), booleans, numbers, \
         strings, chars, blobs, and arrays and maps of these can); locks, shared values \
         (`Value`, `Array`), queues, pipes, managers' proxies, sockets and processes belong to \
         this machine: a remote worker gets data only\n\
         ValueError: unknown Pool option `hots` (expected `processes`, `initializer`, \
         `initargs`, `maxtasksperchild`, `hosts`, `ssh`, `procscript`)\n",
        "stderr:\n{}",
        run.stderr
    );
    run.success();
}

#[test]
fn the_worker_subcommand_is_hidden_and_takes_nothing_but_its_channel() {
    // Not in the help.
    let help = Test::new().args(&["--help"]).run();
    help.success();
    assert!(!help.stdout.contains("worker"), "{}", help.stdout);
    // No arguments: a file or a script cannot be handed to it.
    let run = Test::new().args(&["worker", "script.rhai"]).run();
    assert_eq!(run.code, Some(2), "{run:?}");
    // Its channel ends before any script came: it says hello and ends quietly.
    let run = Test::new().args(&["worker"]).stdin("").run();
    run.success();
    assert!(
        run.stdout.starts_with("\0procscript-pool-worker 1 "),
        "{run:?}"
    );
    // Anything but the pool's script message is refused, and nothing runs.
    let run = Test::new()
        .args(&["worker"])
        .stdin("print(\"ran\");\n")
        .run();
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(
        !run.stdout.contains("ran") && !run.stderr.contains("ran\n"),
        "{run:?}"
    );
}

/// The pool's side of a remote worker's channel, played by the test over a pipe: what the
/// worker runs of a script, and what it answers.
fn worker_session(
    source: &str,
    tasks: &[(&str, Vec<procscript::rhai::Dynamic>)],
) -> (Vec<String>, Run) {
    let input = procscript::cli::worker::wire::session(source, tasks);
    let test = Test::new().args(&["worker"]);
    let mut child = test
        .command()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&input).unwrap();
    drop(stdin);
    let output = wait_with_timeout(child, Duration::from_secs(60));
    // The hello line, then one framed reply after another.
    let hello_end = output.stdout.iter().position(|b| *b == b'\n').unwrap() + 1;
    let (replies, used) = procscript::cli::worker::wire::replies(&output.stdout[hello_end..]);
    assert_eq!(hello_end + used, output.stdout.len(), "trailing bytes");
    let run = Run {
        stdout: String::from_utf8_lossy(&output.stdout[..hello_end]).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        code: output.status.code(),
        elapsed: Duration::ZERO,
    };
    (replies, run)
}

#[test]
fn a_worker_runs_the_functions_it_is_sent_and_none_of_the_script_s_statements() {
    let source = "print(\"the top level ran\");\nrun([\"touch\", \"top-level-ran\"]);\n\
                  fn double(x) { print(`doubling ${x}`); x * 2 }\nfn fail(x) { throw \"no \" + x; }\n";
    let (replies, run) = worker_session(
        source,
        &[
            ("double", vec![1.into(), 20.into()]),
            ("fail", vec![3.into()]),
            ("missing", vec![1.into()]),
        ],
    );
    run.success();
    assert!(run.stdout.starts_with("\0procscript-pool-worker 1 "));
    assert_eq!(run.stderr, "");
    assert_eq!(replies.len(), 5, "{replies:#?}");
    assert_eq!(replies[0], r#"["print", "doubling 1"]"#);
    assert_eq!(replies[1], r#"["print", "doubling 20"]"#);
    assert_eq!(replies[2], r#"["done", 0, 0, [2, 40]]"#);
    assert!(
        replies[3].starts_with(r#"["failed", 1, 0, #{"kind": "ProcessError", "line": 4, "message": "no 3 (in a pool task on node1, at job.rhai:4)""#),
        "{}",
        replies[3]
    );
    assert!(
        replies[4].contains("cannot find `missing`"),
        "{}",
        replies[4]
    );
    assert!(!replies.iter().any(|r| r.contains("top level")));
    assert!(!Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("top-level-ran")
        .exists());
    // A script that does not compile there: the worker says so, and ends.
    let (replies, run) = worker_session("fn broken( {", &[("double", vec![1.into()])]);
    assert_eq!(run.code, Some(1));
    assert_eq!(replies.len(), 1);
    assert!(
        replies[0].starts_with(r#"["start-failed", #{"kind": "ProcessError", "message": "the script does not compile on node1"#),
        "{}",
        replies[0]
    );
}
