"""Bad input to the command line: hostile script files and paths (missing, directories,
devices, FIFOs, symlink loops, NUL bytes and invalid UTF-8 in the source, BOMs, CRLF, huge
files, names with spaces, newlines and dashes), hostile flags (--max-procs, --trace,
--timeline into directories, devices, symlinks, FIFOs), `doc`, `report` on hostile traces
(garbage, wrong types, NaN/inf, alias bombs, deep nesting, huge numbers), `check`, the REPL
and `procscript worker` fed garbage on stdin.
"""

import os
import random
import stat
import subprocess

import harness
from harness import probe, Live

B = harness.binary


def run_cli(ctx, argv, stdin=b"", timeout=60, what=None, env=None):
    ctx.inputs += 1
    res = ctx.run_argv(argv, stdin=stdin, timeout=timeout, env=env, what=what or " ".join(map(str, argv))[:120])
    return res


def clear_error(ctx, res, what, codes=(1, 2)):
    """A refused input: a listed exit code and a message on stderr that is short and human."""
    ctx.check(res.code in codes, f"{what}: exit {res.code}, wanted one of {codes}\n{res.describe(600)}")
    ctx.check(res.err.strip() != "", f"{what}: refused without a word on stderr")
    ctx.check(len(res.err) < 20000, f"{what}: {len(res.err)} bytes on stderr")


