"""Full pipes and readers that stop or vanish: stdout to a pipe nobody reads, `| head`,
stdout closed or on /dev/full, a reader stopped with SIGSTOP while many processes print,
consumers stopped while producers put with timeouts, peers that stop reading a socket,
programs whose output is never read.
"""

import os
import signal
import subprocess
import time

import harness
from harness import probe, Live, in_session, reap_session

PRINTER = r'''
let ps = [];
for w in 0..NPROC {
    ps.push(spawn {
        for i in 0..NLINES { print(`line ${w} ${i} ` + PAD); }
    });
}
for i in 0..NLINES { print(`line main ${i} ` + PAD); }
for p in ps { p.join(); }
'''


def printer(nproc, nlines, pad):
    return PRINTER.replace("NPROC", str(nproc)).replace("NLINES", str(nlines)).replace(
        "PAD", f'"{"x" * pad}"')


@probe("pipes", seeds=3)
def stdout_to_a_pipe_nobody_reads(ctx):
    """Main and 4 children print into a pipe nobody reads; SIGTERM/SIGINT must end it at once"""
    for pad in (10, 5000, 100000):
        for sig in (signal.SIGTERM, signal.SIGINT):
            r, w = os.pipe()
            live = Live(ctx.argv(printer(4, 100000, pad)), cwd=ctx.dir, env=ctx.env(),
                        stdin=subprocess.DEVNULL, stdout=w)
            os.close(w)
            time.sleep(ctx.rng.uniform(0.5, 1.5))
            t0 = time.monotonic()
            live.signal(sig)
            ctx.faults += 1
            ctx.inputs += 1
            code = live.wait(10)
            ms = (time.monotonic() - t0) * 1000
            os.close(r)
            res = ctx.end(live, 5, what=f"pad={pad} {sig.name}")
            ctx.check(code == 128 + sig.value, f"pad={pad}: {sig.name} with stdout full gave {code}")
            ctx.check(ms < 3000, f"pad={pad}: {sig.name} with stdout full took {ms:.0f} ms")


@probe("pipes", seeds=3)
def into_head(ctx):
    """`procscript run x | head -n K` with 4 printing children: ends quietly, nothing left running"""
    for pad in (0, 200, 20000):
        for k in (0, 1, 50):
            path = ctx.write("p.rhai", printer(4, 20000, pad))
            cmd = f"{harness.binary()} run {path} | head -n {k} > /dev/null; echo \"${{PIPESTATUS[0]}}\""
            live = Live(["bash", "-c", cmd], cwd=ctx.dir, env=ctx.env(), stdin=subprocess.DEVNULL)
            res = ctx.end(live, 60, what=f"| head -n {k} pad={pad}")
            ctx.inputs += 1
            ctx.faults += 1
            code = res.out.strip()
            ctx.check(res.code == 0, f"| head -n {k}: bash ended {res.code}: {res.err[-300:]}")
            # Quiet: no stack of errors on stderr when the reader leaves.
            lines = [l for l in res.err.splitlines() if l.strip()]
            ctx.check(len(lines) <= 3, f"| head -n {k} pad={pad}: {len(lines)} lines on stderr (exit {code}): {res.err[:500]}")
            ctx.note(f"| head -n {k}: exit {code}")


