#!/usr/bin/env python3
"""Adversarial probes against the procscript binary (issue 10): bad input to every native and
to the command line, processes killed and stopped at random moments, full pipes, signals
during blocking calls, resource exhaustion, load counted exactly, remote work over ssh.

    python3 fuzz/adversarial/run.py                 # every probe, 3 seeds for random ones
    python3 fuzz/adversarial/run.py --seeds 5 -k kills
    python3 fuzz/adversarial/run.py --list
    PROCSCRIPT_BIN=target/release/procscript python3 fuzz/adversarial/run.py

Every run has a hard timeout and is checked for: a hang, exit 101 or a fatal signal, "panicked",
a Rust type name (`procscript::`, `core::`, `alloc::`, `std::`) in any output, and anything
left running in its session afterwards. Probes add their own checks (counts, zombies,
descriptors, exit codes, timing with wide margins). The scoreboard is printed as Markdown and
written as JSON (--json).
"""

import argparse
import importlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

MODULES = ["natives", "cli", "signals", "kills", "pipes", "limits", "load", "remote"]


class SshdOnce:
    """One sshd for the whole run, started on first use."""

    def __init__(self, root):
        self.root = root
        self.lock = threading.Lock()
        self.server = None
        self.error = None

    def __call__(self):
        with self.lock:
            if self.server is None and self.error is None:
                try:
                    self.server = harness.Sshd(self.root)
                except Exception as e:  # noqa: BLE001 - reported as a skip
                    self.error = str(e)
            if self.server is None:
                raise harness.ProbeFailure(f"no sshd: {self.error}")
            return self.server

    def stop(self):
        if self.server:
            self.server.stop()


def run_one(probe, seed, root, sshd, verbose):
    workdir = tempfile.mkdtemp(prefix=probe.name.replace("/", "-") + f"-{seed}-", dir=root)
    # Hostile relative paths (`../x`) stay inside the run's own directory.
    inner = os.path.join(workdir, "a", "b")
    os.makedirs(inner)
    ctx = harness.Ctx(probe, seed, inner, sshd)
    t0 = time.monotonic()
    error = None
    try:
        probe.fn(ctx)
    except harness.ProbeFailure as e:
        ctx.fail(str(e))
    except Exception:  # noqa: BLE001 - a harness error is reported, not hidden
        error = traceback.format_exc()
        ctx.fail("harness error:\n" + error)
    finally:
        ctx.end_lives()
    elapsed = time.monotonic() - t0
    shutil.rmtree(workdir, ignore_errors=True)
    rec = {
        "probe": probe.name, "category": probe.category, "seed": seed, "elapsed": round(elapsed, 2),
        "inputs": ctx.inputs, "faults": ctx.faults, "load": ctx.load, "notes": ctx.notes,
        "problems": ctx.problems, "doc": probe.doc,
    }
    status = "FAIL" if ctx.problems else "pass"
    line = (f"{status} {probe.name} seed={seed} {elapsed:.1f}s inputs={ctx.inputs} "
            f"faults={ctx.faults} load={ctx.load}")
    print(line, flush=True)
    if ctx.problems and verbose:
        for p in ctx.problems:
            print("    " + p.replace("\n", "\n    ")[:4000], flush=True)
    return rec


