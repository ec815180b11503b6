//! The pool's bookkeeping, apart from sockets and processes: which tasks wait, which worker
//! holds which, what each call has received, and what a reply or a death means for it.
//!
//! The IO side ([`super::Pool`]) feeds it replies ([`Scheduler::handle_reply`]) and deaths
//! ([`Scheduler::buried`]) and writes the tasks that [`Scheduler::dispatch`] hands out; it
//! never decides anything itself. The unit tests at the bottom drive it with a mock in
//! place of the workers, as tokio tests its reaper with a mock of the OS.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use indicatif::ProgressBar;
use rhai::{Array, Dynamic, Map};

use super::protocol::ReplyMsg;
use crate::error::{Error, ErrorKind};

/// Which worker: its slot on the board (unique among the live workers).
pub(crate) type WorkerId = usize;

/// Tasks of a `map` or `imap` a worker may hold at once, queued behind the one it runs: a
/// few, so that it never waits for the parent, and not many, so that work stays balanced.
pub(crate) const LAZY_IN_FLIGHT: usize = 4;

/// How a job hands out its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// By position (`map`, `starmap`, `imap`, `apply`).
    Ordered,
    /// As they arrive (`imap_unordered`).
    Unordered,
}

/// A chunk of a job, framed and ready to write.
#[derive(Debug, Clone)]
pub(crate) struct Task {
    /// Its job.
    pub job: u64,
    /// The position of its first item.
    pub index: usize,
    /// How many items.
    pub count: usize,
    /// Sent at once to the least busy worker (`apply_async`), not a few at a time.
    pub eager: bool,
    /// The framed [`super::protocol::TaskMsg`].
    pub bytes: Rc<Vec<u8>>,
}

/// One pool call's worth of tasks and what came back.
#[derive(Debug)]
pub(crate) struct Job {
    order: Order,
    /// The results are wanted all together or not at all (`map`, `apply`, the `_async`
    /// forms), rather than one by one (`imap`).
    whole: bool,
    total: usize,
    received: usize,
    results: Vec<Option<Dynamic>>,
    arrived: VecDeque<Dynamic>,
    /// The failure an ordered walk meets first (a catchable error map), and the position
    /// from which results are missing because of it.
    error: Option<Map>,
    error_at: usize,
    bar: Option<ProgressBar>,
    /// Nobody will take the results (the script dropped its `AsyncResult`): the tasks still
    /// run, as in Python, and the job goes once it is done.
    detached: bool,
}

impl Job {
    /// A job of `total` results.
    pub(crate) fn new(order: Order, whole: bool, total: usize, bar: Option<ProgressBar>) -> Self {
        Self {
            order,
            whole,
            total,
            received: 0,
            results: if order == Order::Ordered {
                vec![None; total]
            } else {
                Vec::new()
            },
            arrived: VecDeque::new(),
            error: None,
            error_at: 0,
            bar,
            detached: false,
        }
    }

    fn done(&self) -> bool {
        self.error.is_some() || self.received == self.total
    }

    /// Whether the task at `index` is still wanted.
    fn wants(&self, index: usize) -> bool {
        self.received < self.total
            && (self.error.is_none()
                || (self.order == Order::Ordered && !self.whole && index < self.error_at))
    }

    /// The position from which results are not wanted any more (all of them when none are).
    fn unwanted_from(&self) -> usize {
        if self.whole || self.order == Order::Unordered {
            0
        } else {
            self.error_at
        }
    }
}

/// What [`Scheduler::next_result`] found.
#[derive(Debug)]
pub(crate) enum Next {
    /// The next result.
    Value(Dynamic),
    /// No more results.
    End,
    /// The job failed before this position.
    Failed(Map),
    /// Not there yet.
    Waiting,
}

