//! `Lock` and `RLock`, registered once for both, and `Semaphore`/`BoundedSemaphore`.

use rhai::{FuncRegistration, Module};

use super::*;

/// What `Lock` and `RLock` have alike, for [`register_lock`].
trait ScriptLock: Clone + rhai::Variant {
    fn make() -> Result<Self, Error>;
    fn acquire(&self, timeout: Option<Duration>) -> Result<bool, Error>;
    fn release(&self) -> Result<(), Error>;
    fn locked(&self) -> bool;
    fn holder(&self) -> Option<u32>;
    fn describe(&self) -> String;
}

macro_rules! script_lock {
    ($($lock:ty),*) => {$(
        impl ScriptLock for $lock {
            fn make() -> Result<Self, Error> {
                <$lock>::new()
            }
            fn acquire(&self, timeout: Option<Duration>) -> Result<bool, Error> {
                <$lock>::acquire(self, timeout)
            }
            fn release(&self) -> Result<(), Error> {
                <$lock>::release(self)
            }
            fn locked(&self) -> bool {
                <$lock>::locked(self)
            }
            fn holder(&self) -> Option<u32> {
                <$lock>::holder(self)
            }
            fn describe(&self) -> String {
                <$lock>::describe(self)
            }
        }
    )*};
}

script_lock!(Lock, RLock);

/// The documentation of one lock type's functions, for the reference and `help`.
struct LockDocs {
    /// The type's name, and the name of the function that makes one.
    name: &'static str,
    new: &'static str,
    acquire: &'static str,
    acquire_timeout: &'static str,
    release: &'static str,
    locked: &'static str,
    holder: &'static str,
    to_string: &'static str,
}

/// `text` as Rhai keeps a doc comment: each line behind `///`.
fn comment(text: &str) -> String {
    let lines: Vec<String> = text
        .lines()
        .map(|line| format!("/// {line}").trim_end().to_string())
        .collect();
    lines.join("\n")
}

/// The one registration of Python's two locks: `Lock` and `RLock` have the same functions
/// (they differ in what `acquire` allows and in what `to_string` shows), each type with its
/// own documentation.
fn register_lock<L: ScriptLock>(lib: &mut Module, docs: &LockDocs) {
    let name = docs.name;
    let this = format!("lock: &mut {name}");
    lib.set_custom_type::<L>(name);
    FuncRegistration::new(name)
        .with_volatility(true)
        .with_params_info([format!("RhaiResult<{name}>")])
        .with_comments([comment(docs.new)])
        .set_into_module(lib, || -> RhaiResult<L> { Ok(L::make()?) });
    FuncRegistration::new("acquire")
        .with_volatility(true)
        .with_params_info([this.as_str(), "RhaiResult<bool>"])
        .with_comments([comment(docs.acquire)])
        .set_into_module(lib, |lock: &mut L| -> RhaiResult<bool> {
            Ok(lock.acquire(None)?)
        });
    FuncRegistration::new("acquire")
        .with_volatility(true)
        .with_params_info([this.as_str(), "timeout: Dynamic", "RhaiResult<bool>"])
        .with_comments([comment(docs.acquire_timeout)])
        .set_into_module(lib, |lock: &mut L, timeout: Dynamic| -> RhaiResult<bool> {
            Ok(lock.acquire(flag_or_seconds(&timeout, "the acquire timeout")?)?)
        });
    FuncRegistration::new("release")
        .with_volatility(true)
        .with_params_info([this.as_str(), "RhaiResult<()>"])
        .with_comments([comment(docs.release)])
        .set_into_module(lib, |lock: &mut L| -> RhaiResult<()> {
            Ok(lock.release()?)
        });
    FuncRegistration::new("locked")
        .with_volatility(true)
        .with_params_info([this.as_str(), "bool"])
        .with_comments([comment(docs.locked)])
        .set_into_module(lib, |lock: &mut L| lock.locked());
    FuncRegistration::new_getter("holder")
        .with_volatility(true)
        .with_params_info([this.as_str(), "Dynamic"])
        .with_comments([comment(docs.holder)])
        .set_into_module(lib, |lock: &mut L| {
            lock.holder()
                .map_or(Dynamic::UNIT, |p| Dynamic::from_int(p.into()))
        });
    for to_string in ["to_string", "to_debug"] {
        FuncRegistration::new(to_string)
            .with_params_info([this.as_str(), "String"])
            .with_comments([comment(docs.to_string)])
            .set_into_module(lib, |lock: &mut L| lock.describe());
    }
}

/// Registers `Lock` and `RLock`.
pub(super) fn register_locks(lib: &mut Module) {
    register_lock::<Lock>(lib, &LOCK_DOCS);
    register_lock::<RLock>(lib, &RLOCK_DOCS);
}

const LOCK_DOCS: LockDocs = LockDocs {
    name: "Lock",
    new: "\
A lock for processes. If its holder dies without releasing it (killed, crashed, or
ended), the kernel wakes a waiting `acquire` at once, which frees the lock and fails
with a `ProcessError` naming the dead process; acquiring again then works.

