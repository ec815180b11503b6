"""Processes killed, terminated or stopped at random moments: lock holders, queue producers
and consumers, pipe senders, pool workers (busy and idle), the manager process, line writers,
children in the middle of fork storms, and the main process itself. Counts are checked
exactly: a killed process may cost at most what the documentation says it may (the message
it was reading or writing), never a duplicate, a wrong value, a hang or a leaked place.
"""

import os
import signal
import time

import harness

from harness import probe, descendants, eventually, state, zombies_under, alive, in_session

KILL_SIGS = [signal.SIGKILL, signal.SIGKILL, signal.SIGTERM, "STOP"]


def hit(ctx, pid, how):
    """Delivers one fault: a signal, or a stop of 0.1-0.6 s followed by SIGCONT."""
    ctx.faults += 1
    try:
        if how == "STOP":
            os.kill(pid, signal.SIGSTOP)
            time.sleep(ctx.rng.uniform(0.1, 0.6))
            os.kill(pid, signal.SIGCONT)
        else:
            os.kill(pid, how)
    except OSError:
        pass


@probe("kills", seeds=5, timeout=300)
def lock_holders_killed(ctx):
    """6 processes hammer one Lock/RLock/Condition lock; random ones are killed inside and outside it"""
    for kind in ("Lock()", "RLock()", "Condition()"):
        script = f'''
let l = {kind};
let total = Value(0);
let owner = Value(0);
let broken = Value(0);
let dead_seen = Value(0);
let done = Array(6);
let stop = Event();
let ps = [];
for w in 0..6 {{
    ps.push(spawn {{
        let n = 0;
        while !stop.is_set() {{
            try {{
                l.acquire();
            }} catch (e) {{
                if e.kind != "ProcessError" {{ throw e; }}
                dead_seen.add(1);
                continue;
            }}
            owner.value = getpid();
            total.value = total.value + 1;
            n += 1;
            done[w] = n;
            if owner.value != getpid() {{ broken.add(1); }}
            l.release();
        }}
    }});
}}
print("PIDS " + ps.map(|p| `${{p.pid}}`).reduce(|a, b| a + " " + b, ""));
input();
stop.set();
let codes = [];
for p in ps {{ codes.push(p.join(60)); }}
let sum = 0;
for x in done.to_array() {{ sum += x; }}
print(`RESULT ${{total.value}} ${{sum}} ${{broken.value}} ${{dead_seen.value}} ${{codes}}`);
let ok = l.acquire(5);
print(`FREE ${{ok}}`);
'''
        live = ctx.live(script)
        pids = [int(x) for x in live.expect(r"^PIDS (.*)$", 60).group(1).split()]
        killed = 0
        end = time.monotonic() + ctx.rng.uniform(1.5, 3.0)
        victims = list(pids)
        ctx.rng.shuffle(victims)
        log = []
        while time.monotonic() < end and len(victims) > 2:
            time.sleep(ctx.rng.uniform(0.05, 0.4))
            v = victims.pop()
            how = ctx.rng.choice([signal.SIGKILL, signal.SIGKILL, signal.SIGTERM])
            log.append(f"{time.monotonic():.3f} {v} {how.name}")
            hit(ctx, v, how)
            killed += 1
        # stop one survivor for a while: the others must wait for it, not break the lock
        log.append(f"{time.monotonic():.3f} {victims[0]} STOP/CONT")
        hit(ctx, victims[0], "STOP")
        live.send("\n")
        try:
            m = live.expect(r"^RESULT (\d+) (\d+) (\d+) (\d+) (.*)$", 90)
        except Exception as e:  # noqa: BLE001
            ctx.fail(f"{kind}: {e}")
            ctx.end(live, 5, allow_timeout=True)
            continue
        total, summed, broken, dead_seen = (int(m.group(i)) for i in range(1, 5))
        if "None" in m.group(5):
            stuck = [p for p in pids if alive(p)]
            ctx.fail(f"{kind}: a locker never ended ({m.group(5)}) after {log}; pids {pids}; its state:\n"
                     + "\n".join(harness.diagnose(p) for p in stuck))
            for p in stuck:
                harness.kill_quietly(p)
        ctx.load += total
        ctx.check(broken == 0, f"{kind}: mutual exclusion broken {broken} times")
        # a holder killed between its increment and its record adds one unrecorded increment
        ctx.check(summed <= total <= summed + killed,
                  f"{kind}: total {total}, recorded {summed}, {killed} killed")
        free = live.expect(r"^FREE (.*)$", 30).group(1)
        ctx.check(free == "true", f"{kind}: the lock could not be taken at the end ({free})")
        res = ctx.end(live, 30, what=kind)
        ctx.expect_code(res, 0, kind)
    ctx.note("6 lockers x 3 lock kinds, holders killed at random")


