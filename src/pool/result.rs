//! `AsyncResult`: what `apply_async`, `map_async` and `starmap_async` return, and the
//! callbacks that run in the script's process when the result comes.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use rhai::{Dynamic, EvalAltResult, FnPtr, Map, NativeCallContext};

use super::{raise, Pool};
use crate::error::{Error, ErrorKind};

/// Functions to call with the value (`callback`) or the error map (`error_callback`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Callbacks {
    /// Called with the result (the list, for `map_async`).
    pub callback: Option<FnPtr>,
    /// Called with the error map.
    pub error_callback: Option<FnPtr>,
}

impl Callbacks {
    /// Whether there is any.
    pub(crate) fn any(&self) -> bool {
        self.callback.is_some() || self.error_callback.is_some()
    }
}

/// A result to come: clones share it.
#[derive(Clone)]
pub(crate) struct AsyncResult(Rc<Pending>);

struct Pending {
    pool: Pool,
    job: u64,
    /// `apply_async`: the one value, not a list of one.
    single: bool,
    outcome: RefCell<Option<Result<Dynamic, Map>>>,
    callbacks: RefCell<Option<Callbacks>>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        // A result nobody holds: its tasks still run, as in Python (`apply_async` for the
        // side effects, then `close()` and `join()`).
        if self.outcome.borrow().is_none() {
            self.pool.detach(self.job);
        }
    }
}

impl AsyncResult {
    /// The result of `job` on `pool`; with callbacks, the pool keeps it until they have run
    /// (even if the script drops it, as Python does).
    pub(crate) fn new(pool: &Pool, job: u64, single: bool, callbacks: Callbacks) -> Self {
        let any = callbacks.any();
        let result = Self(Rc::new(Pending {
            pool: pool.clone(),
            job,
            single,
            outcome: RefCell::new(None),
            callbacks: RefCell::new(any.then_some(callbacks)),
        }));
        if any {
            pool.watch(result.clone());
        }
        result
    }

    /// Its job on the pool.
    pub(crate) fn job(&self) -> u64 {
        self.0.job
    }

    /// Takes the job's outcome from the pool once it is done.
    pub(crate) fn settle(&self) {
        if self.0.outcome.borrow().is_some() || !self.0.pool.job_done(self.0.job) {
            return;
        }
        let single = self.0.single;
        let outcome = self.0.pool.take_results(self.0.job).map(|mut values| {
            if single {
                values.pop().unwrap_or(Dynamic::UNIT)
            } else {
                Dynamic::from_array(values)
            }
        });
        *self.0.outcome.borrow_mut() = Some(outcome);
    }

    /// Calls its callback or error callback, once, after [`AsyncResult::settle`].
    pub(crate) fn run_callback(&self, ctx: &NativeCallContext) -> Result<(), Box<EvalAltResult>> {
        let Some(callbacks) = self.0.callbacks.borrow_mut().take() else {
            return Ok(());
        };
        let outcome = self.0.outcome.borrow().clone();
        match outcome {
            Some(Ok(value)) => {
                if let Some(f) = callbacks.callback {
                    let _: Dynamic = f.call_within_context(ctx, (value,))?;
                }
            }
            Some(Err(error)) => {
                if let Some(f) = callbacks.error_callback {
                    let _: Dynamic = f.call_within_context(ctx, (Dynamic::from_map(error),))?;
                }
            }
            None => {}
        }
        Ok(())
    }

    /// Waits at most `timeout` (`None`: no limit) for the outcome; whether it came. Due
    /// callbacks run first, this one's included, as in Python.
    pub(crate) fn wait(
        &self,
        ctx: &NativeCallContext,
        timeout: Option<Duration>,
    ) -> Result<bool, Box<EvalAltResult>> {
        if self.0.outcome.borrow().is_none()
            && !self.0.pool.wait_job(Some(ctx), self.0.job, timeout)?
        {
            return Ok(false);
        }
        self.0.pool.run_callbacks(ctx)?;
        self.settle();
        Ok(true)
    }

    /// The value, or the task's error raised again; a `TimeoutError` after `timeout`.
    pub(crate) fn get(
        &self,
        ctx: &NativeCallContext,
        timeout: Option<Duration>,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        if !self.wait(ctx, timeout)? {
            return Err(Error::new(
                ErrorKind::TimeoutError,
                "the pool task did not finish in time",
            )
            .into());
        }
        match self.0.outcome.borrow().as_ref() {
            Some(Ok(value)) => Ok(value.clone()),
            Some(Err(map)) => Err(raise(map.clone())),
            None => Err(Error::process("the pool task's result is gone").into()),
        }
    }

    /// Whether the outcome has come (looking without waiting).
    pub(crate) fn ready(&self, ctx: &NativeCallContext) -> Result<bool, Box<EvalAltResult>> {
        if self.0.outcome.borrow().is_none() {
            self.0.pool.poke(Some(ctx))?;
            self.0.pool.run_callbacks(ctx)?;
            self.settle();
        }
        Ok(self.0.outcome.borrow().is_some())
    }

    /// Whether it finished without an error; `ValueError` while it is not ready.
    pub(crate) fn successful(&self, ctx: &NativeCallContext) -> Result<bool, Box<EvalAltResult>> {
        if !self.ready(ctx)? {
            return Err(Error::value("the pool task is not ready yet").into());
        }
        Ok(matches!(self.0.outcome.borrow().as_ref(), Some(Ok(_))))
    }

    /// `<AsyncResult ready>` or `<AsyncResult pending>`.
    pub(crate) fn describe(&self) -> String {
        let state = if self.0.outcome.borrow().is_some() {
            "ready"
        } else {
            "pending"
        };
        format!("<AsyncResult {state}>")
    }
}
