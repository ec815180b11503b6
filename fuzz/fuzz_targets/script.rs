//! Fuzz target: arbitrary script text, compiled and run in-process on an engine with every
//! procscript package installed. The goal: no panic (and, under ASan, no memory error) in
//! procscript's own code, whatever the script does.
//!
//! How the harness stays safe and bounded:
//! - **No process is ever created.** A watchdog thread lives for the whole run, so the
//!   process is multi-threaded and procscript refuses every fork (`Process.start`, `spawn`)
//!   with a catchable `ProcessError` (see src/process/fork.rs). procscript has no other way
//!   to start a process, and signals only go to children it registered, so none exist.
//! - **Work is bounded**: an operation limit, small string/array/map sizes and shallow call
//!   and expression depths.
//! - **Blocking waits are bounded**: a script may `sleep(1e9)`, `accept()`, lock a lock it
//!   holds or wait on an event nobody sets. procscript's SIGTERM handler is installed and,
//!   once an input has run for `WALL_LIMIT`, the watchdog sends SIGTERM to the fuzzing
//!   thread (repeatedly, until the input ends): procscript's waits end with `Interrupted`,
//!   and its progress hook stops the script, as on Ctrl-C. The flag is cleared before the
//!   next input. SIGINT keeps libFuzzer's handler, so Ctrl-C still stops the fuzzer.
//! - stdin is /dev/null (so `input()` returns `()` at once); `print` and `debug` output is
//!   discarded.

#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use procscript::rhai::Scope;
use procscript::Runtime;

/// Wall-clock budget of one input before the watchdog interrupts it.
const WALL_LIMIT: Duration = Duration::from_millis(200);

/// Deadline of the running input, in microseconds since `EPOCH`; 0 while none runs.
static DEADLINE_US: AtomicU64 = AtomicU64::new(0);
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The fuzzing thread, for `pthread_kill`.
struct MainThread(libc::pthread_t);
// SAFETY: a pthread_t is an opaque id, only passed to pthread_kill.
unsafe impl Send for MainThread {}
// SAFETY: as above; it is never mutated.
unsafe impl Sync for MainThread {}
static MAIN: OnceLock<MainThread> = OnceLock::new();

fn now_us() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

fn setup() {
    EPOCH.get_or_init(Instant::now);
    // SAFETY: pthread_self has no preconditions.
    let _ = MAIN.set(MainThread(unsafe { libc::pthread_self() }));

    // stdin from /dev/null.
    // SAFETY: the path is a valid C string; dup2 onto 0 only replaces stdin.
    unsafe {
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd >= 0 {
            libc::dup2(fd, 0);
            libc::close(fd);
        }
    }

    // procscript's SIGINT/SIGTERM handlers, then libFuzzer's SIGINT handler back.
    // SAFETY: an all-zero sigaction is a valid value; sigaction with a null new action only
    // reads the current one, and putting it back restores exactly that.
    unsafe {
        let mut sigint: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGINT, std::ptr::null(), &mut sigint);
        procscript::Runtime::builder().handle_signals(true).apply();
        libc::sigaction(libc::SIGINT, &sigint, std::ptr::null_mut());
    }

    // The watchdog: interrupts an input that outlives its deadline. Being a second thread,
    // it also makes procscript refuse to fork.
    std::thread::spawn(|| loop {
        std::thread::sleep(Duration::from_millis(20));
        let deadline = DEADLINE_US.load(Ordering::Acquire);
        if deadline != 0 && now_us() > deadline {
            let main = MAIN.get().unwrap().0;
            // SAFETY: the fuzzing thread lives as long as the process; SIGTERM has
            // procscript's handler, which only stores to an atomic.
            unsafe { libc::pthread_kill(main, libc::SIGTERM) };
        }
    });
    // Make sure the watchdog is running before any script could try to fork.
    while threads() < 2 {
        std::thread::yield_now();
    }
}

/// This process's threads, as procscript counts them before it forks.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}

fn runtime() -> Runtime {
    let mut runtime = Runtime::new();
    let engine = runtime.engine_mut();
    // After procscript's own (generous) limits.
    engine.set_max_operations(50_000);
    engine.set_max_call_levels(24);
    engine.set_max_expr_depths(32, 16);
    engine.set_max_string_size(4096);
    engine.set_max_array_size(256);
    engine.set_max_map_size(256);
    engine.on_print(|_| {});
    engine.on_debug(|_, _, _| {});
    runtime
}

thread_local! {
    static RUNTIME: Runtime = {
        setup();
        runtime()
    };
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    RUNTIME.with(|runtime| {
        let engine = runtime.engine();
        let Ok(ast) = engine.compile(text) else {
            return;
        };
        procscript::fuzzing::clear_signal();
        DEADLINE_US.store(now_us() + WALL_LIMIT.as_micros() as u64, Ordering::Release);
        let _ = engine.run_ast_with_scope(&mut Scope::new(), &ast);
        DEADLINE_US.store(0, Ordering::Release);
        procscript::fuzzing::clear_signal();
    });
});