QUEUE_SCRIPT = r'''
const P = 3;
const C = 4;
const N = NITEMS;
let q = Queue(MAXSIZE);
let seen = Array(P * N);
let bad = Value(0);
let put_done = Array(P);
let finished = Event();
let producers = [];
let consumers = [];
for c in 0..C {
    consumers.push(spawn {
        loop {
            let item = ();
            try { item = q.get(0.2); } catch (e) {
                if e.kind == "Empty" { if finished.is_set() { break; } continue; }
                throw e;
            }
            let id = item[0];
            let body = item[1];
            // every value must arrive exactly as it was put
            if body.len() != item[2] || (body.len() > 0 && body[body.len() - 1] != id % 256) { bad.add(1); }
            seen.add(id, 1);
        }
    });
}
for p in 0..P {
    producers.push(spawn {
        for i in 0..N {
            let id = p * N + i;
            let size = if i % 7 == 0 { 300000 + (i * 7919) % 900000 } else { i % 50 };
            q.put([id, blob(size, id % 256), size]);
            put_done[p] = i + 1;
        }
    });
}
print("PRODUCERS " + producers.map(|p| `${p.pid}`).reduce(|a, b| a + " " + b, ""));
print("CONSUMERS " + consumers.map(|p| `${p.pid}`).reduce(|a, b| a + " " + b, ""));
let pc = [];
for p in producers { pc.push(p.join(120)); }
// survivors (or a replacement) drain the queue
let extra = spawn {
    loop {
        let item = ();
        try { item = q.get(1.0); } catch (e) { if e.kind == "Empty" { break; } throw e; }
        let body = item[1];
        if body.len() != item[2] { bad.add(1); }
        seen.add(item[0], 1);
    }
};
extra.join(120);
finished.set();
let cc = [];
for c in consumers { cc.push(c.join(60)); }
let zero = 0;
let dup = 0;
let ghost = 0;
for p in 0..P {
    for i in 0..N {
        let s = seen[p * N + i];
        if i < put_done[p] {
            if s == 0 { zero += 1; }
            if s > 1 { dup += 1; }
        } else if i > put_done[p] && s > 0 {
            ghost += 1;
        }
    }
}
print(`RESULT zero=${zero} dup=${dup} ghost=${ghost} bad=${bad.value} pc=${pc} cc=${cc}`);
if MAXSIZE > 0 {
    let room = 0;
    for i in 0..MAXSIZE { try { q.put_nowait(i); room += 1; } catch (e) { } }
    let over = "no";
    try { q.put_nowait(99); } catch (e) { over = e.kind; }
    print(`PLACES ${room} ${over}`);
}
'''


