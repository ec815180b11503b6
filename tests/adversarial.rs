//! Issue 10, second round: regression tests for the defects the adversarial probes
//! (`python3 fuzz/adversarial/run.py`) found after the first round's fixes. Each failed
//! before its fix; docs/robustness.md lists them.

use std::io::{BufReader, Read};
use std::os::unix::fs::FileTypeExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;

/// A pipe whose read end is already closed: writing to the other end fails with EPIPE.
fn closed_pipe() -> std::fs::File {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills the two-element array on success; both ends are owned below.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fds[0] is the read end just made, closed once; fds[1] is owned by the File.
    unsafe {
        libc::close(fds[0]);
        std::os::fd::FromRawFd::from_raw_fd(fds[1])
    }
}

/// Runs `shell` with `sh -c`, the binary as `$0` and `script` as `$1`: for what only a shell
/// sets up (a `ulimit`, `2>&1`).
fn run_under_sh(shell: &str, script: &std::path::Path) -> std::process::Output {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(shell)
        .arg(BIN)
        .arg(script)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `completions` panicked (exit 101) when stdout was full or its reader gone; `doc` and `man`
/// complained about a reader that left. All three now stop quietly when the reader leaves
/// and report other write errors.
#[test]
fn generated_text_into_a_full_or_vanished_stdout_never_panics() {
    for args in [&["completions", "bash"][..], &["doc"], &["man"]] {
        let out = std::process::Command::new(BIN)
            .args(args)
            .stdout(closed_pipe())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?} into a closed pipe: {stderr}"
        );
        assert_eq!(stderr, "", "{args:?} into a closed pipe");

        let full = std::fs::OpenOptions::new().write(true).open("/dev/full");
        let Ok(full) = full else { continue };
        let out = std::process::Command::new(BIN)
            .args(args)
            .stdout(full)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?} into /dev/full: {stderr}"
        );
        assert!(stderr.contains("No space left on device"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// `p.authkey = x` and `s.setsockopt(l, o, x)` named Rust types in their TypeError
/// (`core::ops::range::Range<i64>`, `procscript::ipc::queue::Queue`).
#[test]
fn type_errors_of_authkey_and_setsockopt_name_script_types() {
    Test::new()
        .script(
            r#"
let p = Process(|| 0);
let s = socket();
for v in [0..3, 0..=3, Queue(), Lock(), s, p] {
    try { p.authkey = v; } catch (e) { print(e.message); }
    try { s.setsockopt(SOL_SOCKET, SO_REUSEADDR, v); } catch (e) { print(e.message); }
}
"#,
        )
        .run()
        .success()
        .stdout(
            "`authkey` must be a blob or a string, not range\n\
             setsockopt: value must be an integer, not range\n\
             `authkey` must be a blob or a string, not range=\n\
             setsockopt: value must be an integer, not range=\n\
             `authkey` must be a blob or a string, not Queue\n\
             setsockopt: value must be an integer, not Queue\n\
             `authkey` must be a blob or a string, not Lock\n\
             setsockopt: value must be an integer, not Lock\n\
             `authkey` must be a blob or a string, not Socket\n\
             setsockopt: value must be an integer, not Socket\n\
             `authkey` must be a blob or a string, not Process\n\
             setsockopt: value must be an integer, not Process\n",
        );
}

fn mkfifo(path: &std::path::Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo(3) with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

/// `--trace`/`--timeline` wrote to a new file and renamed it over the path, so a FIFO or a
/// device there was replaced by a regular file; as root `--trace /dev/null` replaced the
/// machine's /dev/null. Now a FIFO or character device is written into, as the shell's `>`
/// does, and stays what it was.
#[test]
fn trace_and_timeline_write_into_a_fifo_or_device_instead_of_replacing_it() {
    let dir = TempDir::new();
    let fifo = dir.path().join("trace.fifo");
    mkfifo(&fifo);
    let script = dir.write("s.rhai", "let p = spawn 0; p.join();\n");
    let run = |flag: &str, target: &std::path::Path| {
        std::process::Command::new(BIN)
            .arg("run")
            .arg(flag)
            .arg(target)
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };

    // No reader: an error at once, never a hang, and the FIFO stays.
    let started = Instant::now();
    let out = run("--trace", &fifo);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());

    // With a reader: the reader gets the YAML, the FIFO stays a FIFO.
    for flag in ["--trace", "--timeline"] {
        let path = fifo.clone();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            std::fs::File::open(path)
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            text
        });
        // The reader opens the FIFO first (O_NONBLOCK writers need one).
        std::thread::sleep(Duration::from_millis(200));
        let out = run(flag, &fifo);
        assert_eq!(out.status.code(), Some(0), "{flag}: {out:?}");
        let text = reader.join().unwrap();
        let want = if flag == "--trace" {
            "processes"
        } else {
            "<svg"
        };
        assert!(text.contains(want), "{flag}: {text:.300}");
        assert!(std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo());
    }

    // A character device made here (a copy of /dev/null), where mknod is allowed (root).
    let null = dir.path().join("null");
    let c = std::ffi::CString::new(null.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mknod(2) with a NUL-terminated path; it fails harmlessly without privilege.
    let made = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    if made == 0 {
        for flag in ["--trace", "--timeline"] {
            let out = run(flag, &null);
            assert_eq!(out.status.code(), Some(0), "{flag}: {out:?}");
            let kind = std::fs::symlink_metadata(&null).unwrap().file_type();
            assert!(kind.is_char_device(), "{flag} replaced the device node");
        }
    }
}

/// SIGTERM to the main process while a child was stopped (SIGSTOP) took the whole 3 s
/// grace and a SIGKILL: the child never saw the SIGTERM. The children are now also sent
/// SIGCONT, so they end at once.
#[test]
fn sigterm_ends_a_run_with_a_stopped_child_at_once() {
    let test = Test::new().script(
        r#"
let p = spawn { let g = spawn sleep(60); g.join(); };
print(`child ${p.pid}`);
sleep(60);
"#,
    );
    let mut child = test.spawn();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let lines = read_until(&mut out, |l| l.starts_with("child "));
    let pid: i32 = lines.last().unwrap()[6..].parse().unwrap();
    // SAFETY: kill(2) on a descendant of this test's child, which is still running.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    assert!(eventually(BACKSTOP, || process_state(pid as u32) == Some('T')));
    let started = Instant::now();
    // SAFETY: kill(2) on this test's own unreaped child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let took = started.elapsed();
    assert_eq!(status.code(), Some(143));
    // The grace period is 3 s; ending at once takes milliseconds.
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(eventually(BACKSTOP, || !alive(pid as u32)));
}

/// Lines longer than PIPE_BUF took the line lock, but short lines did not, so a short line
/// could land between two pieces of a long one (8-34 torn lines of 2,400 here).
#[test]
fn long_and_short_lines_from_many_writers_stay_whole_through_a_pipe() {
    let run = Test::new()
        .script(
            r#"
let ps = [];
for w in 0..8 {
    ps.push(spawn {
        for i in 0..300 {
            let n = if i % 5 == 0 { 20000 } else { i % 40 };
            let body = "";
            body.pad(n, `${w}`);
            print(`${w} ${i} ${n} ${body} .`);
        }
    });
}
for p in ps { p.join(); }
"#,
        )
        .run();
    run.success();
    let mut torn = Vec::new();
    for line in run.stdout.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        let whole = parts.len() == 5
            && parts[4] == "."
            && parts[2].parse::<usize>().ok() == Some(parts[3].len())
            && parts[3].chars().all(|c| parts[0].starts_with(c));
        if !whole {
            torn.push(line.chars().take(60).collect::<String>());
        }
    }
    assert!(
        torn.is_empty(),
        "{} torn lines: {:?}",
        torn.len(),
        &torn[..torn.len().min(3)]
    );
    assert_eq!(run.stdout.lines().count(), 2400);
}

