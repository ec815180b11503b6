//! Integration tests: each drives the real `procscript` binary on fixture scripts.
//!
//! Scripts that fork must run in the binary, never in this (multi-threaded) test process.

/// The `Test` builder and system checks (zombies, descriptors).
mod support;

/// Issue 10, second round: regressions found by the adversarial probes (fuzz/adversarial/).
mod adversarial;

/// Issue 13: rooms depend one way, as docs/architecture.md draws them.
mod architecture;
/// `procscript run`, `check`, exit codes, `--help`, the REPL.
mod cli;
/// External commands: run, pipeline, Process(#{ command }) with pipes and files.
mod command;
/// The reference is generated from the code, and every documented example runs.
mod docs;
/// The library API in-process (no forking here: the test process has threads).
mod embed;
/// Script errors: rendering and catchable maps.
mod errors;
/// Issue 12: Python's printing and builtins, p.run(), fields, arity, the CLI's first uses.
mod first_use;
/// Pipes, queues, locks, events, barriers and shared values across processes.
mod ipc;
/// No orphans, --max-procs, resource limits.
mod limits;
/// Managers: shared dict, list, Value, Lock, Queue, Namespace proxies; CPython's tests.
mod manager;
/// Sockets: the echo servers under load, UDP and Unix examples, error kinds.
mod net;
/// Sockets as Python has them: CPython's test_socket/test_select translated, issue 10 items.
mod net_parity;
/// Process pools: map, imap, apply_async, task errors, dead workers, terminate.
mod pool;
/// Processes: start, join, names, exit codes, reaping, daemons, misuse errors.
mod process;
/// input() and the REPL at a real terminal (a pseudo-terminal): line editing, completion.
mod pty;
/// Queues and pipes under faults (signals, killed readers and writers) and their Python parity.
mod queue;
/// Issue 14: remote commands through OpenSSH against a throwaway loopback sshd.
mod remote;
/// Issue 14: pool workers on other hosts through OpenSSH, against the same sshd harness.
mod remote_pool;
/// Bad input never panics: generated calls of every native with wrong arguments.
mod robustness;
/// Every script in `scripts/` runs and behaves as documented.
mod scripts;
/// A throwaway OpenSSH server on loopback for the remote tests (a harness, no tests).
mod sshd;
/// Stress: 10,000 spawns, 500 children at once, 200 clients: no zombies, no leaked descriptors.
mod stress;
/// Locks, conditions, events, barriers, values and arrays against CPython's own tests.
mod sync;
/// --trace, --timeline and report.
mod trace;
