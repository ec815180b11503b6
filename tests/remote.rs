//! Remote commands through OpenSSH against a real, throwaway sshd on loopback
//! (tests/sshd.rs): `run`, `pipeline` and `Process(#{ command })` with `host` and `ssh`.
//!
//! The "remote" host is this machine, so the tests can look at its process table: the remote
//! program must run under sshd, and nothing may be left running after `terminate()`, `kill()`
//! or a timeout.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::sshd::{self, Sshd};
use crate::support::*;

/// A `sleep` argument no other process has: the remote program's name in the process table.
fn marker(n: u32) -> String {
    format!("{}.{}", 7000 + n, std::process::id())
}

/// Live `sleep MARKER` processes.
fn sleeping(marker: &str) -> Vec<u32> {
    sshd::processes_running(&["sleep", marker])
}

/// Waits (wide margin: the remote wrapper looks for a lost connection once a second, then
/// allows 2 s between SIGTERM and SIGKILL) until no `sleep MARKER` is left.
#[track_caller]
fn assert_gone(marker: &str, what: &str) {
    assert!(
        eventually(Duration::from_secs(20), || sleeping(marker).is_empty()),
        "{what}: still running on the host: {:?}",
        sleeping(marker)
    );
}

#[test]
fn remote_run_behaves_as_a_local_one() {
    let Some(sshd) = Sshd::start_or_skip("remote::remote_run_behaves_as_a_local_one") else {
        return;
    };
    let dir = sshd.dir().join("work dir");
    std::fs::create_dir(&dir).unwrap();
    let mark = sshd.dir().join("started");
    let sleep = marker(1);
    let mut bad_ssh = sshd.ssh_options();
    let key = bad_ssh.iter().position(|o| o == "-i").unwrap() + 1;
    // A real key, but not one the server accepts.
    bad_ssh[key] = sshd.dir().join("host_ed25519").display().to_string();
    let script = format!(
        "{}const DIR = {};\nconst MARK = {};\nconst SLEEP = {};\nconst BAD_SSH = {};\n{}",
        sshd.rhai_prelude(),
        sshd::rhai_string(dir.to_str().unwrap()),
        sshd::rhai_string(mark.to_str().unwrap()),
        sshd::rhai_string(&sleep),
        sshd::rhai_array(&bad_ssh),
        r#"
fn plus(options, extra) { options += extra; options }
let on = #{ host: HOST, ssh: SSH };
// First: without `input`, ssh reads the script's own stdin, as a local program would.
print(run(["cat"], on).stdout);
print(run(["sh", "-c", "echo out; echo err >&2; exit 3"], on));
print(run(["tr", "a-z", "A-Z"], plus(on, #{ input: "shout\n" })).stdout);
let big = "";
for i in 0..2000 { big += "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"; }
print(run(["wc", "-c"], plus(on, #{ input: big })).stdout);
print(run(["env"], plus(on, #{ env: #{ A: "1", B: "two words" } })).stdout);
print(run(["pwd"], plus(on, #{ cwd: DIR })).stdout);
print(run(["true"], plus(on, #{ cwd: DIR + "/missing" })).code);
print(run(["sh", "-c", "exit 255"], on).code);
print(run(["sh", "-c", "kill -9 $$"], on).code);
print(pipeline([["printf", "b\na\nc\n"], #{ command: ["sort"], host: HOST, ssh: SSH }, ["head", "-n", "2"]]));
print(pipeline([["printf", "x\ny\n"], ["wc", "-l"]], plus(on, #{ input: "" })));
let p = Process(#{ command: ["cat"], host: HOST, ssh: SSH, stdin: "pipe", stdout: "pipe" });
p.start();
p.write_stdin("one\ntwo\n");
p.close_stdin();
print(p.read_stdout_line());
print(p.read_stdout_line());
print(p.read_stdout_line());
print(p.join());
let p = Process(#{ command: ["sh", "-c", "cat; echo done >&2; exit 4"], host: HOST, ssh: SSH, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
p.start();
print(p.communicate("some input\n"));
let t = time();
try {
    run(["sh", "-c", "touch \"$1\"; exec sleep \"$2\"", "sh", MARK, SLEEP], plus(on, #{ timeout: 6 }));
    print("no timeout");
} catch (e) {
    print(e.kind);
    print(e.message);
    print(time() - t < 40);
}
try {
    run(["true"], #{ host: HOST, ssh: BAD_SSH });
} catch (e) {
    print(e.kind);
    // ssh's own words (older versions leave out the `user@host: ` before them).
    print(e.message.starts_with("ssh failed to run `" + HOST + ":true` (exit status 255): "));
    print(e.message.ends_with("Permission denied (publickey)."));
}
"#
    );
    let run = Test::new()
        .script(&script)
        .stdin("from the script's stdin\n")
        .run();
    let host = sshd.host();
    let expected = format!(
        "from the script's stdin\n\n\
         #{{\"code\": 3, \"stderr\": \"err\\n\", \"stdout\": \"out\\n\"}}\n\
         SHOUT\n\n\
         200000\n\n\
         A=1\nB=two words\n\n\
         {}\n\n\
         127\n\
         255\n\
         137\n\
         #{{\"code\": 0, \"codes\": [0, 0, 0], \"stderr\": \"\", \"stdout\": \"a\\nb\\n\"}}\n\
         #{{\"code\": 0, \"codes\": [0, 0], \"stderr\": \"\", \"stdout\": \"2\\n\"}}\n\
         one\ntwo\nNone\n0\n\
         #{{\"code\": 4, \"stderr\": \"done\\n\", \"stdout\": \"some input\\n\"}}\n\
         TimeoutError\n\
         `{host}:sh` did not finish within 6 s and was killed\n\
         true\n\
         ConnectionError\ntrue\ntrue\n",
        dir.display(),
    );
    assert_eq!(
        run.stdout,
        expected,
        "stderr:\n{}\nsshd log:\n{}",
        run.stderr,
        sshd.log()
    );
    run.success();
    // The timed-out program did start on the host, and nothing of it is left there.
    assert!(mark.exists(), "the timed-out program never started");
    assert_gone(&sleep, "the program `run` timed out");
}

#[test]
fn arguments_cwd_and_env_reach_the_remote_program_unchanged() {
    let Some(sshd) =
        Sshd::start_or_skip("remote::arguments_cwd_and_env_reach_the_remote_program_unchanged")
    else {
        return;
    };
    let d = sshd.dir().display().to_string();
    let args: Vec<String> = [
        "",
        "two words",
        "  spaced  ",
        "it's",
        "'",
        "\"double\"",
        "$HOME",
        "${HOME}",
        "a; echo injected",
        "a && b || c",
        "a | b > c",
        "back\\slash",
        "\\'",
        "*",
        "/*",
        "?",
        "[a-z]*",
        "{a,b}",
        "~",
        "#comment",
        "A=1",
        "-n",
        "--",
        "line\nbreak",
        "tab\there",
        "!x",
        "é 日本",
        "%s%d",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        format!("$(touch {d}/pwned1)"),
        format!("`touch {d}/pwned2`"),
        format!("; touch {d}/pwned3"),
        format!("' ; touch {d}/pwned4 ; '"),
        format!("\"; touch {d}/pwned5; \""),
    ])
    .collect();
    let cwd = sshd.dir().join("dir with 'quotes', $dollar; and\nnewline");
    std::fs::create_dir(&cwd).unwrap();
    let value = "it's \"$HOME\" `x` $(y); \\ * \n end";
    let script = format!(
        "{}const ARGS = {};\nconst CWD = {};\nconst VALUE = {};\n{}",
        sshd.rhai_prelude(),
        sshd::rhai_array(&args),
        sshd::rhai_string(cwd.to_str().unwrap()),
        sshd::rhai_string(value),
        r#"
let r = run(["printf", "[%s]\n"] + ARGS, #{ host: HOST, ssh: SSH });
print(r.stdout);
let r = run(["sh", "-c", "printf '<%s>' \"$V\"; pwd"], #{ host: HOST, ssh: SSH, cwd: CWD, env: #{ V: VALUE } });
print(r.stdout);
"#
    );
    let run = Test::new().script(&script).run();
    let mut expected: String = args.iter().map(|a| format!("[{a}]\n")).collect();
    expected.push('\n');
    expected.push_str(&format!("<{value}>{}\n\n", cwd.display()));
    assert_eq!(run.stdout, expected, "stderr:\n{}", run.stderr);
    run.success();
    for n in 1..=5 {
        assert!(
            !sshd.dir().join(format!("pwned{n}")).exists(),
            "argument {n} ran as a command"
        );
    }
}

#[test]
fn an_unreachable_host_is_a_clear_error_at_once() {
    if !sshd::on_path("ssh") {
        sshd::skip(
            "remote::an_unreachable_host_is_a_clear_error_at_once",
            "no `ssh` on PATH (install it with `apt-get install -y openssh-client`)",
        );
        return;
    }
    // A loopback port nobody listens on: ssh's connection is refused.
    let port = sshd::free_port().to_string();
    let ssh = ["-F", "/dev/null", "-p", &port, "-o", "BatchMode=yes"]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>();
    let script = format!(
        "const SSH = {};\n{}",
        sshd::rhai_array(&ssh),
        r#"
try {
    run(["echo", "never"], #{ host: "127.0.0.1", ssh: SSH });
} catch (e) {
    print(e.kind);
    print(e.message);
}
try {
    pipeline([["echo", "x"], #{ command: ["cat"], host: "127.0.0.1", ssh: SSH }]);
} catch (e) {
    print(e.kind);
}
// A Process gives ssh's exit status as it is, with ssh's message on its stderr.
let p = Process(#{ command: ["echo", "never"], host: "127.0.0.1", ssh: SSH, stdin: "null", stdout: "pipe", stderr: "pipe" });
p.start();
print(p.communicate());
"#
    );
    let started = Instant::now();
    let run = Test::new().script(&script).run();
    let refused = format!("ssh: connect to host 127.0.0.1 port {port}: Connection refused");
    assert_eq!(
        run.stdout,
        format!(
            "ConnectionError\n\
             ssh failed to run `127.0.0.1:echo` (exit status 255): {refused}\n\
             ConnectionError\n\
             #{{\"code\": 255, \"stderr\": \"{refused}\\r\\n\", \"stdout\": \"\"}}\n"
        ),
        "stderr:\n{}",
        run.stderr
    );
    run.success();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

/// A script that starts remote programs and waits for a line on its stdin before ending
/// them: the test looks at the host's process table in between.
fn interactive(script: &str) -> (Test, std::process::Child) {
    let test = Test::new().script(script);
    let mut command = test.command();
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn().unwrap();
    (test, child)
}

#[test]
fn terminate_and_kill_end_the_remote_program_and_its_children() {
    let Some(sshd) =
        Sshd::start_or_skip("remote::terminate_and_kill_end_the_remote_program_and_its_children")
    else {
        return;
    };
    let (child_t, main_t, main_k) = (marker(2), marker(3), marker(4));
    let script = format!(
        "{}const CHILD_T = {};\nconst MAIN_T = {};\nconst MAIN_K = {};\n{}",
        sshd.rhai_prelude(),
        sshd::rhai_string(&child_t),
        sshd::rhai_string(&main_t),
        sshd::rhai_string(&main_k),
        r#"
// stdin "null": the script's own stdin is for the test's go-ahead, not for ssh.
let t = Process(#{ command: ["sh", "-c", "sleep \"$1\" & echo $!; exec sleep \"$2\"", "sh", CHILD_T, MAIN_T],
                   host: HOST, ssh: SSH, stdin: "null", stdout: "pipe" });
let k = Process(#{ command: ["sh", "-c", "echo $$; exec sleep \"$1\"", "sh", MAIN_K],
                   host: HOST, ssh: SSH, stdin: "null", stdout: "pipe" });
t.start();
k.start();
print(`local ${t.pid} ${k.pid}`);
print(`remote ${t.read_stdout_line()} ${k.read_stdout_line()}`);
input();
t.terminate();
k.kill();
print(t.join());
print(k.join());
"#
    );
    let (_test, mut child) = interactive(&script);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let stderr = read_in_background(child.stderr.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let local: Vec<u32> = line
        .split_whitespace()
        .skip(1)
        .map(|p| p.parse().unwrap())
        .collect();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("remote "), "{line:?}");
    // Every remote program is running, under the test's sshd and not under procscript or
    // its ssh clients: it really went through the ssh connection.
    for marker in [&child_t, &main_t, &main_k] {
        // The background `sleep` may still be a forked shell that has not exec'd yet.
        eventually(BACKSTOP, || sleeping(marker).len() == 1);
        let pids = sleeping(marker);
        assert_eq!(pids.len(), 1, "{marker}: {pids:?}");
        let chain = sshd::ancestors(pids[0]);
        assert!(chain.contains(&sshd.pid()), "{marker}: parents {chain:?}");
        assert!(
            !chain.iter().any(|p| local.contains(p) || *p == child.id()),
            "{marker} runs under procscript: {chain:?}"
        );
    }
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let rest: Vec<String> = out.lines().map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    let stderr = stderr.join().unwrap();
    // ssh ends on SIGTERM with its own exit status, 255; SIGKILL shows as -9.
    assert_eq!(rest, ["255", "-9"], "stderr:\n{stderr}");
    assert!(status.success(), "stderr:\n{stderr}");
    assert_gone(&main_t, "the program terminate() ended");
    assert_gone(&child_t, "the child of the program terminate() ended");
    assert_gone(&main_k, "the program kill() ended");
}

#[test]
fn remote_options_are_checked() {
    let run = Test::new()
        .script(
            r#"
fn kind(f) {
    try { f.call(); return "no error"; } catch (e) { return `${e.kind}: ${e.message}`; }
}
print(kind(|| run(["true"], #{ ssh: ["-p", "2222"] })));
print(kind(|| run(["true"], #{ host: "-oProxyCommand=x" })));
print(kind(|| run(["true"], #{ host: "two words" })));
print(kind(|| run(["true"], #{ host: 5 })));
print(kind(|| run(["true"], #{ host: "h", ssh: "-p 22" })));
print(kind(|| run(["true"], #{ host: "h", ssh: 22 })));
print(kind(|| run(["x=y"], #{ host: "h", env: #{} })));
print(kind(|| pipeline([#{ command: ["true"], hots: "h" }])));
print(kind(|| Process(#{ command: ["true"], ssh: [] })));
print(kind(|| Process(#{ command: ["true"], host: "" })));
"#,
        )
        .run();
    assert_eq!(
        run.stdout,
        "ValueError: `ssh` arguments need a `host` to run the program on\n\
         ValueError: `host` must not start with `-` (ssh would read \"-oProxyCommand=x\" as an option)\n\
         ValueError: `host` must not contain spaces or control characters: \"two words\"\n\
         TypeError: `host` must be a string like \"node1\" or \"user@node1\", not i64\n\
         TypeError: `ssh` is a list of ssh arguments like [\"-p\", \"2222\"], not one string: \"-p 22\"\n\
         TypeError: `ssh` must be a list of ssh arguments like [\"-p\", \"2222\"], not i64\n\
         ValueError: with `env`, a remote program's name must not contain `=` (`env` would read \"x=y\" as a variable)\n\
         ValueError: unknown option `hots` in a pipeline stage (expected `command`, `host`, `ssh`)\n\
         ValueError: `ssh` arguments need a `host` to run the program on\n\
         ValueError: `host` must not be empty\n",
        "stderr:\n{}",
        run.stderr
    );
    run.success();
}
