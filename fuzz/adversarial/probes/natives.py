"""Bad input to every native: the signatures come from `procscript doc` (so natives added later
are covered), each called on live objects of its family (sockets, queues, pools, manager
proxies, ...) with hostile values in every position: wrong types, 0/-1/i64::MIN/i64::MAX,
NaN and infinities, empty, 1 MiB strings, 4 MiB blobs, 200-deep arrays, unicode, NUL bytes,
hostile paths, functions, handles of other kinds.

Each call runs in try/catch inside one batch script of many calls and reports its outcome.
A call that blocks (no output for STALL seconds) is ended with SIGTERM, which must end the
script at once with 143 and leave nothing behind; the batch then resumes after that call.
A call that ends the script is recorded and the batch resumes too.

What fails a probe: a panic or abort, a Rust type name in any message, an error without a
`kind` raised by a procscript native (Rhai's own dispatch errors are fine), SIGTERM not
ending a blocked call within a few seconds, a blocked call that had a finite small timeout,
anything left running.
"""

import os
import re
import signal
import stat
import subprocess
import time

import harness
from harness import probe, rhai_str

STALL = 3.0          # seconds without output before a call that waits counts as blocked
SLOW = 30.0          # the same for a call that computes (a debug build is slow on 1 MiB inputs)
BATCH = 700          # calls per script

# Hostile values: Rhai expressions, all defined in the prelude or literal.
HOSTILE = [
    "()", "0", "1", "-1", "2", "1025", "65536", "4294967296", "9223372036854775807",
    "(-9223372036854775807 - 1)", "0.0", "-0.0", "0.5", "1e-300", "1e308", "-1e308",
    "NAN", "INF", "NINF", "true", "false", "'c'", "'\\x00'",
    '""', '"x"', '"\\x00"', '"a\\x00b"', '"é主🎉\\u202ex"', "BIGSTR", '"../../escape"',
    '"devfull"', '"/proc/self/mem"', '"/nonexistent/dir/x"', '"-rf"', '"%s%n%x"',
    '"127.0.0.1"', '"::1"', '"utf-8"', '"i"', '"c"', '"zz"', '"localhost"',
    "[]", "[()]", "[1, 2]", '["a", 1]', "DEEP", "[[1, 2], [3]]", "BIGARR", '["true"]',
    "#{}", "#{ a: 1 }", "#{ target: || 0 }", '#{ command: ["true"] }', "#{ timeout: NAN }",
    "#{ processes: -1 }", "#{ lock: false }",
    "blob()", "blob(3, 255)", "BIGBLOB",
    "|| 0", "|x| x", "|a, b| a", 'Fn("nosuch")', '|| throw "boom"',
    "0..3", "0..=0", "5..1", "range(0, 2000000)", "(-3)..3",
    "timestamp()",
    # handles of other kinds
    "Q", "LOCK", "S_TCP", "P_NEW", "C_A", "VAL",
]

# Plausible values for the positions not under attack in a call.
PLAUSIBLE = ["0", "1", '"x"', "0.01", "[]", "#{}", "()", "[1]", "true"]