/// A child that ended while the parent slept (reaped, but its handle not yet updated) made
/// `p.sentinel` and `wait([p])` fail with an OSError, errno 3 (ESRCH).
#[test]
fn sentinel_and_wait_of_a_child_that_ended_during_a_sleep() {
    Test::new()
        .script(
            r#"
let bad = 0;
for i in 0..30 {
    let p = spawn 0;
    sleep(0.02);
    try {
        if p.sentinel < 0 { bad += 1; }
        if wait([p], 5).len() != 1 { bad += 1; }
        if wait([p.sentinel], 5).len() != 1 { bad += 1; }
    } catch (e) { print(e.message); bad += 1; }
}
print(`bad ${bad}`);
"#,
        )
        .run()
        .success()
        .stdout("bad 0\n");
}

/// `procscript run /dev/zero` read forever and ignored SIGTERM (only SIGKILL ended it).
#[test]
fn sigterm_ends_the_reading_of_a_script_that_never_ends() {
    let child = std::process::Command::new(BIN)
        .args(["run", "/dev/zero"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on this test's own unreaped child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let output = wait_with_timeout(child, BACKSTOP);
    assert_eq!(output.status.code(), Some(143), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("interrupted"), "{stderr}");
}

/// `doc --out FIFO` with no reader waits in open(2), as the shell's `>` does; SIGTERM did not
/// end it (handlers for the script runtime were installed for every subcommand, with
/// SA_RESTART). Now only commands that run scripts install them.
#[test]
fn sigterm_ends_doc_blocked_on_a_fifo_nobody_reads() {
    use std::os::unix::process::ExitStatusExt;
    let dir = TempDir::new();
    let fifo = dir.path().join("out.fifo");
    mkfifo(&fifo);
    let mut child = std::process::Command::new(BIN)
        .args(["doc", "--out"])
        .arg(&fifo)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on this test's own unreaped child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let started = Instant::now();
    let ended = eventually(BACKSTOP, || child.try_wait().unwrap().is_some());
    let _ = child.kill();
    let status = child.wait().unwrap();
    assert!(ended, "still running {:?} after SIGTERM", started.elapsed());
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
}

/// A release, or the kernel's notice that a holder died, wakes one waiter. When that waiter
/// was killed or gave up before taking the lock, the wake was lost and the remaining waiters
/// slept forever beside a free lock (the probes caught one locker of six never ending). A
/// waiter that gives up now passes the wake on, and sleeps are bounded by a 30 s guard
/// against a woken waiter's SIGKILL. Six lockers, four killed or terminated at random
/// moments over three rounds: every survivor ends.
#[test]
fn lockers_killed_at_random_never_strand_the_others() {
    let run = Test::new()
        .script(
            r#"
for kind in ["Lock", "RLock", "Condition"] {
    for round in 0..3 {
        let l = if kind == "Lock" { Lock() } else if kind == "RLock" { RLock() } else { Condition() };
        let stop = Event();
        let ps = [];
        for w in 0..6 {
            ps.push(spawn {
                while !stop.is_set() {
                    try { l.acquire(); } catch (e) { if e.kind != "ProcessError" { throw e; } continue; }
                    l.release();
                }
            });
        }
        sleep(0.1);
        for i in 0..4 {
            sleep(random() * 0.15);
            if i % 2 == 0 { ps[i].kill(); } else { ps[i].terminate(); }
        }
        stop.set();
        for p in ps { p.join(60); }
        let stuck = ps.filter(|p| p.exitcode == ());
        print(`${kind} round ${round}: ${stuck.len()} stuck`);
        for p in stuck { p.kill(); }
    }
}
"#,
        )
        .run();
    run.success();
    let lines = run.lines();
    assert_eq!(lines.len(), 9, "{}", run.stdout);
    for line in lines {
        assert!(line.ends_with(": 0 stuck"), "{}", run.stdout);
    }
}

/// `run()` capturing more output than the process may allocate aborted the script (Rust's
/// "memory allocation failed", SIGABRT); it is now a catchable `MemoryError`, as in Python,
/// and the program is gone afterwards.
#[test]
fn output_larger_than_memory_allows_is_a_catchable_memory_error() {
    let dir = TempDir::new();
    let script = dir.write(
        "big.rhai",
        r#"
try {
    print(run(["head", "-c", "400000000", "/dev/zero"]).stdout.len());
} catch (e) {
    print(`caught ${e.kind}`);
}
print(run(["sh", "-c", "ps -o comm= --ppid $PPID"]).stdout.trim());
"#,
    );
    // 200 MB of address space: enough to start, not to hold 400 MB.
    let out = run_under_sh(r#"ulimit -v 204800 && exec "$0" run "$1""#, &script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout.starts_with("caught MemoryError\n"), "{stdout}");
    assert!(
        !stdout.contains("head"),
        "the program is still there: {stdout}"
    );
}

/// Each stream has its own line lock, so a writer blocked on a full stdout does not hold up
/// stderr (`process::a_waiter_for_the_line_lock_sleeps_until_the_killed_holder_frees_it`);
/// when both are the same pipe (`2>&1`) they share one, and long stdout lines and short
/// stderr lines still never land inside each other.
#[test]
fn stdout_and_stderr_into_one_pipe_keep_lines_whole() {
    let dir = TempDir::new();
    let script = dir.write(
        "both.rhai",
        r#"
let ps = [];
for w in 0..6 {
    ps.push(spawn {
        for i in 0..200 {
            if i % 4 == 0 {
                let body = "";
                body.pad(20000, `${w}`);
                print(`out ${w} ${body} .`);
            } else {
                debug(`err ${w} ${i} .`);
            }
        }
    });
}
for p in ps { p.join(); }
"#,
    );
    let out = run_under_sh(r#"exec "$0" run "$1" 2>&1"#, &script);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6 * 200, "{:.300}", text);
    // `debug` writes `[file:line] "err w i ."`.
    for line in lines {
        if let Some(rest) = line.strip_prefix("out ") {
            let w = rest.as_bytes()[0];
            assert_eq!(rest.len(), 2 + 20000 + 2, "a torn line: {:.120}", line);
            assert!(rest[2..20002].bytes().all(|b| b == w), "{:.120}", line);
            assert!(rest.ends_with(" ."), "{:.120}", line);
        } else {
            assert!(
                line.starts_with('[') && line.contains("] \"err ") && line.ends_with(" .\""),
                "a torn line: {:.120}",
                line
            );
        }
    }
}
