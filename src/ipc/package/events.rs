//! `Event`, `Condition` and `Barrier`.

use super::*;
use crate::convert::type_error;

#[export_module]
#[allow(unreachable_pub)]
pub(super) mod event_functions {
    use super::*;

    /// An event flag shared by processes.
    pub type Event = super::Event;
    /// A condition variable shared by processes.
    pub type Condition = super::Condition;
    /// A barrier for a number of processes.
    pub type Barrier = super::Barrier;

    /// A flag processes can wait for; starts cleared.
    ///
    /// ```rhai
    /// let ready = Event();
    /// let p = spawn { ready.wait(); print("go"); };
    /// ready.set();
    /// p.join();
    /// ```
    #[rhai_fn(name = "Event", return_raw, volatile)]
    pub fn event_new() -> RhaiResult<Event> {
        Ok(super::Event::new()?)
    }

    /// Sets the flag and wakes every waiter.
    #[rhai_fn(name = "set", pure, volatile)]
    pub fn event_set(event: &mut Event) {
        event.set();
    }

    /// Clears the flag.
    #[rhai_fn(name = "clear", pure, volatile)]
    pub fn event_clear(event: &mut Event) {
        event.clear();
    }

    /// Whether the flag is set.
    #[rhai_fn(name = "is_set", pure, volatile)]
    pub fn event_is_set(event: &mut Event) -> bool {
        event.is_set()
    }

    /// Waits until the flag is set; returns `true`.
    #[rhai_fn(name = "wait", return_raw, pure, volatile)]
    pub fn event_wait(event: &mut Event) -> RhaiResult<bool> {
        Ok(event.wait(None)?)
    }

    /// Waits at most `timeout` seconds; returns the flag (`false` if the time ran out).
    #[rhai_fn(name = "wait", return_raw, pure, volatile)]
    pub fn event_wait_timeout(event: &mut Event, timeout: Dynamic) -> RhaiResult<bool> {
        Ok(event.wait(seconds(&timeout, "the wait timeout")?)?)
    }