PRELUDE = r"""
let START = parse_int(ARGS[0]);
let NAN = 0.0 / 0.0;
let INF = 1.0 / 0.0;
let NINF = -1.0 / 0.0;
let BIGSTR = "x";
for i in 0..20 { BIGSTR += BIGSTR; }
let BIGBLOB = blob(4194304, 7);
let DEEP = [];
for i in 0..200 { DEEP = [DEEP]; }
let BIGARR = [];
for i in 0..100000 { BIGARR.push(i); }
let S_TCP = socket();
let S_LISTEN = create_server("127.0.0.1", 0);
let PAIR = socketpair();
let S_CONN = PAIR[0];
let S_PEER = PAIR[1];
S_PEER.sendall("line one\nline two\n");
let S_UDP = socket(AF_INET, SOCK_DGRAM);
let S_UNIX = socket(AF_UNIX);
let S_CLOSED = socket();
S_CLOSED.close();
let LINES = S_PEER.lines();
let P_NEW = Process(|| 0);
let P_DONE = spawn 0;
P_DONE.join();
let P_CMD = Process(#{ command: ["true"] });
let P_CMDPIPE = Process(#{ command: ["cat"], stdin: "pipe", stdout: "pipe", stderr: "pipe" });
let P_CUR = current_process();
let Q = Queue();
let QB = Queue(1);
let JQ = JoinableQueue();
let SQ = SimpleQueue();
let PIPE = Pipe();
let C_A = PIPE[0];
let C_B = PIPE[1];
let OW = Pipe(false);
let C_R = OW[0];
let C_W = OW[1];
let LOCK = Lock();
let RLOCK = RLock();
let SEM = Semaphore(1);
let BSEM = BoundedSemaphore(2);
let EV = Event();
let COND = Condition();
let BAR = Barrier(1);
let VAL = Value(0);
let VALC = Value("c", "x");
let RVAL = RawValue("d");
let ARR = Array(3);
let ARRC = Array("c", 4);
let RARR = RawArray("B", [1, 2]);
let POOL = Pool(1);
let AR = POOL.apply_async(|| 1);
let IT = POOL.imap(|x| x, [1, 2, 3]);
let MGR = Manager();
let MDICT = MGR.dict(#{ a: 1 });
let MLIST = MGR.list([1, 2]);
let MNS = MGR.Namespace();
let MLOCK = MGR.Lock();
let MQ = MGR.Queue();
let MVAL = MGR.Value(0);
let STR = "hello world";
let BLOB = "bytes\xff".to_blob();
let RANGE = 0..10;
let STR_EMPTY = "";
let BLOB_EMPTY = blob();
let RANGE_INC = 0..=3;
let RANGE_STEP = range(0, 10, 3);
fn report(n, e) {
    let kind = ();
    let error = ();
    let msg = ();
    if type_of(e) == "map" {
        kind = e.kind;
        error = e.error;
        msg = e.message;
    } else {
        msg = `${e}`;
    }
    let text = `${msg}`;
    let rust = text.contains("procscript::") || text.contains("core::") || text.contains("alloc::") || text.contains("std::");
    // Known, upstream: Rhai builds an indexing type error (`s[q]`, `b[0..3]`) with the index's
    // Rust type name before any hook runs; only the caught map shows it (procscript renders an
    // uncaught one with the script's name). Counted apart, with the path masked.
    if rust && error == "ErrorMismatchDataType" {
        rust = "known";
        for root in ["procscript::", "core::", "alloc::", "std::"] { text.replace(root, "<rust>"); }
    }
    if text.len() > 400 { text = text.sub_string(0, 400); }
    text.replace("\n", "\\n");
    print(`~${n} E type=${type_of(e)} kind=${kind} error=${error} rust=${rust} msg=${text}`);
}
print("~ready");
"""

# Receivers by (section, receiver name in the reference's usage).
FAMILIES = {
    ("Python's builtins", "s"): ["STR", "STR_EMPTY", "BIGSTR"],
    ("Python's builtins", "blob"): ["BLOB", "BLOB_EMPTY"],
    ("Python's builtins", "range"): ["RANGE", "RANGE_INC", "RANGE_STEP"],
    ("Python's builtins", "sep"): ["STR", "STR_EMPTY"],
    ("Processes", "process"): ["P_NEW", "P_DONE", "P_CMD", "P_CUR"],
    ("Sockets", "s"): ["S_TCP", "S_LISTEN", "S_CONN", "S_UDP", "S_UNIX", "S_CLOSED"],
    ("Sockets", "_s"): ["S_TCP"],
    ("Sockets", "l"): ["LINES"],
    ("Sockets", "b"): ["BLOB"],
    ("Messages, synchronisation and shared memory", "q"): ["Q", "QB", "JQ", "SQ"],
    ("Messages, synchronisation and shared memory", "conn"): ["C_A", "C_B", "C_R", "C_W"],
    ("Messages, synchronisation and shared memory", "lock"): ["LOCK", "RLOCK"],
    ("Messages, synchronisation and shared memory", "a"): ["ARR", "ARRC", "RARR"],
    ("Messages, synchronisation and shared memory", "v"): ["VAL", "VALC", "RVAL"],
    ("Messages, synchronisation and shared memory", "sem"): ["SEM", "BSEM"],
    ("Messages, synchronisation and shared memory", "cond"): ["COND"],
    ("Messages, synchronisation and shared memory", "event"): ["EV"],
    ("Messages, synchronisation and shared memory", "barrier"): ["BAR"],
    ("Commands", "process"): ["P_CMD", "P_CMDPIPE"],
    ("Process pools", "pool"): ["POOL"],
    ("Process pools", "result"): ["AR"],
    ("Process pools", "it"): ["IT"],
    ("Managers", "d"): ["MDICT"],
    ("Managers", "l"): ["MLIST"],
    ("Managers", "ns"): ["MNS"],
    ("Managers", "lock"): ["MLOCK"],
    ("Managers", "q"): ["MQ"],
    ("Managers", "v"): ["MVAL"],
    ("Managers", "m"): ["MGR"],
}