@probe("cli", seeds=1, timeout=900)
def hostile_script_files(ctx):
    """procscript FILE / run / check on missing, odd and hostile files"""
    d = ctx.dir
    good = ctx.write("good.rhai", 'print("ok");\n')
    os.symlink("loop1", os.path.join(d, "loop2"))
    os.symlink("loop2", os.path.join(d, "loop1"))
    os.symlink(good, os.path.join(d, "link.rhai"))
    os.symlink("/nonexistent/x.rhai", os.path.join(d, "dangling.rhai"))
    os.mkdir(os.path.join(d, "dir.rhai"))
    os.mkfifo(os.path.join(d, "fifo.rhai"))
    files = {
        "nul in source": b'print("a\x00b");\n',
        "nul outside strings": b'print(1);\x00print(2);\n',
        "invalid utf8": b'print("\xff\xfe");\n',
        "invalid utf8 comment": b'// \xc3\x28\nprint(1);\n',
        "bom": b'\xef\xbb\xbfprint("bom");\n',
        "crlf": b'let x = 1;\r\nprint(x);\r\n',
        "cr only": b'let x = 1;\rprint(x);\r',
        "shebang": b'#!/usr/bin/env procscript\nprint("she");\n',
        "empty": b"",
        "only comments": b"// nothing\n/* more */\n",
        "unterminated string": b'print("abc\n',
        "unterminated comment": b"/* abc\n",
        "deep parens": b"(" * 5000 + b"1" + b")" * 5000 + b";\n",
        "deep blocks": b"{" * 3000 + b"}" * 3000,
        "long line": b"let x = " + b"1 + " * 200000 + b"1;\nprint(x);\n",
        "many lines": b"let x = 0;\n" + b"x += 1;\n" * 300000 + b"print(x);\n",
        "huge string literal": b'let s = "' + b"a" * 20_000_000 + b'"; print(s.len());\n',
        "control chars": bytes(range(1, 32)) + b"\n",
        "unicode idents": "let 主 = 1; print(主);\n".encode(),
        "rtl override": "print(\"\u202e abc\");\n".encode(),
        "binary": bytes(random.Random(ctx.seed).randrange(256) for _ in range(100000)),
        "exit huge": b"exit(99999999999);\n",
        "exit negative": b"exit(-1);\n",
        "exit float": b"exit(3.7);\n",
        "exit string": b'exit("bye");\n',
        "exit array": b"exit([1, 2]);\n",
        "throw map": b'throw #{ kind: "X", message: 5 };\n',
        "throw nested": b"let y = []; for i in 0..1000 { y = [y]; } throw y;\n",
        "throw huge": b'let s = "e"; for i in 0..22 { s += s; } throw s;\n',
        "stack overflow": b"fn f(n) { f(n + 1) } f(0);\n",
        "deep data print": b"let y = []; for i in 0..6000 { y = [y]; } print(y);\n",
        "deep map": b"let y = #{}; for i in 0..6000 { y = #{ a: y }; } print(y);\n",
        "infinite loop in fn names": b"fn spawn() { 1 }\n",
        "reserved words": b"let with = 1;\n",
        "spawn nothing": b"spawn;\n",
        "spawn weird": b"let p = spawn { spawn { spawn 1; }; }; p.join();\n",
        "with nothing": b"with { }\n",
        "with non-lock": b"with 5 { print(1); }\n",
        "with string": b'with "x" { print(1); }\n',
    }
    cases = []
    for name, data in files.items():
        p = os.path.join(d, name.replace(" ", "_") + ".rhai")
        with open(p, "wb") as f:
            f.write(data)
        cases.append((name, p))
    cases += [
        ("missing", os.path.join(d, "missing.rhai")),
        ("directory", os.path.join(d, "dir.rhai")),
        ("symlink loop", os.path.join(d, "loop1")),
        ("dangling symlink", os.path.join(d, "dangling.rhai")),
        ("symlink", os.path.join(d, "link.rhai")),
        ("/dev/null", "/dev/null"),
        ("/proc/self/status", "/proc/self/status"),
        ("too long path", "/" + "a" * 5000),
        ("path with newline", ctx.write("new\nline.rhai", "print(1);")),
        ("path with spaces", ctx.write("with spaces.rhai", "print(1);")),
        ("path unicode", ctx.write("主进程.rhai", "print(1);")),
        ("path starting with dash", ctx.write("-x.rhai", "print(1);")),
        ("path with invalid utf8", _write_bytes_name(d, b"bad\xff.rhai", b"print(1);")),
        ("empty path", ""),
    ]
    for name, path in cases:
        for how in (["run"], [], ["check"]):
            argv = [B()] + how + (["--"] if name == "path starting with dash" and how != [] else []) + [path]
            if how == [] and name == "path starting with dash":
                argv = [B(), "./-x.rhai"]
            res = run_cli(ctx, argv, timeout=120, what=f"{name} ({' '.join(how) or 'FILE'})")
            ctx.check(res.code is not None and res.code not in (101, 134, 139),
                      f"{name}: exit {res.code}")
            if res.code not in (0,) and res.code not in (1, 2, 3, 99999999999 % 256, 255, 143):
                ctx.note(f"{name} {how}: exit {res.code}")
    # A FIFO with a writer that writes a script and closes: runs it.
    fifo = os.path.join(d, "fifo.rhai")
    live = Live([B(), "run", fifo], cwd=d, env=ctx.env(), stdin=subprocess.DEVNULL)
    with open(fifo, "wb") as f:
        f.write(b'print("from fifo");\n')
    res = ctx.end(live, 30, what="fifo")
    ctx.inputs += 1
    ctx.check("from fifo" in res.out, f"a script from a FIFO: {res.describe(400)}")
    # /dev/zero never ends: it must be refusable (an error, or at least end on SIGTERM)
    live = Live([B(), "run", "/dev/zero"], cwd=d, env=ctx.env(), stdin=subprocess.DEVNULL)
    code = live.wait(10)
    if code is None:
        live.signal(15)
        code = live.wait(10)
        ctx.note("`run /dev/zero` reads until stopped; SIGTERM ended it" if code is not None else "")
        ctx.check(code is not None, "`run /dev/zero`: SIGTERM did not end it")
    res = ctx.end(live, 10, allow_timeout=True, what="/dev/zero")
    ctx.inputs += 1
    ctx.note(f"/dev/zero: exit {res.code}, {len(res.err)} bytes on stderr")


def local_node(d, name, minor):
    """A character device node like /dev/null (1, 3) or /dev/full (1, 7), in `d`."""
    path = os.path.join(d, name)
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    return path


def local_link(d, name, target):
    path = os.path.join(d, name)
    os.symlink(target, path)
    return path


def _write_bytes_name(d, name, data):
    p = os.path.join(os.fsencode(d), name)
    with open(p, "wb") as f:
        f.write(data)
    return os.fsdecode(p)