def scoreboard(records):
    cats = {}
    for r in records:
        c = cats.setdefault(r["category"], {"probes": set(), "runs": 0, "failed": 0, "inputs": 0,
                                            "faults": 0, "load": 0, "notes": [], "bad": set()})
        c["probes"].add(r["probe"])
        c["runs"] += 1
        c["inputs"] += r["inputs"]
        c["faults"] += r["faults"]
        c["load"] += r["load"]
        for n in r["notes"]:
            if n not in c["notes"]:
                c["notes"].append(n)
        if r["problems"]:
            c["failed"] += 1
            c["bad"].add(r["probe"])
    lines = ["| category | probes | runs | inputs tried | faults injected | load held | outcome |",
             "|---|---|---|---|---|---|---|"]
    tot = {"probes": 0, "runs": 0, "inputs": 0, "faults": 0, "load": 0, "failed": 0}
    for name in harness.CATEGORIES:
        if name not in cats:
            continue
        c = cats[name]
        outcome = "all held" if not c["failed"] else f"{c['failed']} failed: {', '.join(sorted(c['bad']))}"
        lines.append(f"| {name} ({harness.CATEGORIES[name]}) | {len(c['probes'])} | {c['runs']} | "
                     f"{c['inputs']:,} | {c['faults']:,} | {c['load']:,} | {outcome} |")
        for k in tot:
            tot[k] += len(c["probes"]) if k == "probes" else c[k]
    lines.append(f"| **total** | {tot['probes']} | {tot['runs']} | {tot['inputs']:,} | {tot['faults']:,} | "
                 f"{tot['load']:,} | {tot['failed']} failed |")
    return "\n".join(lines), cats


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-k", action="append", default=[], help="run probes whose name contains this (repeatable)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds for randomised probes (default 3)")
    ap.add_argument("--seed-base", type=int, default=1, help="first seed (default 1)")
    ap.add_argument("-j", "--jobs", type=int, default=1, help="probes run at once (default 1)")
    ap.add_argument("--list", action="store_true", help="list the probes and exit")
    ap.add_argument("--json", default=None, help="write the records here (default: target/adversarial.json)")
    ap.add_argument("-q", "--quiet", action="store_true", help="do not print each failure's details")
    ap.add_argument("--no-sshd", action="store_true", help="skip the probes that need sshd")
    args = ap.parse_args()
    # Started from a shell's background job, this process ignores SIGINT, and so would every
    # procscript it starts (procscript, like Python, keeps an ignored SIGINT ignored), which
    # makes every SIGINT probe hang. A handled signal is reset to its default in children.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    for m in MODULES:
        importlib.import_module("probes." + m)
    probes = harness.PROBES
    if args.k:
        probes = [p for p in probes if any(k in p.name for k in args.k)]
    if args.no_sshd:
        probes = [p for p in probes if not p.needs_sshd]
    if args.list:
        for p in probes:
            print(f"{p.name:60} seeds={p.seeds}  {p.doc}")
        print(f"{len(probes)} probes")
        return 0
    if not os.path.exists(harness.binary()):
        print(f"no binary at {harness.binary()}: run `cargo build` (or set PROCSCRIPT_BIN)", file=sys.stderr)
        return 2

    root = tempfile.mkdtemp(prefix="procscript-adversarial-")
    os.chmod(root, 0o755)  # the probes that run as `nobody` need to reach the binary
    # A private copy: a `cargo build` during a long run must not swap the binary under it.
    copy = os.path.join(root, "procscript")
    shutil.copy2(harness.binary(), copy)
    os.environ["PROCSCRIPT_BIN"] = copy
    sshd = SshdOnce(root)
    jobs = []
    for p in probes:
        n = args.seeds if p.seeds > 1 else 1
        for s in range(args.seed_base, args.seed_base + n):
            jobs.append((p, s))
    t0 = time.monotonic()
    records = []
    try:
        if args.jobs > 1:
            with ThreadPoolExecutor(args.jobs) as ex:
                futs = [ex.submit(run_one, p, s, root, sshd, not args.quiet) for p, s in jobs]
                records = [f.result() for f in futs]
        else:
            records = [run_one(p, s, root, sshd, not args.quiet) for p, s in jobs]
    finally:
        sshd.stop()
        shutil.rmtree(root, ignore_errors=True)
    table, _ = scoreboard(records)
    print()
    print(table)
    print(f"\n{len(records)} runs of {len(probes)} probes in {time.monotonic() - t0:.0f}s")
    failed = [r for r in records if r["problems"]]
    if failed:
        print("\nFailures:")
        for r in failed:
            print(f"- {r['probe']} seed={r['seed']}: {r['problems'][0][:300]}")
    out = args.json or os.path.join(harness.REPO, "target", "adversarial.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"records": records, "table": table}, f, indent=1)
    print(f"records: {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
