"""Remote commands and pool workers over ssh, against a throwaway sshd on 127.0.0.1: hostile
argv words, environment values and directories (every byte must arrive as sent), big input,
timeouts, the local ssh client or the remote program killed, SIGTERM of the script, remote
workers killed at random, unreachable hosts beside reachable ones, sshd itself killed, and
`procscript worker` fed mutations of a real pool conversation.
"""

import os
import signal
import subprocess
import time

import harness
from harness import probe, rhai_str, running_with_arg, eventually, descendants, alive

WORDS = ["", " ", "a b", "'", '"', "\\", "$(id)", "`id`", "$HOME", "*", "~", ";", "|", "&&",
         "\n", "\t", "é主🎉", "-", "--", "-e", "%s", "!", "#", "{a,b}", "\r", "a'b\"c", "'\\''",
         "x" * 100000, "\x01\x7f", "line1\nline2", "  lead", "trail  ", "=", "a=b"]


def hostile_words(rng, n):
    return [rng.choice(WORDS) for _ in range(n)]


def rhai_list(words):
    return "[" + ", ".join(rhai_str(w) for w in words) + "]"


def marker_link(ctx, sshd):
    """A link to the binary with a name unique to this probe run, to find its workers by."""
    link = os.path.join(ctx.dir, f"procscript-adv-{os.getpid()}-{ctx.seed}-{time.monotonic_ns()}")
    os.symlink(harness.binary(), link)
    return link


@probe("remote", seeds=3, timeout=900, sshd=True)
def argv_env_and_cwd_arrive_byte_for_byte(ctx):
    """Hostile argv words, env values and cwd names through ssh arrive exactly as sent"""
    sshd = ctx.sshd()
    rng = ctx.rng
    cases = []
    for _ in range(12):
        cases.append(hostile_words(rng, rng.randint(1, 6)))
    odd_dir = os.path.join(ctx.dir, "d i'r\"$(x)`y`\nz 主")
    os.makedirs(odd_dir)
    body = sshd.prelude()
    body += "let out = [];\n"
    for i, words in enumerate(cases):
        body += f'''
{{
    let r = run(["printf", "%s\\x01"] + {rhai_list(words)}, #{{ host: HOST, ssh: SSH, input: "" }});
    print(`CASE {i} ${{r.code}} ${{r.stdout.len()}}`);
    out.push(r.stdout);
}}
'''
    env_vals = hostile_words(rng, 6)
    body += f'''
let envs = {rhai_list(env_vals)};
for i in 0..envs.len() {{
    let r = run(["printenv", "V"], #{{ host: HOST, ssh: SSH, input: "", env: #{{ V: envs[i], PATH: "/usr/bin:/bin" }} }});
    print(`ENV ${{i}} ${{r.stdout == envs[i] + "\\n"}} ${{r.code}}`);
}}
let r = run(["pwd"], #{{ host: HOST, ssh: SSH, input: "", cwd: {rhai_str(odd_dir)} }});
print(`CWD ${{r.stdout == {rhai_str(odd_dir + chr(10))}}} ${{r.code}}`);
for i in 0..out.len() {{ print(`OUT ${{i}} ` + out[i].encode().to_debug()); }}
'''
    res = ctx.run(body, timeout=600)
    ctx.expect_code(res, 0)
    outs = {}
    for line in res.out.splitlines():
        if line.startswith("OUT "):
            i, rest = line[4:].split(" ", 1)
            outs[int(i)] = rest
    for i, words in enumerate(cases):
        ctx.inputs += 1
        want = "".join(w + "\x01" for w in words)
        got_len = [l for l in res.out.splitlines() if l.startswith(f"CASE {i} ")]
        ok = got_len and got_len[0] == f"CASE {i} 0 {len(want)}"
        ctx.check(ok, f"argv {[w[:20] for w in words]!r} arrived as {got_len} (wanted {len(want)} chars): "
                      f"{outs.get(i, '')[:300]}")
    for i, v in enumerate(env_vals):
        ctx.inputs += 1
        line = [l for l in res.out.splitlines() if l.startswith(f"ENV {i} ")]
        # a value with a NUL cannot be in an environment; the rest must arrive exactly
        ctx.check(line and line[0] == f"ENV {i} true 0", f"env value {v[:30]!r}: {line}")
    ctx.inputs += 1
    ctx.check("CWD true 0" in res.out, f"cwd {odd_dir!r}: {res.out[-300:]} {res.err[-300:]}")