    /// `<Event set>` or `<Event unset>`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn event_to_string(event: &mut Event) -> String {
        format!("<Event {}>", if event.is_set() { "set" } else { "unset" })
    }

    // Condition

    /// A condition variable with its own `RLock`: hold the lock (`with cond { ... }` or
    /// `acquire`), then `wait` for another process's `notify`.
    ///
    /// ```rhai
    /// let cond = Condition();
    /// let box = Value(0);
    /// let p = spawn { with cond { box.value = 42; cond.notify(); } };
    /// with cond { while box.value == 0 { cond.wait(); } }
    /// print(box.value);   // 42
    /// p.join();
    /// ```
    #[rhai_fn(name = "Condition", return_raw, volatile)]
    pub fn condition_new() -> RhaiResult<Condition> {
        Ok(super::Condition::new(None)?)
    }

    /// A condition variable over an existing `Lock` or `RLock` (Python's
    /// `Condition(lock)`); `()` makes a new `RLock`.
    ///
    /// ```rhai
    /// let lock = Lock();
    /// let cond = Condition(lock);
    /// with cond { print(lock.locked()); }   // true
    /// ```
    #[rhai_fn(name = "Condition", return_raw, volatile)]
    pub fn condition_new_with(lock: Dynamic) -> RhaiResult<Condition> {
        let lock = if lock.is_unit() {
            None
        } else if let Some(l) = lock.clone().try_cast::<Lock>() {
            Some(AnyLock::Lock(l))
        } else if let Some(l) = lock.clone().try_cast::<RLock>() {
            Some(AnyLock::RLock(l))
        } else {
            return Err(type_error(format!(
                "Condition(lock) takes a Lock, an RLock or (), not {}",
                crate::convert::type_name(&lock)
            ))
            .into());
        };
        Ok(super::Condition::new(lock)?)
    }

    /// Takes the condition's lock.
    #[rhai_fn(name = "acquire", return_raw, pure, volatile)]
    pub fn condition_acquire(cond: &mut Condition) -> RhaiResult<bool> {
        Ok(cond.lock().acquire(None)?)
    }

    /// Takes the condition's lock, waiting at most `timeout` seconds.
    #[rhai_fn(name = "acquire", return_raw, pure, volatile)]
    pub fn condition_acquire_timeout(cond: &mut Condition, timeout: Dynamic) -> RhaiResult<bool> {
        Ok(cond
            .lock()
            .acquire(super::flag_or_seconds(&timeout, "the acquire timeout")?)?)
    }

    /// Releases the condition's lock.
    #[rhai_fn(name = "release", return_raw, pure, volatile)]
    pub fn condition_release(cond: &mut Condition) -> RhaiResult<()> {
        Ok(cond.lock().release()?)
    }

    /// Lets the lock go, waits for a notify, and takes the lock back; returns `true`. A
    /// notify wakes exactly the waiters it counts, but what they wait for may have changed
    /// again before they run: wait in a loop that checks it (or use `wait_for`).
    /// `AssertionError` without the lock.
    #[rhai_fn(name = "wait", return_raw, pure, volatile)]
    pub fn condition_wait(cond: &mut Condition) -> RhaiResult<bool> {
        Ok(cond.wait(None)?)
    }

    /// As `wait()`, at most `timeout` seconds; `false` if the time ran out before a notify
    /// for this waiter.
    ///
    /// ```rhai
    /// let cond = Condition();
    /// with cond { print(cond.wait(0.01)); }   // false
    /// ```
    #[rhai_fn(name = "wait", return_raw, pure, volatile)]
    pub fn condition_wait_timeout(cond: &mut Condition, timeout: Dynamic) -> RhaiResult<bool> {
        Ok(cond.wait(seconds(&timeout, "the wait timeout")?)?)
    }

    /// Waits until `predicate` (a function returning a boolean) is true; returns `true`.
    #[rhai_fn(name = "wait_for", return_raw, pure, volatile)]
    pub fn condition_wait_for(
        ctx: NativeCallContext,
        cond: &mut Condition,
        predicate: FnPtr,
    ) -> RhaiResult<bool> {
        wait_for(&ctx, cond, predicate, None)
    }

    /// Waits at most `timeout` seconds until `predicate` is true; returns its last result.
    #[rhai_fn(name = "wait_for", return_raw, pure, volatile)]
    pub fn condition_wait_for_timeout(
        ctx: NativeCallContext,
        cond: &mut Condition,
        predicate: FnPtr,
        timeout: Dynamic,
    ) -> RhaiResult<bool> {
        let timeout = seconds(&timeout, "the wait timeout")?;
        wait_for(&ctx, cond, predicate, timeout)
    }

    /// Wakes exactly one waiting process, if any waits (the lock must be held, else
    /// `AssertionError`).
    ///
    /// ```rhai
    /// let cond = Condition();
    /// let woken = Value(0);
    /// let asleep = Semaphore(0);
    /// let ps = [];
    /// for i in 0..3 {
    ///     ps.push(spawn { with cond { asleep.release(); if cond.wait(30) { woken.add(1); } } });
    /// }
    /// for i in 0..3 { asleep.acquire(); }   // all three are waiting
    /// with cond { cond.notify(); }
    /// sleep(0.2);
    /// print(woken.value);   // 1: exactly one woke
    /// with cond { cond.notify_all(); }
    /// for p in ps { p.join(); }
    /// print(woken.value);   // 3
    /// ```
    #[rhai_fn(name = "notify", return_raw, pure, volatile)]
    pub fn condition_notify(cond: &mut Condition) -> RhaiResult<()> {
        Ok(cond.notify(1)?)
    }

    /// Wakes exactly `n` waiting processes (or all, if fewer wait).
    #[rhai_fn(name = "notify", return_raw, pure, volatile)]
    pub fn condition_notify_n(cond: &mut Condition, n: INT) -> RhaiResult<()> {
        Ok(cond.notify(count(n, "the number to notify")?)?)
    }

    /// Wakes every waiting process.
    #[rhai_fn(name = "notify_all", return_raw, pure, volatile)]
    pub fn condition_notify_all(cond: &mut Condition) -> RhaiResult<()> {
        Ok(cond.notify_all()?)
    }

    /// `<Condition(owner=None)>`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn condition_to_string(cond: &mut Condition) -> String {
        format!(
            "<Condition(owner={})>",
            cond.lock()
                .holder()
                .map_or("None".into(), |p| p.to_string())
        )
    }

    // Barrier

    /// A barrier: `wait()` returns once `parties` processes have called it.
    ///
    /// ```rhai
    /// let b = Barrier(2);
    /// let p = spawn { b.wait(); };
    /// b.wait();
    /// p.join();
    /// ```
    #[rhai_fn(name = "Barrier", return_raw, volatile)]
    pub fn barrier_new(parties: INT) -> RhaiResult<Barrier> {
        barrier_with(parties, Dynamic::UNIT, Dynamic::UNIT)
    }

    /// A barrier whose `action` (a function or closure, or `()`) runs in one of the
    /// parties, the last to arrive, each time it trips, before any party goes on.
    ///
    /// ```rhai
    /// let rounds = Value(0);
    /// let b = Barrier(2, || rounds.add(1));
    /// let p = spawn { b.wait(); b.wait(); };
    /// b.wait();
    /// b.wait();
    /// p.join();
    /// print(rounds.value);   // 2
    /// ```
    #[rhai_fn(name = "Barrier", return_raw, volatile)]
    pub fn barrier_new_action(parties: INT, action: Dynamic) -> RhaiResult<Barrier> {
        barrier_with(parties, action, Dynamic::UNIT)
    }

    /// A barrier with an `action` (or `()`) and a default `timeout` for `wait`, in seconds
    /// (`()`: none).
    ///
    /// ```rhai
    /// let b = Barrier(2, (), 0.05);
    /// try { b.wait(); } catch (e) { print(e.kind); }   // BrokenBarrierError
    /// print(b.broken);                                 // true
    /// ```
    #[rhai_fn(name = "Barrier", return_raw, volatile)]
    pub fn barrier_new_timeout(
        parties: INT,
        action: Dynamic,
        timeout: Dynamic,
    ) -> RhaiResult<Barrier> {
        barrier_with(parties, action, timeout)
    }

    /// Waits for all parties; returns this one's arrival index (0 for the first). If the
    /// barrier's timeout passes first, the barrier breaks: `BrokenBarrierError` here and in
    /// every party waiting.
    #[rhai_fn(name = "wait", return_raw, pure, volatile)]
    pub fn barrier_wait(ctx: NativeCallContext, barrier: &mut Barrier) -> RhaiResult<INT> {
        barrier_wait_for(&ctx, barrier, None)
    }

    /// Waits at most `timeout` seconds (`()`: the barrier's own timeout); when it passes,
    /// the barrier breaks, as in Python: `BrokenBarrierError` here and in every party
    /// waiting, until `reset()`.
    ///
    /// ```rhai
    /// let b = Barrier(3);
    /// let p = spawn { try { b.wait(30); } catch (e) { print(`child: ${e.kind}`); } };
    /// try { b.wait(0.2); } catch (e) { print(e.kind); }   // BrokenBarrierError
    /// p.join();                                          // child: BrokenBarrierError
    /// ```
    #[rhai_fn(name = "wait", return_raw, pure, volatile)]
    pub fn barrier_wait_timeout(
        ctx: NativeCallContext,
        barrier: &mut Barrier,
        timeout: Dynamic,
    ) -> RhaiResult<INT> {
        let timeout = seconds(&timeout, "the wait timeout")?;
        barrier_wait_for(&ctx, barrier, timeout)
    }

    /// Breaks the barrier: the parties waiting now, and every later `wait`, get a
    /// `BrokenBarrierError` (until `reset()`).
    ///
    /// ```rhai
    /// let b = Barrier(2);
    /// b.abort();
    /// try { b.wait(); } catch (e) { print(e.kind); }   // BrokenBarrierError
    /// ```
    #[rhai_fn(name = "abort", return_raw, pure, volatile)]
    pub fn barrier_abort(barrier: &mut Barrier) -> RhaiResult<()> {
        Ok(barrier.abort()?)
    }

    /// Empties the barrier for a new round: parties waiting now get a
    /// `BrokenBarrierError`, and a broken barrier works again.
    ///
    /// ```rhai
    /// let b = Barrier(1);
    /// b.abort();
    /// b.reset();
    /// print(b.broken);   // false
    /// print(b.wait());   // 0
    /// ```
    #[rhai_fn(name = "reset", return_raw, pure, volatile)]
    pub fn barrier_reset(barrier: &mut Barrier) -> RhaiResult<()> {
        Ok(barrier.reset()?)
    }

    /// Whether the barrier is broken (by `abort()`, a timeout, or an action that failed).
    ///
    /// ```rhai
    /// let b = Barrier(1, || throw "the action failed");
    /// try { b.wait(); } catch (e) { print(e); }   // the action failed
    /// print(b.broken);                            // true
    /// try { b.wait(); } catch (e) { print(e.kind); }   // BrokenBarrierError
    /// ```
    #[rhai_fn(get = "broken", pure, volatile)]
    pub fn barrier_broken(barrier: &mut Barrier) -> bool {
        barrier.broken()
    }

    /// How many parties it waits for.
    #[rhai_fn(get = "parties", pure)]
    pub fn barrier_parties(barrier: &mut Barrier) -> INT {
        barrier.parties().into()
    }

    /// How many are waiting now.
    #[rhai_fn(get = "n_waiting", pure, volatile)]
    pub fn barrier_n_waiting(barrier: &mut Barrier) -> INT {
        barrier.n_waiting().into()
    }

    /// `<Barrier parties=3 waiting=1>`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn barrier_to_string(barrier: &mut Barrier) -> String {
        if barrier.broken() {
            return format!("<Barrier parties={} broken>", barrier.parties());
        }
        format!(
            "<Barrier parties={} waiting={}>",
            barrier.parties(),
            barrier.n_waiting()
        )
    }
}