@probe("kills", seeds=5, timeout=400)
def queue_producers_and_consumers_killed(ctx):
    """3 producers, 4 consumers, small and 1 MB values; producers and consumers killed or stopped at random"""
    for maxsize in (0, 4):
        n = 300
        script = QUEUE_SCRIPT.replace("NITEMS", str(n)).replace("MAXSIZE", str(maxsize))
        live = ctx.live(script)
        prods = [int(x) for x in live.expect(r"^PRODUCERS (.*)$", 60).group(1).split()]
        cons = [int(x) for x in live.expect(r"^CONSUMERS (.*)$", 60).group(1).split()]
        killed_c = killed_p = 0
        cands = [("c", p) for p in cons[:-1]] + [("p", p) for p in prods[:-1]]
        ctx.rng.shuffle(cands)
        for who, pid in cands[:ctx.rng.randint(2, len(cands))]:
            time.sleep(ctx.rng.uniform(0.02, 0.6))
            how = ctx.rng.choice(KILL_SIGS)
            hit(ctx, pid, how)
            if how != "STOP":
                if who == "c":
                    killed_c += 1
                else:
                    killed_p += 1
        try:
            m = live.expect(r"^RESULT zero=(\d+) dup=(\d+) ghost=(\d+) bad=(\d+) pc=(.*) cc=(.*)$", 300)
        except Exception as e:  # noqa: BLE001
            ctx.fail(f"maxsize={maxsize}: {e}")
            ctx.end(live, 5, allow_timeout=True)
            continue
        zero, dup, ghost, bad = (int(m.group(i)) for i in range(1, 5))
        ctx.load += 3 * n
        ctx.note(f"maxsize={maxsize}: {killed_c} consumers, {killed_p} producers killed: {m.group(0)}")
        ctx.check(dup == 0, f"maxsize={maxsize}: {dup} values delivered twice")
        ctx.check(bad == 0, f"maxsize={maxsize}: {bad} values changed in transit")
        ctx.check(ghost == 0, f"maxsize={maxsize}: {ghost} values seen that were never put")
        # each killed consumer may lose the value it was reading; each killed producer the one it wrote
        ctx.check(zero <= killed_c + killed_p,
                  f"maxsize={maxsize}: {zero} values lost with {killed_c} consumers and {killed_p} producers killed ({m.group(0)})")
        if maxsize:
            pm = live.expect(r"^PLACES (\d+) (\S+)$", 30)
            ctx.check(pm.group(1) == str(maxsize) and pm.group(2) == "Full",
                      f"bounded queue places after the faults: {pm.group(0)}")
        res = ctx.end(live, 60, what=f"queue maxsize={maxsize}")
        ctx.expect_code(res, 0, f"queue maxsize={maxsize}")
    ctx.note("Queue: 900 values per run (1 in 7 of 0.3-1.2 MB), producers and consumers killed/stopped")


@probe("kills", seeds=5, timeout=300)
def pipe_senders_killed_mid_message(ctx):
    """4 senders on one Pipe end (up to 2 MB messages), 1-2 killed: each message whole or a clear OSError"""
    script = r'''
let ends = Pipe();
let ps = [];
for w in 0..4 {
    ps.push(spawn {
        for i in 0..40 {
            let size = (i * 104729 + w * 7) % 2000000;
            ends[0].send([w, i, size, blob(size, (w * 40 + i) % 256)]);
        }
    });
}
print("PIDS " + ps.map(|p| `${p.pid}`).reduce(|a, b| a + " " + b, ""));
let got = 0;
let bad = 0;
let broken = "";
let alive = true;
while alive {
    try {
        let m = ends[1].recv(5);
        let b = m[3];
        if b.len() != m[2] || (b.len() > 0 && (b[0] != (m[0] * 40 + m[1]) % 256 || b[b.len() - 1] != (m[0] * 40 + m[1]) % 256)) { bad += 1; }
        got += 1;
        if got == 160 { alive = false; }
    } catch (e) {
        if e.kind == "TimeoutError" { alive = false; } else { broken = `${e.kind}: ${e.message}`; alive = false; }
    }
}
for p in ps { p.join(30); }
print(`RESULT got=${got} bad=${bad} broken=${broken}`);
'''
    live = ctx.live(script)
    pids = [int(x) for x in live.expect(r"^PIDS (.*)$", 60).group(1).split()]
    k = ctx.rng.randint(0, 2)
    for pid in ctx.rng.sample(pids, k):
        time.sleep(ctx.rng.uniform(0.05, 1.0))
        hit(ctx, pid, signal.SIGKILL)
    m = live.expect(r"^RESULT got=(\d+) bad=(\d+) broken=(.*)$", 200)
    got, bad, broken = int(m.group(1)), int(m.group(2)), m.group(3)
    ctx.load += got
    ctx.check(bad == 0, f"{bad} Pipe messages arrived changed")
    if k == 0:
        ctx.check(got == 160 and not broken, f"no kill, yet got {got} of 160 ({broken})")
    elif broken:
        ctx.check(broken.startswith("OSError") and "broken" in broken,
                  f"a killed sender gave {broken!r}, wanted OSError 'the Pipe is broken'")
    res = ctx.end(live, 60)
    ctx.expect_code(res, 0)