@probe("pipes", seeds=1)
def stdout_closed_or_full(ctx):
    """stdout closed (>&-), /dev/full, stderr closed, stdin closed: clear errors, no panic"""
    script = 'print("hello"); let p = spawn print("child"); p.join(); debug("dbg"); let x = input(); print(`in ${x}`); eprint("err");'
    path = ctx.write("s.rhai", script.replace('eprint("err");', ""))
    cases = {
        "stdout closed": f"{harness.binary()} run {path} >&-",
        "stdout /dev/full": f"{harness.binary()} run {path} > /dev/full",
        "stderr closed": f"{harness.binary()} run {path} 2>&-",
        "stderr /dev/full": f"{harness.binary()} run {path} 2>/dev/full",
        "stdin closed": f"{harness.binary()} run {path} <&-",
        "all closed": f"{harness.binary()} run {path} <&- >&- 2>&-",
        "error to /dev/full": f"{harness.binary()} run {ctx.write('e.rhai', 'let x = 1 +; ')} 2>/dev/full",
        "runtime error stderr closed": f"{harness.binary()} run {ctx.write('r.rhai', 'throw 1;')} 2>&-",
        "repl stdout closed": f"echo 'print(1)' | {harness.binary()} >&-",
        "report stdout full": f"{harness.binary()} doc > /dev/full",
        "completions to /dev/full": f"{harness.binary()} completions bash > /dev/full",
        "man closed": f"{harness.binary()} man >&-",
    }
    for name, cmd in cases.items():
        ctx.inputs += 1
        ctx.faults += 1
        live = Live(["bash", "-c", f"exec 3>{ctx.dir}/rc; {cmd}; echo \"rc=$?\" >&3"], cwd=ctx.dir,
                    env=ctx.env(), stdin=subprocess.DEVNULL)
        res = ctx.end(live, 60, what=name)
        rc = open(os.path.join(ctx.dir, "rc")).read().strip()
        code = int(rc.split("=")[1]) if rc.startswith("rc=") else None
        ctx.check(code is not None and code not in (101, 134, 139),
                  f"{name}: exit {rc} (a panic, an abort or no exit); stderr {res.err[-400:]}")
        ctx.note(f"{name}: exit {code}")


@probe("pipes", seeds=3)
def reader_stopped_then_continued(ctx):
    """8 processes print 2,000 lines each (some 20 KB) into `cat`, which is stopped and continued: all lines whole"""
    script = r'''
let ps = [];
for w in 0..8 {
    ps.push(spawn {
        for i in 0..2000 {
            let pad = if i % 100 == 0 { 20000 } else { i % 50 };
            let s = "";
            s.pad(pad, "z");
            print(`L ${w} ${i} ${pad} ${s} E`);
        }
    });
}
for p in ps { p.join(); }
print("END");
'''
    path = ctx.write("s.rhai", script)
    out = os.path.join(ctx.dir, "out.txt")
    live = Live(["bash", "-c", f"{harness.binary()} run {path} | cat > {out}"], cwd=ctx.dir, env=ctx.env(),
                stdin=subprocess.DEVNULL)
    time.sleep(0.3)
    cats = [p for p in harness.descendants(live.pid) if harness.cmdline(p)[:1] == [b"cat"]]
    for _ in range(ctx.rng.randint(2, 5)):
        for c in cats:
            os.kill(c, signal.SIGSTOP)
        time.sleep(ctx.rng.uniform(0.2, 1.0))
        for c in cats:
            os.kill(c, signal.SIGCONT)
        ctx.faults += 1
        time.sleep(ctx.rng.uniform(0.05, 0.4))
    res = ctx.end(live, 180)
    ctx.expect_code(res, 0)
    whole = bad = 0
    with open(out, errors="replace") as f:
        for line in f:
            if not line.startswith("L "):
                continue
            parts = line.rstrip("\n").split(" ")
            if len(parts) == 6 and parts[5] == "E" and len(parts[4]) == int(parts[3]):
                whole += 1
            else:
                bad += 1
    ctx.load += whole
    ctx.check(whole == 16000 and bad == 0, f"{whole} whole lines of 16000, {bad} torn")


@probe("pipes", seeds=3)
def consumer_stopped_producer_times_out(ctx):
    """A bounded Queue/Pipe whose consumer is stopped: put(v, timeout) is Full by its deadline; nothing lost after SIGCONT"""
    script = r'''
let q = Queue(3);
let got = Queue();
let c = spawn { let n = 0; loop { let v = q.get(); if v == () { break; } n += 1; } got.put(n); };
print(`CONSUMER ${c.pid}`);
input();
let full = 0;
let put = 0;
let late = 0;
for i in 0..20 {
    let t = monotonic();
    try { q.put(blob(i * 100000), 0.3); put += 1; } catch (e) { if e.kind == "Full" { full += 1; } else { throw e; } }
    if monotonic() - t > 5 { late += 1; }
}
print(`PUTS ${put} ${full} ${late}`);
input();
q.put(());
print(`GOT ${got.get(60)} ${put}`);
c.join();
'''
    live = ctx.live(script)
    cpid = int(live.expect(r"^CONSUMER (\d+)$", 60).group(1))
    os.kill(cpid, signal.SIGSTOP)
    ctx.faults += 1
    live.send("\n")
    m = live.expect(r"^PUTS (\d+) (\d+) (\d+)$", 120)
    ctx.check(m.group(3) == "0", f"a put(v, 0.3) took more than 5 s: {m.group(0)}")
    ctx.check(int(m.group(2)) > 0, f"no put was Full with the consumer stopped: {m.group(0)}")
    os.kill(cpid, signal.SIGCONT)
    live.send("\n")
    m2 = live.expect(r"^GOT (\d+) (\d+)$", 120)
    ctx.check(m2.group(1) == m2.group(2), f"consumer got {m2.group(1)} values, {m2.group(2)} were put")
    res = ctx.end(live, 60)
    ctx.expect_code(res, 0)
    ctx.load += 20