/// How a worker ended, as the IO side saw it.
#[derive(Debug, Clone)]
pub(crate) struct Death {
    /// What to say: "a pool worker (ForkPoolWorker-3, pid 42) was killed by SIGKILL".
    pub what: String,
    /// Its exit code, if known (`-9` for SIGKILL).
    pub exitcode: Option<i64>,
    /// How many tasks it had started, by its own count (see [`super::board`]); `None` when
    /// it cannot tell (the first task sent is then taken to be running).
    pub started: Option<u64>,
    /// The kind of the error raised in the call whose task it was running: `ProcessError`,
    /// or `ConnectionError` when the ssh connection of a remote worker failed.
    pub kind: ErrorKind,
    /// An error to raise in one call although the worker ran none of its tasks: a remote
    /// worker that never started (see [`Scheduler::report`]).
    pub report: Option<Map>,
}

impl Death {
    /// A local worker's death: `ProcessError`, nothing to report beyond the task it ran.
    pub(crate) fn new(what: String, exitcode: Option<i64>, started: Option<u64>) -> Self {
        Self {
            what,
            exitcode,
            started,
            kind: ErrorKind::ProcessError,
            report: None,
        }
    }
}

#[derive(Debug)]
struct Slot {
    id: WorkerId,
    /// Tasks sent, in order; the first is the one running, or about to.
    in_flight: VecDeque<Task>,
    /// Tasks ever handed to it.
    assigned: usize,
    /// Replies received from it.
    replied: u64,
}

/// The bookkeeping of one pool.
#[derive(Debug, Default)]
pub(crate) struct Scheduler {
    jobs: HashMap<u64, Job>,
    pending: VecDeque<Task>,
    workers: Vec<Slot>,
    next_job: u64,
    max_tasks: Option<usize>,
    cancelled: Vec<(u64, usize)>,
    broken: Option<Map>,
    /// An error no call has raised yet (see [`Scheduler::report`]).
    unreported: Option<Map>,
}

impl Scheduler {
    /// A scheduler whose workers each take at most `max_tasks` tasks (`None`: no limit).
    pub(crate) fn new(max_tasks: Option<usize>) -> Self {
        Self {
            max_tasks,
            ..Self::default()
        }
    }

    /// A new worker, ready for tasks.
    pub(crate) fn add_worker(&mut self, id: WorkerId) {
        self.workers.push(Slot {
            id,
            in_flight: VecDeque::new(),
            assigned: 0,
            replied: 0,
        });
    }

    /// The number the next job gets.
    pub(crate) fn next_job_id(&self) -> u64 {
        self.next_job
    }

    /// Adds a job (numbered [`Scheduler::next_job_id`]) and its tasks; returns its number.
    pub(crate) fn add_job(&mut self, job: Job, tasks: Vec<Task>) -> u64 {
        let id = self.next_job;
        self.next_job += 1;
        self.jobs.insert(id, job);
        self.pending.extend(tasks);
        if let Some(error) = self.unreported.take() {
            self.fail(id, error, 0);
        }
        id
    }

    /// Why the pool takes no work: its initializer failed.
    pub(crate) fn broken(&self) -> Option<&Map> {
        self.broken.as_ref()
    }

    /// Raises `error` in one call: the oldest that someone waits for, else the next one
    /// made. For a failure that no task of any call ran into (a remote worker that could
    /// not start: its host is unreachable), which must not pass unnoticed.
    pub(crate) fn report(&mut self, error: Map) {
        let oldest = self
            .jobs
            .iter()
            .filter(|(_, j)| !j.done() && !j.detached)
            .map(|(id, _)| *id)
            .min();
        match oldest {
            Some(job) => self.fail(job, error, 0),
            None => self.unreported = Some(error),
        }
    }

    /// Whether a job has all its results, or has failed (a forgotten job counts as done).
    pub(crate) fn job_done(&self, job: u64) -> bool {
        self.jobs.get(&job).is_none_or(Job::done)
    }

    /// Whether nothing waits to be sent and no worker holds a task.
    pub(crate) fn idle(&self) -> bool {
        self.pending.is_empty() && self.workers.iter().all(|w| w.in_flight.is_empty())
    }