POOL_SCRIPT = r'''
fn work(x) { if x % 5 == 0 { sleep(0.05); } x * 3 + 1 }
let callbacks = Value(0);
let errors = Value(0);
let pool = Pool(#{ processes: 4, maxtasksperchild: MAXT });
print("READY");
let rounds = 0;
let good = 0;
let failed = 0;
while rounds < 12 {
    rounds += 1;
    print("PIDS " + pool.pids.reduce(|a, b| `${a} ${b}`, ""));
    try {
        let n = 40 + rounds * 7;
        let r = pool.map(work, 0..n, #{ chunksize: 1 + rounds % 3 });
        let ok = r.len() == n;
        for i in 0..n { if r[i] != i * 3 + 1 { ok = false; } }
        if !ok { print(`WRONG ${r}`); }
        let it = [];
        for v in pool.imap_unordered(work, 0..20) { it.push(v); }
        it.sort();
        for i in 0..20 { if it[i] != i * 3 + 1 { print(`WRONG imap ${it}`); break; } }
        let asyncs = [];
        for i in 0..10 {
            asyncs.push(pool.apply_async(work, [i], #{}, #{ callback: |v| callbacks.add(1), error_callback: |e| errors.add(1) }));
        }
        for i in 0..10 { if asyncs[i].get(60) != i * 3 + 1 { print("WRONG apply"); } }
        good += 1;
    } catch (e) {
        if e.kind != "ProcessError" { print(`UNEXPECTED ${e.kind}: ${e.message}`); }
        failed += 1;
    }
}
print(`RESULT good=${good} failed=${failed} size=${pool.pids.len()}`);
pool.close();
pool.join();
print(`CALLBACKS ${callbacks.value} ${errors.value} ${good}`);
'''


@probe("kills", seeds=5, timeout=400)
def pool_workers_killed_busy_and_idle(ctx):
    """Pool(4) with and without maxtasksperchild: workers SIGKILLed/SIGTERMed/stopped at random across 12 rounds"""
    for maxt in ("()", "3"):
        script = POOL_SCRIPT.replace("MAXT", maxt).replace("maxtasksperchild: ()", "maxtasksperchild: ()")
        if maxt == "()":
            script = script.replace(", maxtasksperchild: ()", "")
        live = ctx.live(script)
        live.expect("^READY$", 60)
        faults = 0
        t_end = time.monotonic() + 120
        while time.monotonic() < t_end:
            try:
                m = live.expect(r"^(PIDS|RESULT)(.*)$", 120)
            except Exception as e:  # noqa: BLE001
                ctx.fail(f"maxtasksperchild={maxt}: {e}")
                break
            if m.group(1) == "RESULT":
                break
            pids = [int(x) for x in m.group(2).split()]
            if pids and ctx.rng.random() < 0.7:
                time.sleep(ctx.rng.uniform(0.0, 0.15))
                hit(ctx, ctx.rng.choice(pids), ctx.rng.choice(KILL_SIGS))
                faults += 1
        out = live.out
        ctx.check("WRONG" not in out, f"maxtasksperchild={maxt}: wrong results: {out[out.find('WRONG'):][:300]}")
        ctx.check("UNEXPECTED" not in out, f"maxtasksperchild={maxt}: {out[out.find('UNEXPECTED'):][:300]}")
        try:
            m = live.expect(r"^CALLBACKS (\d+) (\d+) (\d+)$", 120)
            cb, errs, good = int(m.group(1)), int(m.group(2)), int(m.group(3))
            # callbacks of completed rounds run exactly once each; failed rounds may have run some
            ctx.check(cb >= 10 * good and cb <= 10 * 12, f"callbacks {cb} for {good} good rounds")
        except Exception as e:  # noqa: BLE001
            ctx.fail(f"maxtasksperchild={maxt}: {e}")
        rm = [l for l in out.splitlines() if l.startswith("RESULT")]
        if rm:
            ctx.check("size=4" in rm[0], f"pool size after the faults: {rm[0]}")
        res = ctx.end(live, 60, what=f"pool maxtasksperchild={maxt}")
        ctx.expect_code(res, 0, f"pool maxtasksperchild={maxt}")
        ctx.load += 12 * 100
    ctx.note("Pool(4): 12 rounds of map+imap_unordered+apply_async with callbacks per run, workers hit at random")