ALL_RECEIVERS = sorted({r for rs in FAMILIES.values() for r in rs if r.replace("_", "").isupper()})

# Natives that end the script on purpose.
SKIP = {"exit"}

# Calls that wait by design (for input, a peer, a child, a lock already held...). When one of
# these blocks it must still end at once on SIGTERM, which is checked.
WAITS = {"get", "recv", "recv_bytes", "accept", "acquire", "wait", "join", "sleep", "input",
         "select", "readline", "put", "poll", "next", "communicate", "read_stdout", "read_stderr",
         "read_stdout_line", "read_stderr_line", "recvfrom", "lines", "connect", "wait_for",
         "create_connection", "send", "sendall", "send_bytes", "run", "pipeline", "apply", "map",
         "starmap", "imap", "imap_unordered", "__enter__", "write_stdin", "get_nowait", "task_done",
         "Pool", "Manager", "start"}


def signatures():
    """(section, kind, name, receiver var, arity-after-receiver, usage) from `procscript doc`."""
    text = subprocess.run([harness.binary(), "doc"], capture_output=True, text=True, check=True).stdout
    sigs = set()
    section = None
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
            continue
        m = re.match(r"^`([^`]+)` → `", line)
        if not m:
            continue
        usage = m.group(1)
        if m2 := re.match(r"^(\w+)\[(\w+)\] = (\w+)$", usage):
            sigs.add((section, "setindex", "[]", m2.group(1), 2, usage))
        elif m2 := re.match(r"^(\w+)\[(\w+)\]$", usage):
            sigs.add((section, "index", "[]", m2.group(1), 1, usage))
        elif m2 := re.match(r"^(\w+)\.(\w+) = (\w+)$", usage):
            sigs.add((section, "setprop", m2.group(2), m2.group(1), 1, usage))
        elif m2 := re.match(r"^(\w+)\.(\w+)\((.*)\)$", usage):
            n = len([a for a in m2.group(3).split(",") if a.strip()])
            sigs.add((section, "method", m2.group(2), m2.group(1), n, usage))
        elif m2 := re.match(r"^(\w+)\.(\w+)$", usage):
            sigs.add((section, "getprop", m2.group(2), m2.group(1), 0, usage))
        elif m2 := re.match(r"^(\w+)\((.*)\)$", usage):
            n = len([a for a in m2.group(2).split(",") if a.strip()])
            sigs.add((section, "function", m2.group(1), None, n, usage))
    return sorted(sigs, key=lambda s: (s[0] or "", s[2], s[1], s[3] or "", s[4]))


def call_text(kind, name, recv, args):
    if kind == "function":
        return f"{name}({', '.join(args)})"
    if kind == "method":
        return f"{recv}.{name}({', '.join(args)})"
    if kind == "getprop":
        return f"{recv}.{name}"
    if kind == "setprop":
        return f"{recv}.{name} = {args[0]}"
    if kind == "index":
        return f"{recv}[{args[0]}]"
    if kind == "setindex":
        return f"{recv}[{args[0]}] = {args[1]}"
    raise ValueError(kind)


