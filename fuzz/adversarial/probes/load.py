"""Load, counted exactly: many clients of a forking server and of a select server, many
messages through queues, pipes, managers and pools, many processes at once and in a row,
many printed lines, a wide wait(), forks past the huge-page text remap. Afterwards: no
zombie, descriptors back to where they were, nothing left running.
"""

import os
import random
import socket
import threading
import time

from harness import probe, zombies_under, fd_count, descendants, children, eventually


def fd_and_zombies(ctx, live, what, base_fds=None):
    # A handler that has just answered its last client may be between its exit and the
    # parent's reaping of it (microseconds): a zombie counts only if it stays one.
    z = eventually(lambda: not zombies_under(live.pid), 2) or zombies_under(live.pid)
    z = [] if z is True else z
    ctx.check(not z, f"{what}: zombies {z}")
    n = fd_count(live.pid)
    if base_fds is not None:
        ctx.check(n == base_fds, f"{what}: {n} descriptors open, {base_fds} at the start: "
                                 f"{sorted(os.listdir(f'/proc/{live.pid}/fd'), key=int)}")
    return n


SERVER = r'''
fn handle(conn) {
    loop {
        let head = conn.recv(8);
        if head.len() == 0 { break; }
        let line = conn.readline();
        conn.sendall(line.upper());
    }
}
let s = create_server("127.0.0.1", 0, #{ backlog: 512 });
print(`PORT ${s.getsockname()[1]}`);
let served = 0;
while served < 301 {
    let ready = select([s], [], [], ());
    let conn = s.accept();
    let p = spawn handle(conn);
    conn.close();
    served += 1;
    if served == 1 { print("FIRST"); }
}
print(`SERVED ${served}`);
print("CHECK");
input();
'''