@probe("cli", seeds=1, timeout=900)
def hostile_flags_and_outputs(ctx):
    """--max-procs, --trace, --timeline, doc --out, report --svg into hostile places"""
    d = ctx.dir
    script = ctx.write("s.rhai", 'let p = spawn 0; p.join(); print("ran");\n')
    victim = ctx.write("victim.txt", "precious\n")
    os.symlink(victim, os.path.join(d, "sym.yaml"))
    os.mkdir(os.path.join(d, "adir"))
    os.mkfifo(os.path.join(d, "fifo.yaml"))
    ro = os.path.join(d, "ro")
    os.mkdir(ro)
    os.chmod(ro, 0o500)
    os.link(script, os.path.join(d, "hard.rhai"))
    for v in ["-1", "abc", "", "99999999999999999999", "1e3", "0x10", " 5", "4294967296", "-0", "1.5"]:
        res = run_cli(ctx, [B(), "run", "--max-procs", v, script])
        ctx.check(res.code in (0, 2), f"--max-procs {v!r}: exit {res.code}: {res.err[:300]}")
    targets = {
        "directory": os.path.join(d, "adir"),
        # Device nodes made here, never the system's: an output written over /dev/null by
        # rename would replace the machine's /dev/null (as root).
        "char device (full)": local_node(d, "full", 7),
        "char device (null)": local_node(d, "null", 3),
        "symlink like /dev/stdout": local_link(d, "stdout", "/proc/self/fd/1"),
        "symlink to a file": os.path.join(d, "sym.yaml"),
        "missing dir": os.path.join(d, "no", "such", "t.yaml"),
        "fifo": os.path.join(d, "fifo.yaml"),
        "read-only dir": os.path.join(ro, "t.yaml"),
        "the script": script,
        "a hard link of the script": os.path.join(d, "hard.rhai"),
        "empty": "",
        "proc": "/proc/self/mem",
        "long": os.path.join(d, "x" * 300),
    }
    for flag in ("--trace", "--timeline"):
        for name, t in targets.items():
            res = run_cli(ctx, [B(), "run", flag, t, os.path.join(d, "hard.rhai") if name == "the script" else script],
                          timeout=60, what=f"{flag} {name}")
            ctx.check(res.code is not None and res.code not in (101, 134),
                      f"{flag} {name}: exit {res.code}")
            ctx.note(f"{flag} {name}: exit {res.code}")
    ctx.check(open(victim).read() == "precious\n", "a symlinked trace target's file was overwritten")
    for node in ("full", "null"):
        st = os.lstat(os.path.join(d, node))
        ctx.check(stat.S_ISCHR(st.st_mode), f"--trace/--timeline onto a device node `{node}` replaced it with "
                                            f"{'a regular file' if stat.S_ISREG(st.st_mode) else oct(st.st_mode)}")
    ctx.check(stat.S_ISFIFO(os.lstat(os.path.join(d, "fifo.yaml")).st_mode),
              "--trace/--timeline onto a FIFO replaced it with a regular file")
    ctx.check(open(script).read().startswith("let p"), "the script was overwritten by a trace")
    for name, t in targets.items():
        if name in ("the script", "a hard link of the script"):
            continue  # `doc --out PATH` writes where it is told
        if name == "fifo":
            # Opening a FIFO nobody reads waits, as the shell's `>` does: SIGTERM must end it.
            ctx.inputs += 1
            ctx.faults += 1
            live = Live([B(), "doc", "--out", t], cwd=d, env=ctx.env(), stdin=subprocess.DEVNULL)
            if live.wait(2) is None:
                live.signal(15)
                ctx.check(live.wait(5) is not None, "doc --out FIFO (no reader): SIGTERM did not end it")
            ctx.end(live, 5, what="doc --out fifo")
            continue
        res = run_cli(ctx, [B(), "doc", "--out", t], timeout=60, what=f"doc --out {name}")
        ctx.check(res.code is not None and res.code not in (101, 134), f"doc --out {name}: exit {res.code}")
        ctx.note(f"doc --out {name}: exit {res.code}")
    for bad in ([B(), "doc", "--check", "--out", "/dev/null"], [B(), "doc", "--check", "/nonexistent.md"],
                [B(), "doc", "--check", ctx.write("junk.md", "```rhai\nlet x = ;\n```\n")],
                [B(), "doc", "--check", ctx.write("bin.md", "\x00\xff".encode("latin-1").decode("latin-1"))],
                [B(), "completions", "nosuchshell"], [B(), "completions"], [B(), "man", "extra"],
                [B(), "--max-procs"], [B(), "run"], [B(), "run", "--nosuch", script], [B(), "report"],
                [B(), "worker", "extra"], [B(), "-"], [B(), "--", "-"], [B(), "help", "nosuch"]):
        res = run_cli(ctx, bad, timeout=60)
        ctx.check(res.code is not None and res.code not in (101, 134), f"{bad[1:]}: exit {res.code}")


TRACE_OK = """version: 1
processes:
- pid: 100
  ppid: 1
  name: MainProcess
  start: 0.0
  duration: 1.0
  exit: 0
"""