```rhai
let lock = Lock();
with lock { print(\"only one process at a time here\"); }
```",
    acquire: "\
Takes the lock, waiting as long as it takes. Acquiring a `Lock` this process already
holds is a `ProcessError` (it would wait forever): use an `RLock` for that.",
    acquire_timeout: "\
Takes the lock, waiting at most `timeout` seconds; returns whether it did.
`acquire(false)` does not wait, as Python's `acquire(block=False)`.",
    release: "Frees the lock (any process may); `ValueError` if it is not held.",
    locked: "\
Whether some process holds the lock (Python's `locked()`).

```rhai
let lock = Lock();
print(lock.locked());   // false
with lock { print(lock.locked()); }   // true
```",
    holder: "The pid of the process holding the lock, `()` when it is free.",
    to_string: "`<Lock(owner=4242)>` or `<Lock(owner=None)>`.",
};

const RLOCK_DOCS: LockDocs = LockDocs {
    name: "RLock",
    new: "\
A reentrant lock: the process holding it may acquire it again, and releases it as
many times. Its holder dying is handled as for `Lock`.",
    acquire: "Takes the lock (again, if this process holds it).",
    acquire_timeout: "Takes the lock, waiting at most `timeout` seconds; returns whether it did.",
    release: "\
Releases one level; `AssertionError` if this process does not hold it (as Python's
`multiprocessing.RLock`).

```rhai
let r = RLock();
r.acquire();
r.release();
try { r.release(); } catch (e) { print(e.kind); }   // AssertionError
```",
    locked: "\
Whether some process holds the lock.

```rhai
let r = RLock();
with r { with r { print(r.locked()); } }   // true
print(r.locked());                         // false
```",
    holder: "The pid of the process holding the lock, `()` when it is free.",
    to_string: "`<RLock(owner=4242, count=2)>` or `<RLock(owner=None, count=0)>`.",
};

#[export_module]
#[allow(unreachable_pub)]
pub(super) mod semaphore_functions {
    use super::*;

    /// A (possibly bounded) semaphore shared by processes.
    pub type Semaphore = super::Semaphore;

    /// A semaphore starting at 1.
    #[rhai_fn(name = "Semaphore", return_raw, volatile)]
    pub fn semaphore_new() -> RhaiResult<Semaphore> {
        Ok(super::Semaphore::new(1, false)?)
    }

    /// A semaphore starting at `n`: at most `n` holders at once.
    ///
    /// ```rhai
    /// let slots = Semaphore(2);
    /// with slots { print("one of at most two"); }
    /// ```
    #[rhai_fn(name = "Semaphore", return_raw, volatile)]
    pub fn semaphore_new_n(n: INT) -> RhaiResult<Semaphore> {
        Ok(super::Semaphore::new(
            count(n, "a Semaphore's value")?,
            false,
        )?)
    }

    /// A bounded semaphore starting at 1.
    #[rhai_fn(name = "BoundedSemaphore", return_raw, volatile)]
    pub fn bounded_new() -> RhaiResult<Semaphore> {
        Ok(super::Semaphore::new(1, true)?)
    }

    /// A semaphore starting at `n` that may never go above `n`: releasing it more often
    /// than it was acquired is a `ValueError`.
    #[rhai_fn(name = "BoundedSemaphore", return_raw, volatile)]
    pub fn bounded_new_n(n: INT) -> RhaiResult<Semaphore> {
        Ok(super::Semaphore::new(
            count(n, "a BoundedSemaphore's value")?,
            true,
        )?)
    }

    /// Takes one, waiting while the value is 0.
    #[rhai_fn(name = "acquire", return_raw, pure, volatile)]
    pub fn semaphore_acquire(sem: &mut Semaphore) -> RhaiResult<bool> {
        Ok(sem.acquire(None)?)
    }

    /// Takes one, waiting at most `timeout` seconds; returns whether it did.
    #[rhai_fn(name = "acquire", return_raw, pure, volatile)]
    pub fn semaphore_acquire_timeout(sem: &mut Semaphore, timeout: Dynamic) -> RhaiResult<bool> {
        Ok(sem.acquire(super::flag_or_seconds(&timeout, "the acquire timeout")?)?)
    }

    /// Gives one back (`ValueError` past a bounded semaphore's initial value).
    #[rhai_fn(name = "release", return_raw, pure, volatile)]
    pub fn semaphore_release(sem: &mut Semaphore) -> RhaiResult<()> {
        Ok(sem.release()?)
    }

    /// The current value.
    #[rhai_fn(name = "get_value", pure, volatile)]
    pub fn semaphore_value(sem: &mut Semaphore) -> INT {
        sem.value().into()
    }

    /// `<Semaphore(value=2)>` or `<BoundedSemaphore(value=2)>`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn semaphore_to_string(sem: &mut Semaphore) -> String {
        let name = if sem.is_bounded() {
            "BoundedSemaphore"
        } else {
            "Semaphore"
        };
        format!("<{name}(value={})>", sem.value())
    }
}