@probe("pipes", seeds=3)
def socket_peer_stops_reading(ctx):
    """sendall to a peer that stopped reading: with a timeout, TimeoutError by the deadline; then the peer drains all"""
    # The reader closes its inherited copy of the writing end, as in Python: otherwise its
    # own copy keeps the connection open and it never sees the end.
    script = r'''
let pr = socketpair();
let a = pr[0];
let b = pr[1];
let start = Event();
let r = spawn { a.close(); start.wait(); let n = 0; loop { let d = b.recv(65536); if d.len() == 0 { break; } n += d.len(); } print(`READ ${n}`); };
b.close();
a.settimeout(0.5);
let sent = 0;
let t = monotonic();
try { a.sendall(blob(50000000)); sent = 50000000; } catch (e) { print(`KIND ${e.kind} ${monotonic() - t}`); }
a.settimeout(());
print("WAITING");
input();
start.set();
a.close();
r.join();
'''
    live = ctx.live(script)
    m = live.expect(r"^KIND (\S+) ([\d.]+)$", 60)
    ctx.check(m.group(1) == "TimeoutError", f"sendall to a stopped reader: {m.group(0)}")
    ctx.check(float(m.group(2)) < 5, f"sendall with a 0.5 s timeout took {m.group(2)} s")
    ctx.faults += 1
    live.expect("^WAITING$", 30)
    live.send("\n")
    live.close_stdin()
    m = live.expect(r"^READ (\d+)$", 60)
    # what sendall managed to hand over before its timeout arrives, and nothing else
    ctx.check(0 < int(m.group(1)) < 50000000, f"the peer read {m.group(1)} bytes")
    res = ctx.end(live, 60)
    ctx.expect_code(res, 0)


@probe("pipes", seeds=1)
def program_output_unread_or_huge(ctx):
    """run() of programs with huge or endless output: captured whole, or a timeout that ends it"""
    script = r'''
let r = run(["head", "-c", "50000000", "/dev/zero"]);
print(`BIG ${r.stdout.len()} ${r.code}`);
let t = monotonic();
try { run(["yes"], #{ timeout: 1 }); } catch (e) { print(`YES ${e.kind} ${monotonic() - t < 20}`); }
let r2 = run(["sh", "-c", "head -c 3000000 /dev/zero >&2; echo done"]);
print(`ERR ${r2.stderr.len()} ${r2.stdout}`);
let p = Process(#{ command: ["sh", "-c", "head -c 10000000 /dev/zero"], stdout: "pipe" });
p.start();
print(`COMM ${p.communicate((), 60).stdout.len()}`);
let p2 = Process(#{ command: ["cat"], stdin: "pipe", stdout: "pipe" });
p2.start();
let c = p2.communicate(blob(20000000, 65), 60);
print(`CAT ${c.stdout.len()}`);
let r3 = run(["head", "-c", "1000", "/dev/urandom"]);
print(`BIN ${r3.code}`);
'''
    res = ctx.run(script, timeout=300)
    ctx.inputs += 6
    out = res.out
    ctx.check("BIG 50000000 0" in out, f"50 MB of output: {out[:300]} {res.err[-300:]}")
    ctx.check("YES TimeoutError true" in out, f"`yes` with timeout 1: {out[:400]}")
    ctx.check("ERR 3000000 done" in out, f"3 MB on stderr: {out[:400]}")
    ctx.check("CAT 20000000" in out, f"20 MB through cat: {out[:400]} {res.err[-300:]}")
    ctx.note(f"binary output: {[l for l in out.splitlines() if l.startswith('BIN')]} {res.err[-200:]!r}")