@probe("kills", seeds=5, timeout=300)
def manager_killed_or_stopped(ctx):
    """The manager process SIGKILLed, SIGTERMed or stopped while 3 children use its proxies"""
    script = r'''
let m = Manager();
let d = m.dict();
let l = m.list();
let lock = m.Lock();
let q = m.Queue();
print(`MANAGER ${m.pid}`);
let ps = [];
for w in 0..3 {
    ps.push(spawn {
        let kinds = #{};
        for i in 0..400 {
            try {
                with lock { d[`${w}-${i}`] = i; }
                l.append(i);
                q.put(i);
                q.get(5);
            } catch (e) {
                let k = `${e.kind}`;
                kinds[k] = 1;
                if k == "()" || k == "None" { print(`NOKIND ${e}`); }
            }
        }
        print(`WORKER ${w} ${kinds.keys()}`);
    });
}
let codes = [];
for p in ps { codes.push(p.join(120)); }
print(`CODES ${codes}`);
input();
let after = "ok";
try { d["x"] = 1; } catch (e) { after = e.kind; }
print(`AFTER ${after}`);
'''
    live = ctx.live(script)
    mpid = int(live.expect(r"^MANAGER (\d+)$", 60).group(1))
    time.sleep(ctx.rng.uniform(0.1, 1.5))
    how = ctx.rng.choice([signal.SIGKILL, signal.SIGTERM, "STOP"])
    hit(ctx, mpid, how)
    try:
        codes = live.expect(r"^CODES (.*)$", 150).group(1)
        ctx.check(codes == "[0, 0, 0]", f"after the manager got {how}: child exit codes {codes}")
        # The children may all have finished before the fault: the last call is made only
        # once the manager has had it (and a dying manager a moment to go).
        time.sleep(0.3)
        live.send("\n")
        after = live.expect(r"^AFTER (.*)$", 60).group(1)
        if how == "STOP":
            ctx.check(after == "ok", f"a stopped and continued manager no longer works: {after}")
        else:
            ctx.check(after not in ("ok", "None", "()"), f"a dead manager: a proxy call gave {after}")
    except Exception as e:  # noqa: BLE001
        ctx.fail(f"manager {how}: {e}")
    ctx.check("NOKIND" not in live.out, f"an error without a kind: {live.out[live.out.find('NOKIND'):][:300]}")
    res = ctx.end(live, 60, what=f"manager {how}")
    ctx.expect_code(res, 0, f"manager {how}")
    ctx.load += 3 * 400 * 4


@probe("kills", seeds=3, timeout=300)
def main_process_sigkilled(ctx):
    """SIGKILL of the main process: daemons, pool workers, the manager and die_with_parent children die"""
    script = r'''
let pool = Pool(3);
let m = Manager();
let d = Process(|| { let g = spawn sleep(1000); g.join(); }, [], #{ daemon: true });
d.start();
let dwp = Process(|| sleep(1000), [], #{ die_with_parent: true });
dwp.start();
let lines = [];
print(`PIDS ${pool.pids} ${m.pid} ${d.pid} ${dwp.pid}`);
print("BLOCKING");
sleep(1000);
'''
    live = ctx.live(script)
    live.expect("^BLOCKING$", 60)
    time.sleep(0.3)
    tree = descendants(live.pid)
    time.sleep(ctx.rng.uniform(0, 0.3))
    live.signal(signal.SIGKILL)
    ctx.faults += 1
    ctx.load += len(tree)
    res, left = live.finish(10, grace=10)
    ctx.check(not left, f"after SIGKILL of the main process, left running: {left}")