def client(port, rounds, rng, errors, done):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as c:
            f = c.makefile("rb")
            for r in range(rounds):
                n = rng.choice([1, 10, 100, 5000, 60000])
                body = "".join(rng.choice("abcdefghij") for _ in range(min(n, 50))) * (n // 50 + 1)
                body = body[:n]
                c.sendall(b"HEADER01" + body.encode() + b"\n")
                got = f.readline()
                if got != body.upper().encode() + b"\n":
                    errors.append(f"round {r}: sent {len(body)} got {len(got)}")
                    return
        done.append(1)
    except OSError as e:
        errors.append(f"{type(e).__name__}: {e}")


@probe("load", seeds=3, timeout=600)
def forking_server_many_clients(ctx):
    """300 concurrent clients x 8 round trips (up to 60 KB) against a select+fork server"""
    live = ctx.live(SERVER)
    port = int(live.expect(r"^PORT (\d+)$", 60).group(1))
    errors, done = [], []
    rng = random.Random(ctx.seed)
    # warm-up client, then the descriptor baseline
    client(port, 1, rng, errors, done)
    live.expect("^FIRST$", 30)
    time.sleep(0.5)
    base = fd_count(live.pid)
    threads = [threading.Thread(target=client, args=(port, 8, random.Random(i * 7 + ctx.seed), errors, done))
               for i in range(300)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    ctx.check(not errors, f"{len(errors)} clients failed: {errors[:5]}")
    ctx.check(len(done) == 301, f"{len(done)} of 301 clients done")
    ctx.load += 300 * 8
    # handlers end when their client leaves: wait for them to be reaped
    end = time.monotonic() + 60
    while time.monotonic() < end and children(live.pid):
        time.sleep(0.1)
    fd_and_zombies(ctx, live, "after 300 clients", base)
    m = live.expect(r"^SERVED (\d+)$", 60)
    ctx.check(m.group(1) == "301", f"served {m.group(1)}, wanted 301")
    live.expect("^CHECK$", 30)
    live.send("\n")
    res = ctx.end(live, 60)
    ctx.expect_code(res, 0)
    ctx.note("301 clients of a forking server, 2,401 round trips up to 60 KB")


@probe("load", seeds=3, timeout=600)
def select_server_in_one_process(ctx):
    """200 clients served by one process with select/setblocking/readline: every reply exact"""
    script = r'''
let s = create_server("127.0.0.1", 0, #{ backlog: 512 });
print(`PORT ${s.getsockname()[1]}`);
let conns = [];
let served = 0;
let closed = 0;
while closed < 200 {
    let ready = select([s] + conns, [], [], 60);
    if ready[0].len() == 0 { print("IDLE"); break; }
    for r in ready[0] {
        if r == s {
            let c = s.accept();
            conns.push(c);
        } else {
            let line = r.readline();
            if line == "" {
                r.close();
                conns = conns.filter(|x| x != r);
                closed += 1;
            } else {
                r.sendall(line.upper());
                served += 1;
            }
        }
    }
}
print(`SERVED ${served} ${closed}`);
'''
    live = ctx.live(script)
    port = int(live.expect(r"^PORT (\d+)$", 60).group(1))
    errors, done = [], []

    def cl(i):
        rng = random.Random(i + 1000 * ctx.seed)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=120) as c:
                f = c.makefile("rb")
                for r in range(10):
                    body = "".join(rng.choice("xyz") for _ in range(rng.choice([1, 30, 3000])))
                    c.sendall(body.encode() + b"\n")
                    if f.readline() != body.upper().encode() + b"\n":
                        errors.append(i)
                        return
            done.append(i)
        except OSError as e:
            errors.append(f"{i}: {e}")
    threads = [threading.Thread(target=cl, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    ctx.check(not errors and len(done) == 200, f"{len(done)} clients done, errors {errors[:5]}")
    m = live.expect(r"^SERVED (\d+) (\d+)$", 120)
    ctx.check(m.group(1) == "2000" and m.group(2) == "200", f"select server: {m.group(0)}")
    res = ctx.end(live, 60)
    ctx.expect_code(res, 0)
    ctx.load += 2000


@probe("load", seeds=3, timeout=600)
def queue_many_messages(ctx):
    """4 producers x 25,000 values, 4 consumers, bounded and unbounded: each value exactly once"""
    for maxsize in (0, 16):
        script = f'''
const N = 25000;
let q = Queue({maxsize});
let seen = Array(4 * N);
let sums = Value(0);
let cs = [];
for c in 0..4 {{
    cs.push(spawn {{
        loop {{
            let v = q.get();
            if v == () {{ break; }}
            seen.add(v, 1);
            sums.add(v);
        }}
    }});
}}
let ps = [];
for p in 0..4 {{ ps.push(spawn {{ for i in 0..N {{ q.put(p * N + i); }} }}); }}
for p in ps {{ p.join(); }}
for c in cs {{ q.put(()); }}
for c in cs {{ c.join(); }}
let zero = 0;
let dup = 0;
for x in seen.to_array() {{ if x == 0 {{ zero += 1; }} if x > 1 {{ dup += 1; }} }}
print(`RESULT ${{zero}} ${{dup}} ${{sums.value}} ${{q.empty()}}`);
'''
        res = ctx.run(script, timeout=600)
        n = 100000
        want = f"RESULT 0 0 {n * (n - 1) // 2} true"
        ctx.check(want in res.out, f"maxsize={maxsize}: {res.out[-300:]} {res.err[-300:]}")
        ctx.expect_code(res, 0)
        ctx.load += n
    ctx.note("Queue: 2 x 100,000 values, 4 producers, 4 consumers")


@probe("load", seeds=3, timeout=600)
def pipe_many_messages_in_order(ctx):
    """100,000 messages one way and 20,000 echoes both ways through a Pipe: exact and in order"""
    script = r'''
let e = Pipe();
let p = spawn { for i in 0..100000 { e[1].send(i); } e[1].send("end"); };
let ok = 0;
for i in 0..100000 { if e[0].recv() == i { ok += 1; } }
print(`ONEWAY ${ok} ${e[0].recv()}`);
p.join();
let f = Pipe();
let echo = spawn { loop { let v = f[1].recv(); if v == () { break; } f[1].send([v, `${v}`]); } };
let good = 0;
for i in 0..20000 { f[0].send(i); let r = f[0].recv(); if r[0] == i && r[1] == `${i}` { good += 1; } }
f[0].send(());
echo.join();
print(`ECHO ${good}`);
'''
    res = ctx.run(script, timeout=600)
    ctx.check("ONEWAY 100000 end" in res.out and "ECHO 20000" in res.out, f"{res.out[-300:]} {res.err[-300:]}")
    ctx.expect_code(res, 0)
    ctx.load += 140000


@probe("load", seeds=3, timeout=900)
def pool_many_tasks(ctx):
    """Pool(4): map of 100,000 items, imap_unordered of 20,000, 2,000 apply_async with callbacks counted exactly"""
    script = r'''
let pool = Pool(4);
let r = pool.map(|x| x * 2, 0..100000);
let ok = r.len() == 100000;
let s = 0;
for i in 0..100000 { if r[i] != i * 2 { ok = false; } }
print(`MAP ${ok}`);
let total = 0;
let count = 0;
for v in pool.imap_unordered(|x| x + 1, 0..20000, #{ chunksize: 37 }) { total += v; count += 1; }
print(`IMAP ${count} ${total}`);
let cb = 0;
let rs = [];
for i in 0..2000 { rs.push(pool.apply_async(|x| x * x, [i], #{}, #{ callback: |v| cb += 1 })); }
let sq = 0;
for x in rs { sq += x.get(); }
print(`APPLY ${sq} ${cb}`);
let pairs = [];
for i in 0..5000 { pairs.push([i, 1]); }
let sm = pool.starmap(|a, b| a - b, pairs);
print(`STAR ${sm.len()} ${sm[4999]}`);
pool.close();
pool.join();
'''
    res = ctx.run(script, timeout=900)
    want_sq = sum(i * i for i in range(2000))
    ctx.check("MAP true" in res.out, f"pool map: {res.out[-300:]} {res.err[-300:]}")
    ctx.check(f"IMAP 20000 {sum(range(1, 20001))}" in res.out, f"pool imap: {res.out[-300:]}")
    ctx.check(f"APPLY {want_sq} 2000" in res.out, f"pool apply/callbacks: {res.out[-300:]}")
    ctx.check("STAR 5000 4998" in res.out, f"pool starmap: {res.out[-300:]}")
    ctx.expect_code(res, 0)
    ctx.load += 127000


@probe("load", seeds=3, timeout=600)
def manager_many_updates(ctx):
    """4 processes x 1,500 locked increments of one manager dict entry, and list appends: exact"""
    script = r'''
let m = Manager();
let d = m.dict(#{ n: 0 });
let l = m.list();
let lock = m.Lock();
let ns = m.Namespace();
ns.hits = 0;
let ps = [];
for w in 0..4 {
    ps.push(spawn {
        for i in 0..1500 {
            with lock { d["n"] = d["n"] + 1; ns.hits = ns.hits + 1; }
            l.append(w * 1500 + i);
        }
    });
}
for p in ps { p.join(); }
let all = l.copy();
all.sort();
let ok = all.len() == 6000;
for i in 0..all.len() { if all[i] != i { ok = false; } }
print(`RESULT ${d["n"]} ${ns.hits} ${ok}`);
'''
    res = ctx.run(script, timeout=600)
    ctx.check("RESULT 6000 6000 true" in res.out, f"manager: {res.out[-300:]} {res.err[-300:]}")
    ctx.expect_code(res, 0)
    ctx.load += 18000


@probe("load", seeds=3, timeout=600)
def many_processes_and_wait(ctx):
    """1,000 children alive at once ended in random order, collected with wait(objects); then 3,000 in a row"""
    script = r'''
let start = Event();
let ps = [];
for i in 0..1000 { ps.push(spawn { start.wait(); sleep(0.001 * (i % 13)); exit(i % 200); }); }
let index = #{};
for i in 0..1000 { index[`${ps[i].pid}`] = i; }
print(`ALIVE ${active_children().len()}`);
input();
start.set();
let left = ps;
let codes = 0;
let rounds = 0;
while left.len() > 0 {
    let ready = wait(left, 30);
    rounds += 1;
    if ready.len() == 0 { print("STUCK"); break; }
    // (handles have no `==`: match them by pid)
    let pids = ready.map(|p| p.pid);
    for p in ready { if p.exitcode == index[`${p.pid}`] % 200 { codes += 1; } }
    left = left.filter(|p| !pids.contains(p.pid));
}
print(`CODES ${codes} ${active_children().len()}`);
input();
for i in 0..3000 { let p = spawn 0; if p.join() != 0 { print("BAD"); } }
print("ROW");
input();
'''
    live = ctx.live(script)
    m = live.expect(r"^ALIVE (\d+)$", 300)
    ctx.check(m.group(1) == "1000", f"alive at once: {m.group(1)}")
    base = fd_count(live.pid)
    live.send("\n")
    try:
        m = live.expect(r"^CODES (\d+) (\d+)$", 300)
        ctx.check(m.group(1) == "1000" and m.group(2) == "0", f"wait(objects): {m.group(0)}")
    except Exception as e:  # noqa: BLE001
        ctx.fail(f"wait(objects): {e}")
    fd_and_zombies(ctx, live, "after 1,000 children")
    n1 = fd_count(live.pid)
    live.send("\n")
    live.expect("^ROW$", 300)
    fd_and_zombies(ctx, live, "after 3,000 in a row", n1)
    live.send("\n")
    res = ctx.end(live, 60)
    ctx.expect_code(res, 0)
    ctx.check("STUCK" not in res.out and "BAD" not in res.out, res.out[-300:])
    ctx.load += 4000


@probe("load", seeds=3, timeout=600)
def shared_counters(ctx):
    """8 processes x 20,000 Value.add, Array.add and locked read-modify-write: exact"""
    script = r'''
let v = Value(0);
let a = Array(4);
let w = Value("i", 0);
let ps = [];
for k in 0..8 {
    ps.push(spawn {
        for i in 0..20000 {
            v.add(1);
            a.add(i % 4, 1);
            if i % 10 == 0 { with w.get_lock() { w.value = w.value + 1; } }
        }
    });
}
for p in ps { p.join(); }
print(`RESULT ${v.value} ${a.to_array()} ${w.value}`);
'''
    res = ctx.run(script, timeout=600)
    ctx.check("RESULT 160000 [40000, 40000, 40000, 40000] 16000" in res.out, f"{res.out[-300:]} {res.err[-300:]}")
    ctx.expect_code(res, 0)
    ctx.load += 336000


@probe("load", seeds=3, timeout=600)
def huge_page_remap_after_many_forks(ctx):
    """60 forks (past the 16 after which the text is remapped on huge pages), each running real work"""
    script = r'''
fn fib(n) { if n < 2 { n } else { fib(n - 1) + fib(n - 2) } }
let q = Queue();
let ps = [];
for i in 0..60 {
    ps.push(spawn {
        let s = "";
        for j in 0..200 { s += `${j}`; }
        let pool = if i % 20 == 0 { Pool(2) } else { () };
        let extra = if pool != () { pool.map(|x| x * x, 0..50).len() } else { 50 };
        q.put([i, fib(15), s.len(), extra]);
    });
}
let good = 0;
for i in 0..60 {
    let r = q.get(120);
    if r[1] == 610 && r[2] == 490 && r[3] == 50 { good += 1; }
}
for p in ps { p.join(); }
let later = spawn { exit(fib(10)); };
print(`RESULT ${good} ${later.join()}`);
'''
    res = ctx.run(script, timeout=600)
    ctx.check("RESULT 60 55" in res.out, f"{res.out[-300:]} {res.err[-300:]}")
    ctx.expect_code(res, 0)
    ctx.load += 60


@probe("load", seeds=1, timeout=600)
def traced_run_with_many_processes(ctx):
    """--trace/--timeline of a run with 400 processes, then `report`: every process listed"""
    script = r'''
let ps = [];
for i in 0..200 { ps.push(spawn { let g = spawn exit(3); g.join(); }); }
for p in ps { p.join(); }
'''
    trace = os.path.join(ctx.dir, "t.yaml")
    svg = os.path.join(ctx.dir, "t.svg")
    res = ctx.run(script, flags=["--trace", trace, "--timeline", svg], timeout=600)
    ctx.expect_code(res, 0)
    rep = ctx.run_argv([__import__("harness").binary(), "report", trace], timeout=120, what="report")
    ctx.expect_code(rep, 0, "report")
    ctx.check("401" in rep.out or rep.out.count("\n") >= 401, f"report of 401 processes: {rep.out[:500]}")
    ctx.check(os.path.getsize(svg) > 1000, "timeline empty")
    ctx.load += 401
