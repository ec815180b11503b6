"""The machinery every probe shares: running the binary under a hard timeout in a session of
its own, the checks that hold for every run (no hang, no panic, no Rust type name, nothing
left running), looks at /proc (children, zombies, descriptors), a live session with a
running script driven line by line, and a throwaway sshd on loopback.

Nothing here knows about particular probes; see probes/*.py.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# What must never reach a user's eyes: a panic, an abort, a Rust type path.
PANIC = re.compile(r"panicked at|RUST_BACKTRACE|stack overflow|fatal runtime error|SIGABRT|Aborted \(core")
RUST_NAMES = re.compile(r"\b(procscript|core|alloc|std)::[A-Za-z_]")
BAD_SIGNALS = {signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE}


class ProbeFailure(Exception):
    """A probe's expectation did not hold."""


def binary():
    return os.environ.get("PROCSCRIPT_BIN") or os.path.join(REPO, "target", "debug", "procscript")


# ---------------------------------------------------------------- /proc

def _stat(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    rest = text.rsplit(")", 1)[1].split()
    # rest[0] state, rest[1] ppid, rest[2] pgrp, rest[3] session
    return {"state": rest[0], "ppid": int(rest[1]), "pgrp": int(rest[2]), "sid": int(rest[3])}


def all_pids():
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            out.append(int(name))
    return out


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")[:-1]
    except OSError:
        return []


def state(pid):
    st = _stat(pid)
    return st["state"] if st else None


def alive(pid):
    s = state(pid)
    return s is not None and s not in ("Z", "X")


def in_session(sid):
    """Pids of the processes (zombies included) of session `sid`."""
    out = []
    for pid in all_pids():
        st = _stat(pid)
        if st and st["sid"] == sid:
            out.append(pid)
    return out


def children(pid):
    out = []
    for p in all_pids():
        st = _stat(p)
        if st and st["ppid"] == pid:
            out.append(p)
    return out


def descendants(pid):
    table = {}
    for p in all_pids():
        st = _stat(p)
        if st:
            table.setdefault(st["ppid"], []).append(p)
    out, todo = [], [pid]
    while todo:
        at = todo.pop()
        for c in table.get(at, []):
            out.append(c)
            todo.append(c)
    return out


def zombies_under(pid):
    return [p for p in descendants(pid) if state(p) == "Z"]


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def fd_targets(pid):
    out = {}
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                out[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                pass
    except OSError:
        pass
    return out


def running_with_arg(needle):
    """Live processes with `needle` (bytes) in their argv."""
    out = []
    for pid in all_pids():
        if any(needle in a for a in cmdline(pid)) and alive(pid):
            out.append(pid)
    return out


def kill_quietly(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except OSError:
        pass


def eventually(pred, timeout, step=0.02):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            return v
        time.sleep(step)


# ---------------------------------------------------------------- runs

class Result:
    def __init__(self, argv, code, stdout, stderr, elapsed, timed_out):
        self.argv = argv
        self.code = code          # exit code, or -N for signal N (subprocess's convention)
        self.stdout = stdout
        self.stderr = stderr
        self.elapsed = elapsed
        self.timed_out = timed_out

    @property
    def out(self):
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self):
        return self.stderr.decode("utf-8", "replace")

    def lines(self):
        return self.out.splitlines()

    def describe(self, limit=1500):
        return (f"argv={self.argv!r} code={self.code} elapsed={self.elapsed:.2f}s "
                f"timed_out={self.timed_out}\n--- stdout ---\n{self.out[-limit:]}\n"
                f"--- stderr ---\n{self.err[-limit:]}")


def universal_problems(code, out, err):
    """What no run may ever show, whatever its input."""
    problems = []
    if code == 101:
        problems.append("exit code 101 (a Rust panic)")
    if code is not None and code < 0 and -code in BAD_SIGNALS and not (
            -code == signal.SIGABRT and "memory allocation of" in err):
        # (An abort after "memory allocation of N bytes failed" is Rust's documented reaction
        # to exhausted memory; the probes that exhaust it record it instead.)
        problems.append(f"died of {signal.Signals(-code).name}")
    if code is not None and code - 128 in (6, 11) and "Aborted" in err:
        problems.append("aborted")
    # Rust's report of a failed allocation ("memory allocation of N bytes failed" and its
    # RUST_BACKTRACE note) is judged by the probes that exhaust memory, not here.
    err = re.sub(r"memory allocation of \d+ bytes failed\n(note: run with `RUST_BACKTRACE=1`[^\n]*\n)?", "", err)
    for name, text in (("stdout", out), ("stderr", err)):
        m = PANIC.search(text)
        if m:
            problems.append(f"{name} shows a panic/abort: {text[max(0, m.start()-200):m.end()+200]!r}")
        m = RUST_NAMES.search(text)
        if m:
            problems.append(f"{name} shows a Rust type name: {text[max(0, m.start()-200):m.end()+200]!r}")
    return problems


def reap_session(sid, grace):
    """Waits up to `grace` s for session `sid` to empty; returns what was left (then killed)."""
    left = eventually(lambda: not in_session(sid), grace) and []
    if left is False or left is None:
        left = []
    rest = in_session(sid)
    if rest:
        desc = []
        for p in rest:
            desc.append(f"{p} {state(p)} {b' '.join(cmdline(p))[:120]!r}")
        for p in rest:
            kill_quietly(p)
        return desc
    return []


class Live:
    """A running procscript (or any command) in its own session, read line by line."""

    def __init__(self, argv, cwd=None, env=None, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, pass_fds=(), preexec_fn=None):
        self.argv = argv
        self.start = time.monotonic()
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=stdin, stdout=stdout,
                                     stderr=stderr, start_new_session=True, pass_fds=pass_fds,
                                     preexec_fn=preexec_fn)
        self.pid = self.proc.pid
        self.sid = self.pid
        self._out = bytearray()
        self._err = bytearray()
        self._cond = threading.Condition()
        self._threads = []
        self._pos = 0  # how much of stdout `expect` has consumed
        self.eof = False
        if self.proc.stdout is not None:
            t = threading.Thread(target=self._pump, args=(self.proc.stdout, self._out, True), daemon=True)
            t.start()
            self._threads.append(t)
        else:
            self.eof = True
        if self.proc.stderr is not None:
            t = threading.Thread(target=self._pump, args=(self.proc.stderr, self._err, False), daemon=True)
            t.start()
            self._threads.append(t)

    def _pump(self, stream, buf, is_out):
        fd = stream.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            with self._cond:
                if not chunk:
                    if is_out:
                        self.eof = True
                    self._cond.notify_all()
                    return
                buf.extend(chunk)
                self._cond.notify_all()

    @property
    def out(self):
        with self._cond:
            return bytes(self._out).decode("utf-8", "replace")

    @property
    def err(self):
        with self._cond:
            return bytes(self._err).decode("utf-8", "replace")

    def expect(self, pattern, timeout=30.0):
        """Waits for a line of stdout (after the last one `expect` returned) matching the
        regex `pattern`; returns the match. ProbeFailure on timeout or end of output."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                data = bytes(self._out)
                while True:
                    nl = data.find(b"\n", self._pos)
                    if nl < 0:
                        break
                    line = data[self._pos:nl].decode("utf-8", "replace")
                    self._pos = nl + 1
                    m = rx.search(line)
                    if m:
                        return m
                if self.eof:
                    raise ProbeFailure(f"output ended before /{pattern}/; stdout tail {data[-800:]!r} "
                                       f"stderr tail {bytes(self._err)[-800:]!r} code {self.proc.poll()}")
                left = end - time.monotonic()
                if left <= 0:
                    raise ProbeFailure(f"no /{pattern}/ within {timeout}s; stdout tail {data[-800:]!r} "
                                       f"stderr tail {bytes(self._err)[-800:]!r}")
                self._cond.wait(min(left, 0.2))

    def output_size(self):
        with self._cond:
            return len(self._out)

    def send(self, text):
        if isinstance(text, str):
            text = text.encode()
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def close_stdin(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def signal(self, sig):
        kill_quietly(self.pid, sig)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def finish(self, timeout=60.0, grace=5.0):
        """Waits for the end (killing the whole session past `timeout`); returns a Result and
        the processes left in the session afterwards."""
        timed_out = False
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            for p in in_session(self.sid):
                kill_quietly(p)
            self.proc.wait()
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        leftovers = reap_session(self.sid, grace)
        for t in self._threads:
            t.join(5)
        res = Result(self.argv, self.proc.returncode, bytes(self._out), bytes(self._err),
                     time.monotonic() - self.start, timed_out)
        return res, leftovers


class Sshd:
    """A throwaway sshd on 127.0.0.1 (a free port), key authentication for this user only."""

    def __init__(self, root):
        self.dir = tempfile.mkdtemp(prefix="sshd-", dir=root)
        self.proc = None
        host_key = os.path.join(self.dir, "host_ed25519")
        self.key = os.path.join(self.dir, "user_ed25519")
        for k in (host_key, self.key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "adversarial", "-f", k],
                           check=True, stdin=subprocess.DEVNULL)
        shutil.copy(self.key + ".pub", os.path.join(self.dir, "authorized_keys"))
        self.user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", exist_ok=True)
        import socket as _s
        with _s.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        conf = os.path.join(self.dir, "sshd_config")
        lines = [f"ListenAddress 127.0.0.1", f"Port {self.port}", f"HostKey {host_key}",
                 f"AuthorizedKeysFile {self.dir}/authorized_keys", f"PidFile {self.dir}/sshd.pid",
                 f"AllowUsers {self.user}", "StrictModes no", "UsePAM no",
                 "PermitRootLogin prohibit-password", "PubkeyAuthentication yes",
                 "PasswordAuthentication no", "PrintMotd no", "UseDNS no", "MaxStartups 200",
                 "MaxSessions 50", "PerSourcePenalties no", "LogLevel ERROR"]
        while True:
            with open(conf, "w") as f:
                f.write("\n".join(lines) + "\n")
            t = subprocess.run(["/usr/sbin/sshd", "-t", "-f", conf], capture_output=True, text=True)
            if t.returncode == 0:
                break
            bad = [l for l in lines if l.split()[0] in t.stderr]
            if not bad:
                raise RuntimeError(f"sshd rejects its config: {t.stderr}")
            lines = [l for l in lines if l not in bad]
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        import socket as _s
        end = time.monotonic() + 30
        while True:
            try:
                with _s.create_connection(("127.0.0.1", self.port), 1):
                    break
            except OSError:
                if time.monotonic() > end or self.proc.poll() is not None:
                    raise RuntimeError("sshd did not start")
                time.sleep(0.05)

    def host(self):
        return f"{self.user}@127.0.0.1"

    def options(self):
        return ["-F", "/dev/null", "-p", str(self.port), "-i", self.key, "-o", "IdentitiesOnly=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=20"]

    def prelude(self, exe=None):
        opts = ", ".join(rhai_str(o) for o in self.options())
        text = f"const HOST = {rhai_str(self.host())};\nconst SSH = [{opts}];\n"
        if exe:
            text += f"const EXE = {rhai_str(exe)};\n"
        return text

    def session_pids(self):
        """Processes that descend from this sshd (its sessions)."""
        return descendants(self.proc.pid) if self.proc else []

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def rhai_str(text):
    """A Rhai string literal."""
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\0":
            out.append("\\0")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# ---------------------------------------------------------------- probes

CATEGORIES = {
    "natives": "bad input to every native",
    "cli": "bad input to the command line: files, paths, flags, traces",
    "signals": "signals during every kind of blocking call",
    "kills": "processes killed or stopped at random moments",
    "pipes": "full pipes, stopped and vanished readers",
    "limits": "resource exhaustion",
    "load": "load, counted exactly",
    "remote": "remote commands and pool workers over ssh",
}

PROBES = []


class Probe:
    def __init__(self, fn, category, seeds, timeout, needs_sshd):
        self.fn = fn
        self.name = f"{category}/{fn.__name__}"
        self.category = category
        self.seeds = seeds
        self.timeout = timeout
        self.needs_sshd = needs_sshd
        self.doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else fn.__name__


def probe(category, seeds=1, timeout=120, sshd=False):
    """Registers a probe. `seeds` > 1 marks a randomised probe, run once per seed."""
    assert category in CATEGORIES, category

    def deco(fn):
        PROBES.append(Probe(fn, category, seeds, timeout, sshd))
        return fn
    return deco


class Ctx:
    """What a probe gets: a seeded random source, a scratch directory, runners that apply the
    universal checks, and counters for the scoreboard."""

    def __init__(self, probe, seed, workdir, sshd_factory):
        import random
        self.probe = probe
        self.seed = seed
        self.rng = random.Random(f"{probe.name}:{seed}")
        self.dir = workdir
        self._sshd_factory = sshd_factory
        self.inputs = 0     # inputs tried: calls, files, argument sets
        self.faults = 0     # faults injected: signals, kills, stops, limits, vanished readers
        self.load = 0       # units of load held: messages, tasks, clients, processes
        self.notes = []     # what the load was, in words
        self.problems = []
        self.lives = []     # sessions started with `live`, ended after the probe

    # -- bookkeeping
    def fail(self, msg):
        self.problems.append(msg)

    def check(self, cond, msg):
        if not cond:
            self.fail(msg)
        return cond

    def note(self, text):
        if text not in self.notes:
            self.notes.append(text)

    # -- files
    def write(self, name, text):
        path = os.path.join(self.dir, name)
        mode = "wb" if isinstance(text, bytes) else "w"
        with open(path, mode) as f:
            f.write(text)
        return path

    def env(self, extra=None):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NO_COLOR": "1",
               "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
        if extra:
            env.update(extra)
        return env

    def argv(self, script, args=(), flags=(), prefix=()):
        path = script if script.startswith("/") and os.path.exists(script) else self.write("probe.rhai", script)
        return list(prefix) + [binary(), "run", *flags, path, *[str(a) for a in args]]

    # -- runs
    def audit(self, res, leftovers, allow_timeout=False, what="run"):
        for p in universal_problems(res.code, res.out, res.err):
            self.fail(f"{what}: {p}")
        if res.timed_out and not allow_timeout:
            self.fail(f"{what}: hung (killed after its hard timeout)\n{res.describe()}")
        if leftovers:
            self.fail(f"{what}: left running after the end: {leftovers}")

    def run_argv(self, argv, stdin=b"", timeout=60, env=None, cwd=None, allow_timeout=False,
                 stdout=subprocess.PIPE, what="run"):
        live = Live(argv, cwd=cwd or self.dir, env=self.env(env),
                    stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL, stdout=stdout)
        if stdin is not None:
            try:
                live.send(stdin)
            except (BrokenPipeError, OSError):
                pass
            live.close_stdin()
        res, left = live.finish(timeout)
        self.audit(res, left, allow_timeout, what)
        return res

    def run(self, script, args=(), flags=(), stdin=b"", timeout=60, env=None, prefix=(),
            allow_timeout=False, what="run"):
        return self.run_argv(self.argv(script, args, flags, prefix), stdin, timeout, env,
                             allow_timeout=allow_timeout, what=what)

    def live(self, script, args=(), flags=(), env=None, prefix=(), **kw):
        live = Live(self.argv(script, args, flags, prefix), cwd=self.dir, env=self.env(env), **kw)
        self.lives.append(live)
        return live

    def end_lives(self):
        """Ends every session a probe started: one that failed midway leaves none behind."""
        for live in self.lives:
            for p in in_session(live.sid):
                kill_quietly(p)
            try:
                live.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def end(self, live, timeout=60, allow_timeout=False, what="run"):
        res, left = live.finish(timeout)
        self.audit(res, left, allow_timeout, what)
        return res

    def expect_code(self, res, codes, what="run"):
        if isinstance(codes, int):
            codes = (codes,)
        self.check(res.code in codes, f"{what}: exit code {res.code}, wanted {codes}\n{res.describe()}")

    def sshd(self):
        return self._sshd_factory()


def diagnose(pid):
    """Where a process is stuck: its state, wchan, kernel stack and (with gdb) its backtrace."""
    out = [f"pid {pid} state {state(pid)} argv {b' '.join(cmdline(pid))[:100]!r}"]
    for name in ("wchan", "stack", "syscall"):
        try:
            with open(f"/proc/{pid}/{name}") as f:
                out.append(f"{name}: {f.read().strip()[:600]}")
        except OSError:
            pass
    if shutil.which("gdb"):
        try:
            bt = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "bt"], capture_output=True,
                                text=True, timeout=60).stdout
            out.append("\n".join(l for l in bt.splitlines() if l.startswith("#"))[:3000])
            # The futex word a waiter sleeps on, as it is now.
            m = re.search(r"word=(0x[0-9a-f]+)", bt)
            if m:
                try:
                    with open(f"/proc/{pid}/mem", "rb") as f:
                        f.seek(int(m.group(1), 16))
                        word = int.from_bytes(f.read(4), "little")
                    out.append(f"futex word at {m.group(1)} now {word:#010x}")
                except OSError as e:
                    out.append(f"cannot read the futex word: {e}")
        except subprocess.TimeoutExpired:
            out.append("gdb timed out")
    return "\n".join(out)