@probe("kills", seeds=5, timeout=300)
def line_writers_killed(ctx):
    """8 processes print 10-40 KB lines into a pipe; random ones SIGKILLed: every line whole, the rest go on"""
    script = r'''
let ps = [];
for w in 0..8 {
    ps.push(spawn {
        for i in 0..60 {
            let n = 10000 + (i * 7919 + w * 104729) % 30000;
            let body = "";
            let c = `${(w + i) % 10}`;
            body.pad(n, c);
            print(`L ${w} ${i} ${n} ${body} E`);
        }
    });
}
print("PIDS " + ps.map(|p| `${p.pid}`).reduce(|a, b| a + " " + b, ""));
for p in ps { p.join(60); }
print("END");
'''
    live = ctx.live(script)
    pids = [int(x) for x in live.expect(r"^PIDS (.*)$", 60).group(1).split()]
    killed = set()
    for pid in ctx.rng.sample(pids, ctx.rng.randint(1, 4)):
        time.sleep(ctx.rng.uniform(0.0, 0.3))
        hit(ctx, pid, signal.SIGKILL)
        killed.add(pid)
    res = ctx.end(live, 120)
    ctx.expect_code(res, 0)
    whole = broken = 0
    for line in res.out.splitlines():
        if not line.startswith("L "):
            continue
        parts = line.split(" ")
        try:
            _, w, i, n, body, e = parts
            ok = e == "E" and len(body) == int(n) and set(body) == {str((int(w) + int(i)) % 10)}
        except ValueError:
            ok = False
        if ok:
            whole += 1
        else:
            broken += 1
    ctx.load += whole
    ctx.check(broken == 0, f"{broken} torn lines among {whole + broken}")
    ctx.check(whole >= (8 - len(killed)) * 60, f"only {whole} whole lines with {len(killed)} of 8 writers killed")


@probe("kills", seeds=5, timeout=300)
def fork_storm_with_random_kills(ctx):
    """A parent forks 300 children (some with grandchildren) while random descendants are killed"""
    script = r'''
let ps = [];
for i in 0..300 {
    ps.push(spawn {
        if i % 10 == 0 { let g = spawn sleep(0.2); g.join(); }
        sleep(0.01 * (i % 7));
        exit(i % 50);
    });
}
print("STARTED");
let codes = [];
for p in ps { codes.push(p.join(120)); }
let wrong = 0;
let killed = 0;
for i in 0..300 {
    let c = codes[i];
    if c == () { wrong += 1; } else if c < 0 { killed += 1; } else if c != i % 50 { wrong += 1; }
}
print(`RESULT wrong=${wrong} killed=${killed} active=${active_children().len()}`);
input();
'''
    live = ctx.live(script)
    kills = 0
    t_end = time.monotonic() + 3
    while time.monotonic() < t_end and "STARTED" not in live.out:
        ds = descendants(live.pid)
        if ds:
            hit(ctx, ctx.rng.choice(ds), ctx.rng.choice([signal.SIGKILL, signal.SIGTERM]))
            kills += 1
        time.sleep(ctx.rng.uniform(0.005, 0.05))
    m = live.expect(r"^RESULT wrong=(\d+) killed=(\d+) active=(\d+)$", 150)
    ctx.check(m.group(1) == "0", f"fork storm: {m.group(0)}")
    ctx.check(m.group(3) == "0", f"fork storm: children still active: {m.group(0)}")
    z = zombies_under(live.pid)
    ctx.check(not z, f"zombies after the storm: {z}")
    live.send("\n")
    res = ctx.end(live, 60)
    ctx.expect_code(res, 0)
    ctx.load += 330


@probe("kills", seeds=3, timeout=300)
def barrier_event_semaphore_participants_killed(ctx):
    """Barrier/Event/Semaphore/Condition with a participant killed: timeouts still end every wait"""
    script = r'''
let b = Barrier(4, (), 3);
let sem = Semaphore(1);
let cond = Condition();
let ev = Event();
let out = Queue();
let ps = [];
for w in 0..3 {
    ps.push(spawn {
        let r = [];
        try { b.wait(); r.push("passed"); } catch (e) { r.push(e.kind); }
        r.push(sem.acquire(3));
        with cond { r.push(cond.wait(2)); }
        r.push(ev.wait(2));
        out.put(r);
        sleep(100);
    });
}
print("PIDS " + ps.map(|p| `${p.pid}`).reduce(|a, b| a + " " + b, ""));
input();
let got = [];
for w in 0..2 { got.push(out.get(30)); }
print(`GOT ${got}`);
for p in ps { p.kill(); p.join(10); }
print("END");
'''
    live = ctx.live(script)
    pids = [int(x) for x in live.expect(r"^PIDS (.*)$", 60).group(1).split()]
    time.sleep(0.3)
    hit(ctx, ctx.rng.choice(pids), signal.SIGKILL)
    live.send("\n")
    m = live.expect(r"^GOT (.*)$", 60)
    ctx.check("BrokenBarrierError" in m.group(1), f"barrier with a dead party: {m.group(1)}")
    res = ctx.end(live, 60)
    ctx.expect_code(res, 0)