    /// Takes a finished job's results in order, or its error.
    pub(crate) fn take_results(&mut self, job: u64) -> Result<Array, Map> {
        let Some(job) = self.jobs.remove(&job) else {
            return Err(Error::process("the results of this call are gone").to_map());
        };
        if let Some(error) = job.error {
            return Err(error);
        }
        if let Some(bar) = job.bar {
            bar.finish_and_clear();
        }
        Ok(job
            .results
            .into_iter()
            .map(|r| r.unwrap_or(Dynamic::UNIT))
            .collect())
    }

    /// The result at `position` of an `imap` job (the next arrival for an unordered one).
    pub(crate) fn next_result(&mut self, job: u64, position: usize) -> Next {
        let Some(j) = self.jobs.get_mut(&job) else {
            return Next::End;
        };
        if position >= j.total {
            if let Some(bar) = j.bar.take() {
                bar.finish_and_clear();
            }
            return Next::End;
        }
        let value = match j.order {
            Order::Ordered => j.results[position].take(),
            Order::Unordered => j.arrived.pop_front(),
        };
        let failed = match j.order {
            Order::Ordered => j.error.is_some() && position >= j.error_at,
            Order::Unordered => j.error.is_some(),
        };
        match value {
            Some(value) => Next::Value(value),
            None if failed => Next::Failed(j.error.clone().unwrap_or_default()),
            None => Next::Waiting,
        }
    }

    /// Whether [`Scheduler::next_result`] has something to say for `position`.
    pub(crate) fn has_next(&self, job: u64, position: usize) -> bool {
        match self.jobs.get(&job) {
            None => true,
            Some(j) => {
                position >= j.total
                    || match j.order {
                        Order::Ordered => {
                            j.results[position].is_some()
                                || (j.error.is_some() && position >= j.error_at)
                        }
                        Order::Unordered => !j.arrived.is_empty() || j.error.is_some(),
                    }
            }
        }
    }

    /// Forgets a job: its queued tasks are not sent, the workers skip those they hold, and
    /// replies still to come are dropped.
    pub(crate) fn forget(&mut self, job: u64) {
        if let Some(j) = self.jobs.remove(&job) {
            if let Some(bar) = j.bar {
                bar.finish_and_clear();
            }
            if j.received < j.total {
                self.cancelled.push((job, 0));
            }
        }
    }

    /// Lets a job run to its end with nobody waiting for it: its results are dropped as they
    /// come (an `AsyncResult` the script dropped; its tasks still run, as in Python).
    pub(crate) fn detach(&mut self, job: u64) {
        if let Some(j) = self.jobs.get_mut(&job) {
            j.detached = true;
        }
        self.drop_if_detached(job);
    }

    fn drop_if_detached(&mut self, job: u64) {
        if self.jobs.get(&job).is_some_and(|j| j.detached && j.done()) {
            if let Some(bar) = self.jobs.remove(&job).and_then(|j| j.bar) {
                bar.finish_and_clear();
            }
        }
    }

    /// Cancellations to post on the board since the last call: `(job, from)`.
    pub(crate) fn take_cancellations(&mut self) -> Vec<(u64, usize)> {
        std::mem::take(&mut self.cancelled)
    }

    /// Records a failure of `job` at position `at`; the earliest one is the one reported.
    fn fail(&mut self, job: u64, error: Map, at: usize) {
        let Some(j) = self.jobs.get_mut(&job) else {
            return;
        };
        if j.error.is_none() || at < j.error_at {
            j.error = Some(error);
            j.error_at = at;
            self.cancelled.push((job, j.unwanted_from()));
        }
        if let Some(bar) = j.bar.take() {
            bar.abandon();
        }
        self.drop_if_detached(job);
    }