def read_trace_format(ctx):
    """A real trace from a small run, to mutate."""
    t = os.path.join(ctx.dir, "real.yaml")
    ctx.run('let p = spawn { let g = spawn 0; g.join(); }; p.join();', flags=["--trace", t])
    return open(t).read() if os.path.exists(t) else TRACE_OK


@probe("cli", seeds=3, timeout=900)
def report_on_hostile_traces(ctx):
    """`report` (with --svg) on mutated, malformed and malicious YAML traces"""
    real = read_trace_format(ctx)
    rng = ctx.rng
    nums = ["-1", "0", "1e308", "-1e308", ".nan", ".inf", "-.inf", "99999999999999999999999",
            "-9223372036854775808", "1.5", '"x"', "[]", "{}", "null", "~", "true", "0x10",
            "18446744073709551616"]
    mutants = []
    lines = real.splitlines()
    for _ in range(60):
        ls = list(lines)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(ls))
            k = rng.random()
            if ":" in ls[i] and k < 0.6:
                key = ls[i].split(":", 1)[0]
                ls[i] = f"{key}: {rng.choice(nums)}"
            elif k < 0.75:
                del ls[i]
            elif k < 0.9:
                ls.insert(i, ls[rng.randrange(len(ls))])
            else:
                ls[i] = ls[i][: rng.randrange(len(ls[i]) + 1)]
        mutants.append("\n".join(ls) + "\n")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n"
    prev = "a"
    for i in range(1, 12):
        bomb += f"{chr(97 + i)}: &{chr(97 + i)} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
        prev = chr(97 + i)
    bomb += f"processes: *{prev}\n"
    specials = [
        "", "\x00\x01", "processes: 5\n", "processes:\n- 1\n- 2\n", "[" * 100000, "- " * 50000 + "x\n",
        bomb, "version: 99\nprocesses: []\n", "processes: []\n", "{}", "!!binary AAAA\n",
        real.replace("MainProcess", "x" * 1000000),
        real + "".join(f"- pid: {i}\n  ppid: {i + 1}\n" for i in range(2, 5000)),
        "\xff\xfe".encode("latin-1").decode("latin-1") + real,
    ]
    for i, text in enumerate(mutants + specials):
        path = ctx.write(f"t{i}.yaml", text)
        svg = os.path.join(ctx.dir, f"t{i}.svg")
        for argv in ([B(), "report", path], [B(), "report", path, "--svg", svg]):
            res = run_cli(ctx, argv, timeout=60, what=f"report mutant {i}")
            ctx.check(res.code in (0, 1, 2), f"report mutant {i}: exit {res.code}\n{text[:300]!r}\n{res.err[:300]}")


@probe("cli", seeds=3, timeout=600)
def repl_and_worker_fed_garbage(ctx):
    """The REPL (stdin not a terminal) and `procscript worker` fed random bytes, huge lines, truncation"""
    rng = ctx.rng
    inputs = [
        bytes(rng.randrange(256) for _ in range(rng.randint(1, 20000))),
        b"print(1)\n" * 1000,
        b"x" * 5_000_000 + b"\n",
        b"let p = spawn 1;\np.join()\nhelp\nhelp spawn\ndir()\nps\n",
        b"\x03\x04\x1a\n",
        b"fn f() { \n",
        b"exit(3)\n",
        b"sleep(0.1)\n" * 10,
    ]
    for data in inputs:
        res = run_cli(ctx, [B()], stdin=data, timeout=120, what="repl")
        ctx.check(res.code is not None and res.code not in (101, 134), f"REPL: exit {res.code}")
    # worker: garbage, a plausible frame with a huge length, empty
    frames = [
        b"",
        bytes(rng.randrange(256) for _ in range(rng.randint(1, 5000))),
        (2 ** 62).to_bytes(8, "little") + b"x" * 100,
        (2 ** 30 + 1).to_bytes(8, "little"),
        (100).to_bytes(8, "little") + b"\x00" * 100,
        (5).to_bytes(8, "little") + b"\xff" * 5 + (3).to_bytes(8, "little") + b"abc",
    ]
    for data in frames:
        res = run_cli(ctx, [B(), "worker"], stdin=data, timeout=60, what="worker")
        ctx.check(res.code is not None and res.code not in (101, 134), f"worker: exit {res.code}")
        ctx.check(len(res.out) < 100000 and len(res.err) < 100000, "worker printed too much")