@probe("remote", seeds=3, timeout=900, sshd=True)
def timeouts_kills_and_sigterm_leave_nothing_on_the_host(ctx):
    """Remote timeout, the local ssh killed, the remote program killed, SIGTERM to the script: clear errors, nothing left"""
    sshd = ctx.sshd()
    tag = f"advmark{os.getpid()}x{ctx.seed}x{time.monotonic_ns()}"
    sleeper = f'["sh", "-c", "sleep 300; echo {tag}"]'
    pre = sshd.prelude()
    # 1. timeout
    res = ctx.run(pre + f'''
let t = monotonic();
try {{ run({sleeper}, #{{ host: HOST, ssh: SSH, input: "", timeout: 1 }}); }} catch (e) {{ print(`KIND ${{e.kind}} ${{monotonic() - t}}`); }}
''', timeout=120)
    ctx.inputs += 1
    ctx.check("KIND TimeoutError" in res.out, f"remote timeout: {res.out} {res.err[-300:]}")
    left = eventually(lambda: not running_with_arg(tag.encode()), 20)
    ctx.check(left, f"remote timeout left {running_with_arg(tag.encode())} running on the host")
    # 2. the local ssh client killed, 3. the remote program killed, 4. SIGTERM to the script
    for fault in ("ssh", "remote", "sigterm", "sigint", "stop_ssh"):
        script = pre + f'''
let p = Process(#{{ command: {sleeper}, host: HOST, ssh: SSH, stdin: "null", stdout: "pipe" }});
p.start();
print(`STARTED ${{p.pid}}`);
let code = p.join(120);
print(`CODE ${{code}}`);
'''
        live = ctx.live(script)
        pid = int(live.expect(r"^STARTED (\d+)$", 60).group(1))
        ok = eventually(lambda: running_with_arg(tag.encode()), 30)
        ctx.check(ok, f"{fault}: the remote program never started")
        ctx.faults += 1
        ctx.inputs += 1
        if fault == "ssh":
            ssh = [p for p in [pid] + descendants(pid) if harness.cmdline(p)[:1] == [b"ssh"]]
            for p in ssh:
                harness.kill_quietly(p, signal.SIGKILL)
        elif fault == "stop_ssh":
            ssh = [p for p in [pid] + descendants(pid) if harness.cmdline(p)[:1] == [b"ssh"]]
            for p in ssh:
                harness.kill_quietly(p, signal.SIGSTOP)
            time.sleep(1)
            for p in ssh:
                harness.kill_quietly(p, signal.SIGCONT)
            for p in running_with_arg(tag.encode()):
                harness.kill_quietly(p, signal.SIGKILL)
        elif fault == "remote":
            for p in running_with_arg(tag.encode()):
                harness.kill_quietly(p, signal.SIGKILL)
        else:
            live.signal(signal.SIGTERM if fault == "sigterm" else signal.SIGINT)
        if fault in ("sigterm", "sigint"):
            code = live.wait(20)
            ctx.check(code in (143, 130), f"{fault} during a remote command: exit {code}")
        else:
            try:
                m = live.expect(r"^CODE (.*)$", 60)
                ctx.note(f"remote command, {fault} killed: join gave {m.group(1)}")
                ctx.check(m.group(1) not in ("None", "0"), f"{fault}: join gave {m.group(1)}")
            except harness.ProbeFailure as e:
                ctx.fail(f"{fault}: {e}")
        ctx.end(live, 30, what=fault)
        gone = eventually(lambda: not running_with_arg(tag.encode()), 20)
        ctx.check(gone, f"{fault}: left on the host: {running_with_arg(tag.encode())}")
        for p in running_with_arg(tag.encode()):
            harness.kill_quietly(p)


@probe("remote", seeds=2, timeout=900, sshd=True)
def big_input_and_output_through_ssh(ctx):
    """20 MB through a remote `cat` (run and communicate), 5 MB of stderr: exact"""
    sshd = ctx.sshd()
    res = ctx.run(sshd.prelude() + r'''
let data = blob(20000000, 97);
let r = run(["cat"], #{ host: HOST, ssh: SSH, input: data });
print(`RUN ${r.stdout.len()} ${r.code}`);
let r2 = run(["sh", "-c", "head -c 5000000 /dev/zero | tr '\\0' e >&2"], #{ host: HOST, ssh: SSH, input: "" });
print(`ERR ${r2.stderr.len()}`);
let p = Process(#{ command: ["wc", "-c"], host: HOST, ssh: SSH, stdin: "pipe", stdout: "pipe" });
p.start();
let c = p.communicate(data, 300);
print(`WC ${c.stdout.strip()}`);
let pl = pipeline([["cat"], #{ command: ["wc", "-c"], host: HOST, ssh: SSH }], #{ input: data });
print(`PIPE ${pl.stdout.strip()}`);
''', timeout=600)
    ctx.inputs += 4
    ctx.load += 80
    for want in ("RUN 20000000 0", "ERR 5000000", "WC 20000000", "PIPE 20000000"):
        ctx.check(want in res.out, f"{want.split()[0]}: {res.out[-400:]} {res.err[-300:]}")