fn wait_for(
    ctx: &NativeCallContext,
    cond: &Condition,
    predicate: FnPtr,
    timeout: Option<Duration>,
) -> RhaiResult<bool> {
    let deadline = crate::sys::Deadline::after(timeout);
    loop {
        let result = predicate.call_within_context::<Dynamic>(ctx, ())?;
        let type_name = crate::convert::type_name(&result);
        let done = result.as_bool().map_err(|_| {
            type_error(format!(
                "a wait_for predicate must return a boolean, not {type_name}"
            ))
        })?;
        if done || deadline.passed() {
            return Ok(done);
        }
        cond.wait(deadline.left())?;
    }
}

fn barrier_with(parties: INT, action: Dynamic, timeout: Dynamic) -> RhaiResult<Barrier> {
    let parties = count(parties, "a Barrier's number of parties")?;
    let type_name = crate::convert::type_name(&action);
    let action = if action.is_unit() {
        None
    } else {
        Some(action.try_cast::<FnPtr>().ok_or_else(|| {
            type_error(format!(
                "a Barrier's action must be a function or (), not {type_name}"
            ))
        })?)
    };
    let timeout = seconds(&timeout, "a Barrier's timeout")?;
    Ok(Barrier::new(parties, action, timeout)?)
}

fn barrier_wait_for(
    ctx: &NativeCallContext,
    barrier: &Barrier,
    timeout: Option<Duration>,
) -> RhaiResult<INT> {
    let index = barrier.wait(timeout, |action: &FnPtr| {
        action.call_within_context::<Dynamic>(ctx, ()).map(|_| ())
    })?;
    Ok(index.into())
}