    /// Hands queued tasks to the least busy workers: `(worker, framed task)` to write.
    ///
    /// With `limit` (the pool can fork replacements), a worker that has been handed
    /// `max_tasks` tasks gets no more; without it (inside a `for` loop over `imap`, where no
    /// replacement can be forked), the limit waits for the next pool call.
    pub(crate) fn dispatch(&mut self, limit: bool) -> Vec<(WorkerId, Rc<Vec<u8>>)> {
        let mut out = Vec::new();
        if self.broken.is_some() {
            self.pending.clear();
            return out;
        }
        while let Some(task) = self.pending.front() {
            if !self
                .jobs
                .get(&task.job)
                .is_some_and(|j| j.wants(task.index))
            {
                self.pending.pop_front();
                continue;
            }
            let max = if limit { self.max_tasks } else { None };
            let Some(worker) = self
                .workers
                .iter_mut()
                .filter(|w| max.is_none_or(|m| w.assigned < m))
                .min_by_key(|w| w.in_flight.len())
            else {
                break;
            };
            if !task.eager && worker.in_flight.len() >= LAZY_IN_FLIGHT {
                break;
            }
            let task = self.pending.pop_front().expect("a task");
            out.push((worker.id, task.bytes.clone()));
            worker.assigned += 1;
            worker.in_flight.push_back(task);
        }
        out
    }

    /// Workers that have taken their `max_tasks` and finished them: to be ended and replaced.
    pub(crate) fn retiring(&self) -> Vec<WorkerId> {
        let Some(max) = self.max_tasks else {
            return Vec::new();
        };
        self.workers
            .iter()
            .filter(|w| w.assigned >= max && w.in_flight.is_empty())
            .map(|w| w.id)
            .collect()
    }

    /// Forgets a worker that holds no task (a retired one).
    pub(crate) fn remove_worker(&mut self, id: WorkerId) {
        self.workers
            .retain(|w| w.id != id || !w.in_flight.is_empty());
    }

    /// A reply from worker `id`. `Err` when it makes no sense (not the task the worker
    /// holds first): the IO side then ends that worker, and [`Scheduler::buried`] follows.
    pub(crate) fn handle_reply(&mut self, id: WorkerId, reply: ReplyMsg) -> Result<(), String> {
        let Some(w) = self.workers.iter().position(|w| w.id == id) else {
            return Err("a reply from an unknown worker".into());
        };
        match reply {
            ReplyMsg::InitFailed { error } => {
                self.break_pool(error);
                return Ok(());
            }
            // A remote worker's own business, which the IO side handles.
            ReplyMsg::StartFailed { .. } | ReplyMsg::Print { .. } => {
                return Err("a message that is not a reply to a task".into())
            }
            _ => {}
        }
        let expected = self.workers[w].in_flight.front().map(|t| (t.job, t.index));
        if reply.task() != expected {
            return Err(format!(
                "a reply for task {:?} where {expected:?} was expected",
                reply.task()
            ));
        }
        let worker = &mut self.workers[w];
        let task = worker.in_flight.pop_front().expect("checked above");
        worker.replied += 1;
        match reply {
            ReplyMsg::Done { values, .. } => self.done(task, values),
            ReplyMsg::Failed { error, .. } => self.fail(task.job, error, task.index),
            ReplyMsg::Skipped { .. } => {
                // Skipped by a cancellation that did not cover it (a reused or half-read
                // board entry): send it again.
                if self
                    .jobs
                    .get(&task.job)
                    .is_some_and(|j| j.wants(task.index))
                {
                    self.pending.push_front(task);
                }
            }
            ReplyMsg::InitFailed { .. } | ReplyMsg::StartFailed { .. } | ReplyMsg::Print { .. } => {
                unreachable!("handled above")
            }
        }
        Ok(())
    }

    fn done(&mut self, task: Task, values: Array) {
        let Some(job) = self.jobs.get_mut(&task.job) else {
            return;
        };
        if values.len() != task.count {
            let error = Error::process("a pool worker sent a reply of the wrong size");
            self.fail(task.job, error.to_map(), task.index);
            return;
        }
        job.received += values.len();
        if let Some(bar) = &job.bar {
            bar.inc(values.len() as u64);
            if job.received == job.total {
                bar.finish_and_clear();
            }
        }
        match job.order {
            Order::Ordered => {
                for (i, value) in values.into_iter().enumerate() {
                    if let Some(slot) = job.results.get_mut(task.index + i) {
                        *slot = Some(value);
                    }
                }
            }
            Order::Unordered => job.arrived.extend(values),
        }
        self.drop_if_detached(task.job);
    }