@probe("remote", seeds=2, timeout=600, sshd=True)
def unreachable_hosts(ctx):
    """A refused port, a host that does not resolve, a bad user: ConnectionError quickly, never a hang"""
    sshd = ctx.sshd()
    res = ctx.run(sshd.prelude() + r'''
let opts = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-F", "/dev/null"];
for h in [["127.0.0.1", ["-p", "1"]], ["nosuchhost.invalid", []], ["nobody-here@127.0.0.1", SSH.filter(|x| x != "BatchMode=yes") + ["-o", "BatchMode=yes"]]] {
    let t = monotonic();
    try { run(["true"], #{ host: h[0], ssh: h[1] + opts, input: "" }); print("RAN"); }
    catch (e) { print(`KIND ${e.kind} ${monotonic() - t < 30}`); }
}
let pool = Pool(#{ processes: 1, hosts: ["localhost", "127.0.0.1"], ssh: ["-p", "1"] + opts });
let got = [];
for i in 0..3 {
    try { got.push(pool.map(|x| x + 1, [1, 2, 3]).len()); } catch (e) { got.push(e.kind); }
}
print(`POOL ${got}`);
''', timeout=300)
    ctx.inputs += 4
    kinds = [l for l in res.out.splitlines() if l.startswith("KIND")]
    ctx.check(len(kinds) == 3 and all("ConnectionError true" in k for k in kinds), f"unreachable: {res.out} {res.err[-300:]}")
    ctx.check("POOL" in res.out and "3" in res.out.split("POOL")[1], f"a pool with one host down: {res.out[-300:]}")
    ctx.note(f"pool with a dead host: {[l for l in res.out.splitlines() if l.startswith('POOL')]}")


@probe("remote", seeds=3, timeout=900, sshd=True)
def remote_pool_workers_killed(ctx):
    """Pool on localhost + the ssh host; remote workers and their ssh clients killed at random: calls fail or succeed exactly"""
    sshd = ctx.sshd()
    link = marker_link(ctx, sshd)
    script = sshd.prelude(link) + r'''
fn work(x) { x * 7 - 1 }
let pool = Pool(#{ processes: 2, hosts: ["localhost", HOST], ssh: SSH, procscript: EXE });
print("READY");
let good = 0;
let failed = 0;
for round in 0..10 {
    print(`ROUND ${round}`);
    try {
        let r = pool.map(work, 0..200, #{ chunksize: 5 });
        let ok = r.len() == 200;
        for i in 0..200 { if r[i] != i * 7 - 1 { ok = false; } }
        if !ok { print("WRONG"); }
        good += 1;
    } catch (e) {
        if e.kind != "ProcessError" && e.kind != "ConnectionError" { print(`UNEXPECTED ${e.kind}: ${e.message}`); }
        failed += 1;
    }
}
print(`RESULT ${good} ${failed}`);
pool.close();
pool.join();
'''
    live = ctx.live(script)
    live.expect("^READY$", 120)
    for _ in range(10):
        try:
            live.expect(r"^ROUND (\d+)$", 120)
        except harness.ProbeFailure as e:
            ctx.fail(str(e))
            break
        if ctx.rng.random() < 0.6:
            time.sleep(ctx.rng.uniform(0, 0.2))
            workers = running_with_arg(os.path.basename(link).encode())
            sshs = [p for p in descendants(live.pid) if harness.cmdline(p)[:1] == [b"ssh"]]
            pool_ = [("w", w) for w in workers] + [("s", s) for s in sshs]
            if pool_:
                who, pid = ctx.rng.choice(pool_)
                harness.kill_quietly(pid, ctx.rng.choice([signal.SIGKILL, signal.SIGTERM]))
                ctx.faults += 1
    try:
        m = live.expect(r"^RESULT (\d+) (\d+)$", 300)
        ctx.check(int(m.group(1)) + int(m.group(2)) == 10, m.group(0))
        # at most one fault per round: most rounds must succeed, with replaced workers
        ctx.check(int(m.group(1)) >= 3, f"only {m.group(1)} of 10 rounds succeeded")
        ctx.note(f"remote pool: {m.group(1)} rounds succeeded, {m.group(2)} failed with a worker killed")
    except harness.ProbeFailure as e:
        ctx.fail(str(e))
    out = live.out
    ctx.check("WRONG" not in out, "wrong results from a remote pool")
    ctx.check("UNEXPECTED" not in out, out[out.find("UNEXPECTED"):][:300])
    res = ctx.end(live, 120)
    ctx.expect_code(res, 0)
    ctx.load += 2000
    gone = eventually(lambda: not running_with_arg(os.path.basename(link).encode()), 30)
    ctx.check(gone, f"remote workers left: {running_with_arg(os.path.basename(link).encode())}")