def calls_for(section, sig_filter, rng, first_seed):
    calls = []
    for sec, kind, name, var, arity, usage in signatures():
        if sec != section or name in SKIP or (sig_filter and not sig_filter(name)):
            continue
        if kind == "function":
            receivers = [None]
        else:
            receivers = list(FAMILIES.get((sec, var), []))
            # type confusion: two receivers of other families
            receivers += rng.sample([r for r in ALL_RECEIVERS if r not in receivers], 2)
            if var in ("a", "b") and name in ("==", "!="):
                continue
        for recv in receivers:
            tuples = []
            if arity == 0:
                tuples.append([])
            else:
                if first_seed:
                    for h in HOSTILE:
                        tuples.append([h] * arity)
                for j in range(arity):
                    for h in HOSTILE:
                        args = [rng.choice(PLAUSIBLE) for _ in range(arity)]
                        args[j] = h
                        tuples.append(args)
                for _ in range(12):
                    tuples.append([rng.choice(HOSTILE + ALL_RECEIVERS) for _ in range(arity)])
            # extra arity: one argument more than documented
            tuples.append([rng.choice(HOSTILE) for _ in range(arity + 1)])
            for args in tuples:
                calls.append((name, call_text(kind, name, recv, args)))
    return calls


def run_batches(ctx, calls, label):
    """Runs `calls` in batches; returns outcome lines per call index and the blocked/ended ones."""
    outcomes = {}
    blocked = []   # (index, call, ms to end on SIGTERM, code)
    ended = []     # (index, call, code, stderr tail)
    for b0 in range(0, len(calls), BATCH):
        chunk = calls[b0:b0 + BATCH]
        body = [PRELUDE]
        for i, (_, text) in enumerate(chunk):
            body.append(f"if START <= {i} {{ try {{ {text}; print(\"~{i} ok\"); }} catch (e) {{ report({i}, e); }} }}")
        body.append('print("~done");')
        path = ctx.write(f"batch-{label}-{b0}.rhai", "\n".join(body) + "\n")
        full = os.path.join(ctx.dir, "devfull")
        if not os.path.exists(full):
            # A local /dev/full: hostile paths never touch the machine's device nodes.
            os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
        start = 0
        while start <= len(chunk):
            live = harness.Live([harness.binary(), "run", path, str(start)], cwd=ctx.dir, env=ctx.env(),
                                stdin=subprocess.DEVNULL)
            last = start - 1
            seen = 0
            last_growth = time.monotonic()
            done = False
            stalled = False
            while True:
                size = live.output_size()
                if size != seen:
                    seen = size
                    last_growth = time.monotonic()
                    for m in re.finditer(r"(?m)^~(\d+) ", live.out):
                        last = max(last, int(m.group(1)))
                if live.proc.poll() is not None:
                    time.sleep(0.05)
                    for m in re.finditer(r"(?m)^~(\d+) ", live.out):
                        last = max(last, int(m.group(1)))
                    break
                cur = last + 1
                limit = STALL if cur < len(chunk) and chunk[cur][0] in WAITS else SLOW
                if time.monotonic() - last_growth > limit and "~ready" in live.out:
                    stalled = True
                    t0 = time.monotonic()
                    live.signal(signal.SIGTERM)
                    ctx.faults += 1
                    code = live.wait(10)
                    ms = (time.monotonic() - t0) * 1000
                    idx = last + 1
                    blocked.append((b0 + idx, chunk[idx][1] if idx < len(chunk) else "?", ms, code))
                    if code is None:
                        ctx.fail(f"{label}: SIGTERM did not end a script blocked in `{chunk[idx][1]}` within 10 s")
                    elif code != 143:
                        ctx.fail(f"{label}: SIGTERM during `{chunk[idx][1]}` gave exit {code}, not 143")
                    elif ms > 5000:
                        ctx.fail(f"{label}: SIGTERM took {ms:.0f} ms to end `{chunk[idx][1]}`")
                    break
                if time.monotonic() - live.start > 900:
                    ctx.fail(f"{label}: batch took over 900 s")
                    break
                time.sleep(0.05)
            res, left = live.finish(30)
            ctx.audit(res, left, what=f"{label} batch {b0} from {start}")
            for line in res.out.splitlines():
                m = re.match(r"^~(\d+) (.*)$", line)
                if m:
                    outcomes[b0 + int(m.group(1))] = m.group(2)
            if "~done" in res.out:
                done = True
            if done:
                break
            if res.code == 2 and "syntax error" in res.err:
                raise harness.ProbeFailure(f"{label}: the generated batch does not compile: {res.err[:600]}")
            if not stalled:
                idx = last + 1
                if idx >= len(chunk):
                    ctx.fail(f"{label}: batch ended ({res.code}) after its last call without ~done: {res.err[-500:]}")
                    break
                ended.append((b0 + idx, chunk[idx][1], res.code, res.err[-300:]))
            start = last + 2
    return outcomes, blocked, ended