    /// The pool's initializer failed: every call fails with its error, and so will new ones.
    fn break_pool(&mut self, error: Map) {
        if self.broken.is_none() {
            self.broken = Some(error.clone());
        }
        self.pending.clear();
        let jobs: Vec<u64> = self.jobs.keys().copied().collect();
        for job in jobs {
            if !self.job_done(job) {
                self.fail(job, error.clone(), 0);
            }
        }
    }

    /// Worker `id` is gone. The task it was running fails its call with `death`'s message;
    /// the tasks it had not started go back to the front of the queue, in order.
    pub(crate) fn buried(&mut self, id: WorkerId, death: Death) {
        let Some(w) = self.workers.iter().position(|w| w.id == id) else {
            return;
        };
        let mut worker = self.workers.remove(w);
        let running = match death.started {
            Some(started) => started > worker.replied,
            None => true,
        };
        let running = if running {
            worker.in_flight.pop_front()
        } else {
            None
        };
        for task in worker.in_flight.drain(..).rev() {
            self.pending.push_front(task);
        }
        if let Some(error) = death.report {
            self.report(error);
        }
        if let Some(task) = running {
            let mut map = Error::new(
                death.kind,
                format!("{} while running this task", death.what),
            )
            .to_map();
            map.insert(
                "exitcode".into(),
                death.exitcode.map_or(Dynamic::UNIT, Dynamic::from_int),
            );
            self.fail(task.job, map, task.index);
        }
    }

    /// With no worker left and none to be forked, queued work can only fail with `message`.
    pub(crate) fn fail_if_no_workers(&mut self, message: &str) {
        if !self.workers.is_empty() {
            return;
        }
        for task in std::mem::take(&mut self.pending) {
            self.fail(task.job, Error::process(message).to_map(), task.index);
        }
    }