@probe("remote", seeds=3, timeout=900, sshd=True)
def sigterm_and_sigkill_with_remote_workers(ctx):
    """SIGTERM, SIGINT or SIGKILL of the script while remote workers run tasks: nothing left on the host"""
    sshd = ctx.sshd()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL):
        link = marker_link(ctx, sshd)
        script = sshd.prelude(link) + r'''
let pool = Pool(#{ processes: 2, hosts: [HOST], ssh: SSH, procscript: EXE });
let r = pool.map_async(|x| { sleep(100); x }, [1, 2]);
print("BLOCKING");
r.get();
'''
        live = ctx.live(script)
        live.expect("^BLOCKING$", 120)
        eventually(lambda: len(running_with_arg(os.path.basename(link).encode())) >= 2, 30)
        time.sleep(ctx.rng.uniform(0.2, 1.0))
        live.signal(sig)
        ctx.faults += 1
        code = live.wait(20)
        ctx.end(live, 10, allow_timeout=(sig == signal.SIGKILL), what=sig.name)
        if sig != signal.SIGKILL:
            ctx.check(code == 128 + sig.value, f"{sig.name} with remote workers: exit {code}")
        gone = eventually(lambda: not running_with_arg(os.path.basename(link).encode()), 30)
        ctx.check(gone, f"{sig.name}: remote workers left on the host: {running_with_arg(os.path.basename(link).encode())}")
        for p in running_with_arg(os.path.basename(link).encode()):
            harness.kill_quietly(p)


@probe("remote", seeds=3, timeout=900, sshd=True)
def worker_fed_mutated_conversations(ctx):
    """`procscript worker` fed bit flips, truncations and splices of a real pool conversation"""
    sshd = ctx.sshd()
    cap = os.path.join(ctx.dir, "conv.bin")
    wrapper = os.path.join(ctx.dir, "tee-worker")
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\ntee {cap} | {harness.binary()} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    res = ctx.run(sshd.prelude(wrapper) + r'''
fn f(x) { [x, `${x}`, blob(x % 5), #{ k: x }] }
let pool = Pool(#{ processes: 1, hosts: [HOST], ssh: SSH, procscript: EXE, initializer: || 1 });
print(pool.map(f, 0..30, #{ chunksize: 4 }).len());
print(pool.apply(|a, b| a + b, [1, 2]));
try { pool.apply(|| throw "x"); } catch (e) { print(e.kind); }
pool.close();
pool.join();
''', timeout=300)
    ctx.check("30" in res.out, f"capture run: {res.out} {res.err[-300:]}")
    if not os.path.exists(cap) or os.path.getsize(cap) < 16:
        ctx.fail("no conversation captured")
        return
    data = open(cap, "rb").read()
    ctx.note(f"captured conversation: {len(data)} bytes")
    rng = ctx.rng
    for i in range(80):
        d = bytearray(data)
        k = rng.random()
        if k < 0.4:
            for _ in range(rng.randint(1, 8)):
                j = rng.randrange(len(d))
                d[j] ^= 1 << rng.randrange(8)
        elif k < 0.6:
            d = d[: rng.randrange(len(d))]
        elif k < 0.8:
            a, b = sorted(rng.randrange(len(d)) for _ in range(2))
            d = d[:a] + d[b:] + d[a:b]
        else:
            j = rng.randrange(len(d) - 8)
            d[j:j + 8] = rng.choice([b"\xff" * 8, (2 ** 40).to_bytes(8, "little"), b"\x00" * 8])
        ctx.inputs += 1
        r = ctx.run_argv([harness.binary(), "worker"], stdin=bytes(d), timeout=60, what=f"worker mutant {i}")
        ctx.check(r.code is not None and r.code not in (101, 134, 139), f"worker mutant {i}: exit {r.code}")