def judge(ctx, calls, outcomes, blocked, ended, label):
    ctx.inputs += len(calls)
    kinds = {}
    known_rust = {}  # native -> calls whose caught indexing error shows Rhai's Rust type name
    bad = {}  # (native, what went wrong) -> [count, first example]

    def flag(name, why, example):
        entry = bad.setdefault((name, why), [0, example])
        entry[0] += 1

    for i, text in outcomes.items():
        if not text.startswith("E "):
            continue
        name = calls[i][0]
        m = re.match(r"E type=(\S+) kind=(.*?) error=(.*?) rust=(\S+) msg=(.*)$", text)
        if not m:
            continue
        etype, kind, error, rust, msg = m.groups()
        k = kind if kind != "None" else error
        kinds[k] = kinds.get(k, 0) + 1
        if rust == "true":
            flag(name, "a Rust type name in the message", f"`{calls[i][1][:160]}`: {msg[:240]}")
        elif rust == "known":
            known_rust[name] = known_rust.get(name, 0) + 1
        # A procscript native fails with #{ kind, message, errno }. Rhai's own errors (dispatch,
        # arithmetic, a closure's `throw`) come as maps with `error`, or as the thrown value.
        if etype == "map" and kind == "None" and error == "None":
            flag(name, "an error map with neither kind nor error", f"`{calls[i][1][:160]}`: {msg[:240]}")
        if error == "ErrorRuntime" and kind == "None" and "boom" not in text:
            flag(name, "a bare runtime error without a kind", f"`{calls[i][1][:160]}`: {msg[:240]}")
    for idx, text, ms, code in blocked:
        name = calls[idx][0] if idx < len(calls) else "?"
        if name not in WAITS:
            flag(name, f"ran over {SLOW:.0f} s though it is not a call that waits", f"`{text[:200]}`")
        elif re.search(r"\b(0\.5|0\.01|1e-300|-1|0|1|2)\)$", text) and (name in (
                "get", "acquire", "join", "wait", "poll", "next", "select") or (
                name == "put" and "," in text)):
            flag(name, "blocked despite a small timeout", f"`{text[:200]}`")
    for idx, text, code, err in ended:
        ctx.note(f"ended the script: {text[:80]} ({code})")
        if not re.search(r"P_CUR\.(kill|terminate)", text):
            flag(calls[idx][0], f"ended the script (exit {code})", f"`{text[:200]}`: {err[-200:]}")
    for (name, why), (count, example) in sorted(bad.items()):
        ctx.fail(f"{label}: `{name}`: {why} ({count} calls), e.g. {example}")
    if known_rust:
        ctx.note(f"{label}: known upstream, Rhai's caught indexing error names a Rust type: "
                 + ", ".join(f"`{k}` {v}" for k, v in sorted(known_rust.items())))
    top = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])[:8])
    n_ok = sum(1 for t in outcomes.values() if t == "ok")
    ctx.note(f"{label}: {n_ok} calls returned, {sum(kinds.values())} raised ({top}); "
             f"{len(blocked)} blocked until SIGTERM ended them, {len(ended)} ended the script")


SECTIONS = {
    "builtins": "Python's builtins",
    "processes": "Processes",
    "sockets": "Sockets",
    "ipc": "Messages, synchronisation and shared memory",
    "commands": "Commands",
    "pools": "Process pools",
    "managers": "Managers",
}


def make(key, section):
    def natives_section(ctx):
        calls = calls_for(section, None, ctx.rng, ctx.seed == 1)
        outcomes, blocked, ended = run_batches(ctx, calls, key)
        judge(ctx, calls, outcomes, blocked, ended, key)
    natives_section.__name__ = key
    natives_section.__doc__ = f"every native of `{section}` with hostile arguments"
    probe("natives", seeds=2, timeout=3600)(natives_section)


for _k, _s in SECTIONS.items():
    make(_k, _s)