    /// `terminate()`: nothing more is sent, every call still waiting fails with `message`,
    /// and the workers are forgotten.
    pub(crate) fn terminate(&mut self, message: &str) {
        self.pending.clear();
        self.workers.clear();
        let jobs: Vec<u64> = self.jobs.keys().copied().collect();
        for job in jobs {
            if !self.job_done(job) {
                self.fail(job, Error::process(message).to_map(), 0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The workers, played by the test: what each was sent, decoded back to positions.
    struct Mock {
        sched: Scheduler,
        sent: HashMap<WorkerId, Vec<(u64, usize)>>,
    }

    impl Mock {
        fn new(workers: usize, max_tasks: Option<usize>) -> Self {
            let mut sched = Scheduler::new(max_tasks);
            for id in 0..workers {
                sched.add_worker(id);
            }
            Self {
                sched,
                sent: HashMap::new(),
            }
        }

        /// A job of `total` items in chunks of `chunk`.
        fn submit(&mut self, total: usize, chunk: usize, whole: bool, order: Order) -> u64 {
            let job = self.sched.next_job_id();
            let tasks = (0..total)
                .step_by(chunk)
                .map(|index| Task {
                    job,
                    index,
                    count: chunk.min(total - index),
                    eager: false,
                    bytes: Rc::new(format!("{job}:{index}").into_bytes()),
                })
                .collect();
            self.sched
                .add_job(Job::new(order, whole, total, None), tasks)
        }

        fn dispatch(&mut self, limit: bool) -> usize {
            let out = self.sched.dispatch(limit);
            let n = out.len();
            for (id, bytes) in out {
                let text = String::from_utf8(bytes.to_vec()).unwrap();
                let (job, index) = text.split_once(':').unwrap();
                self.sent
                    .entry(id)
                    .or_default()
                    .push((job.parse().unwrap(), index.parse().unwrap()));
            }
            n
        }

        /// Worker `id` answers its oldest task: values are the positions, doubled.
        fn answer(&mut self, id: WorkerId, count: usize) {
            let (job, index) = self.sent.get_mut(&id).unwrap().remove(0);
            let values = (index..index + count)
                .map(|i| Dynamic::from_int(2 * i as i64))
                .collect();
            self.sched
                .handle_reply(id, ReplyMsg::Done { job, index, values })
                .unwrap();
        }

        fn death(started: Option<u64>) -> Death {
            Death::new(
                "a pool worker (W, pid 1) was killed by SIGKILL".into(),
                Some(-9),
                started,
            )
        }

        /// A remote worker that never started: ssh could not connect.
        fn unreachable() -> Death {
            let error = Error::new(ErrorKind::ConnectionError, "ssh: connection refused");
            Death {
                kind: ErrorKind::ConnectionError,
                report: Some(error.to_map()),
                ..Death::new("a remote pool worker".into(), Some(255), Some(0))
            }
        }
    }

    fn ints(values: Array) -> Vec<i64> {
        values.into_iter().map(|v| v.as_int().unwrap()).collect()
    }

    #[test]
    fn a_map_is_spread_a_few_tasks_at_a_time_and_comes_back_in_order() {
        let mut m = Mock::new(2, None);
        let job = m.submit(20, 1, true, Order::Ordered);
        assert_eq!(m.dispatch(true), 2 * LAZY_IN_FLIGHT);
        assert_eq!(m.sent[&0].len(), LAZY_IN_FLIGHT);
        assert_eq!(m.sent[&1].len(), LAZY_IN_FLIGHT);
        while !m.sched.job_done(job) {
            for id in [1, 0] {
                if !m.sent[&id].is_empty() {
                    m.answer(id, 1);
                }
            }
            m.dispatch(true);
        }
        assert!(m.sched.idle());
        let results = ints(m.sched.take_results(job).unwrap());
        assert_eq!(results, (0..20).map(|i| 2 * i).collect::<Vec<_>>());
    }

    #[test]
    fn a_worker_killed_while_idle_fails_nothing_and_its_tasks_move() {
        let mut m = Mock::new(2, None);
        let job = m.submit(4, 1, true, Order::Ordered);
        m.dispatch(true);
        // Worker 0 died before reading anything: it started 0 tasks.
        m.sched.buried(0, Mock::death(Some(0)));
        assert!(!m.sched.job_done(job));
        assert_eq!(m.dispatch(true), 2, "its two tasks go to worker 1");
        for _ in 0..4 {
            m.answer(1, 1);
        }
        assert_eq!(ints(m.sched.take_results(job).unwrap()), vec![0, 2, 4, 6]);
    }

    #[test]
    fn a_worker_killed_while_running_fails_that_call_and_cancels_the_rest() {
        let mut m = Mock::new(2, None);
        let job = m.submit(10, 1, true, Order::Ordered);
        m.dispatch(true);
        m.answer(0, 1);
        // Worker 0 had started its second task (position 2) when it died.
        m.sched.buried(0, Mock::death(Some(2)));
        assert!(m.sched.job_done(job));
        // The whole map is cancelled, from position 0, so worker 1 skips what it holds.
        assert_eq!(m.sched.take_cancellations(), vec![(job, 0)]);
        assert_eq!(m.dispatch(true), 0, "nothing more of it is sent");
        let error = m.sched.take_results(job).unwrap_err();
        assert_eq!(error["exitcode"].as_int().unwrap(), -9);
        let message = error["message"].clone().into_string().unwrap();
        assert!(message.ends_with("killed by SIGKILL while running this task"));
        // The skipped replies of worker 1 are taken and dropped.
        for _ in 0..LAZY_IN_FLIGHT {
            let (job, index) = m.sent.get_mut(&1).unwrap().remove(0);
            m.sched
                .handle_reply(1, ReplyMsg::Skipped { job, index })
                .unwrap();
        }
        assert!(m.sched.idle());
    }

    #[test]
    fn an_imap_keeps_the_results_before_a_failure() {
        let mut m = Mock::new(1, None);
        let job = m.submit(6, 2, false, Order::Ordered);
        m.dispatch(true);
        m.answer(0, 2);
        let (j, index) = m.sent.get_mut(&0).unwrap().remove(0);
        let mut error = Map::new();
        error.insert("kind".into(), "ValueError".into());
        m.sched
            .handle_reply(
                0,
                ReplyMsg::Failed {
                    job: j,
                    index,
                    error,
                },
            )
            .unwrap();
        assert_eq!(m.sched.take_cancellations(), vec![(job, 2)]);
        assert!(matches!(m.sched.next_result(job, 0), Next::Value(v) if v.as_int().unwrap() == 0));
        assert!(matches!(m.sched.next_result(job, 1), Next::Value(v) if v.as_int().unwrap() == 2));
        assert!(
            matches!(m.sched.next_result(job, 2), Next::Failed(e) if e["kind"].to_string() == "ValueError")
        );
    }

    #[test]
    fn a_task_skipped_by_mistake_is_sent_again() {
        let mut m = Mock::new(1, None);
        let job = m.submit(2, 1, true, Order::Ordered);
        m.dispatch(true);
        let (j, index) = m.sent.get_mut(&0).unwrap().remove(0);
        m.sched
            .handle_reply(0, ReplyMsg::Skipped { job: j, index })
            .unwrap();
        assert_eq!(m.dispatch(true), 1);
        assert_eq!(m.sent[&0], vec![(job, 1), (job, 0)]);
    }

    #[test]
    fn a_reply_out_of_order_is_refused() {
        let mut m = Mock::new(1, None);
        let job = m.submit(2, 1, true, Order::Ordered);
        m.dispatch(true);
        let reply = ReplyMsg::Done {
            job,
            index: 1,
            values: vec![Dynamic::UNIT],
        };
        assert!(m.sched.handle_reply(0, reply).is_err());
        assert!(m
            .sched
            .handle_reply(7, ReplyMsg::Skipped { job, index: 0 })
            .is_err());
    }

    #[test]
    fn max_tasks_retires_a_worker_once_its_tasks_are_done() {
        let mut m = Mock::new(1, Some(2));
        let job = m.submit(3, 1, true, Order::Ordered);
        assert_eq!(m.dispatch(true), 2);
        assert!(m.sched.retiring().is_empty(), "still busy");
        m.answer(0, 1);
        m.answer(0, 1);
        assert_eq!(m.sched.retiring(), vec![0]);
        m.sched.remove_worker(0);
        m.sched.add_worker(1);
        assert_eq!(m.dispatch(true), 1);
        m.answer(1, 1);
        assert_eq!(ints(m.sched.take_results(job).unwrap()), vec![0, 2, 4]);
        // Where no replacement can be forked, the limit waits.
        let mut m = Mock::new(1, Some(1));
        m.submit(3, 1, true, Order::Ordered);
        assert_eq!(m.dispatch(false), 3);
    }

    #[test]
    fn a_failed_initializer_breaks_the_pool() {
        let mut m = Mock::new(2, None);
        let job = m.submit(4, 1, true, Order::Ordered);
        m.dispatch(true);
        let mut error = Map::new();
        error.insert("kind".into(), "ProcessError".into());
        m.sched
            .handle_reply(0, ReplyMsg::InitFailed { error })
            .unwrap();
        assert!(m.sched.broken().is_some());
        assert!(m.sched.job_done(job));
        m.sched.buried(0, Mock::death(Some(0)));
        let next = m.submit(1, 1, true, Order::Ordered);
        assert_eq!(m.dispatch(true), 0);
        assert!(!m.sched.job_done(next), "the IO side refuses new jobs");
    }

    #[test]
    fn forgetting_a_job_cancels_what_the_workers_hold() {
        let mut m = Mock::new(1, None);
        let job = m.submit(3, 1, false, Order::Unordered);
        m.dispatch(true);
        m.sched.forget(job);
        assert_eq!(m.sched.take_cancellations(), vec![(job, 0)]);
        assert!(m.sched.job_done(job));
        m.answer(0, 1); // a late reply for a forgotten job is dropped
    }

    #[test]
    fn a_detached_job_runs_to_its_end_and_then_goes() {
        let mut m = Mock::new(1, None);
        let job = m.submit(6, 1, true, Order::Ordered);
        m.dispatch(true);
        m.sched.detach(job);
        assert!(m.sched.take_cancellations().is_empty());
        for _ in 0..6 {
            m.answer(0, 1);
            m.dispatch(true);
        }
        assert!(m.sched.idle());
        assert!(m.sched.jobs.is_empty());
    }

    #[test]
    fn terminate_and_no_workers_fail_what_waits() {
        let mut m = Mock::new(1, None);
        let job = m.submit(2, 1, true, Order::Ordered);
        m.sched.buried(0, Mock::death(None));
        m.sched.fail_if_no_workers("no workers");
        assert!(m.sched.job_done(job));
        let mut m = Mock::new(1, None);
        let job = m.submit(2, 1, true, Order::Ordered);
        m.dispatch(true);
        m.sched.terminate("terminated");
        let error = m.sched.take_results(job).unwrap_err();
        assert_eq!(error["message"].to_string(), "terminated");
        assert!(m.sched.idle());
    }

    #[test]
    fn a_remote_worker_that_never_started_fails_one_call_and_its_tasks_move() {
        let mut m = Mock::new(2, None);
        let job = m.submit(4, 1, true, Order::Ordered);
        m.dispatch(true);
        m.sched.buried(0, Mock::unreachable());
        // The call fails with ssh's error, although none of its tasks ran there.
        assert!(m.sched.job_done(job));
        let error = m.sched.take_results(job).unwrap_err();
        assert_eq!(error["kind"].to_string(), "ConnectionError");
        assert!(error["message"].to_string().contains("connection refused"));
        // The next call runs on the other worker.
        let next = m.submit(2, 1, true, Order::Ordered);
        m.dispatch(true);
        while m.sent[&1].first().is_some_and(|(j, _)| *j != next) {
            let (j, index) = m.sent.get_mut(&1).unwrap().remove(0);
            m.sched
                .handle_reply(1, ReplyMsg::Skipped { job: j, index })
                .unwrap();
        }
        m.answer(1, 1);
        m.answer(1, 1);
        assert_eq!(ints(m.sched.take_results(next).unwrap()), vec![0, 2]);
    }

    #[test]
    fn a_failure_seen_between_calls_fails_the_next_call() {
        let mut m = Mock::new(2, None);
        m.sched.buried(0, Mock::unreachable());
        let job = m.submit(2, 1, true, Order::Ordered);
        assert!(m.sched.job_done(job), "failed as soon as it was made");
        assert_eq!(m.sched.take_cancellations(), vec![(job, 0)]);
        assert_eq!(m.dispatch(true), 0, "none of its tasks is sent");
        // Once only.
        let job = m.submit(1, 1, true, Order::Ordered);
        assert!(!m.sched.job_done(job));
        // A detached call is nobody's: the report goes to the next call instead.
        m.sched.detach(job);
        m.sched.buried(1, Mock::unreachable());
        let next = m.submit(1, 1, true, Order::Ordered);
        assert!(m.sched.job_done(next));
    }

    #[test]
    fn messages_that_answer_no_task_are_refused() {
        let mut m = Mock::new(1, None);
        m.submit(2, 1, true, Order::Ordered);
        m.dispatch(true);
        let error = Error::process("does not compile").to_map();
        assert!(m
            .sched
            .handle_reply(0, ReplyMsg::StartFailed { error })
            .is_err());
        assert!(m
            .sched
            .handle_reply(0, ReplyMsg::Print { text: "x".into() })
            .is_err());
        assert!(m.sched.broken().is_none());
    }
}
