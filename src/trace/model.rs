//! The trace of a run, as written to YAML and read back by `procscript report`.

use serde::{Deserialize, Serialize};

use super::Event;

/// How a traced process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ExitStatus {
    /// The exit code, if it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// The signal number, if a signal ended it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// The signal's name (`SIGKILL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_name: Option<String>,
}

impl ExitStatus {
    /// Python's `exitcode` text: `0`, `1`, `-SIGKILL`.
    pub(crate) fn short(&self) -> String {
        match (self.code, &self.signal_name, self.signal) {
            (Some(code), _, _) => code.to_string(),
            (None, Some(name), _) => format!("-{name}"),
            (None, None, Some(sig)) => format!("-{sig}"),
            _ => "?".into(),
        }
    }
}

/// One process of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TracedProcess {
    /// Its pid.
    pub pid: i32,
    /// Its parent's pid.
    pub ppid: i32,
    /// Its name (`MainProcess`, `Process-1`, `Process-1:1`).
    pub name: String,
    /// What it ran: a function name, `run`, `spawn`, a command, or the script's path.
    pub target: String,
    /// When it started, in seconds from the start of the run.
    pub start: f64,
    /// When it ended, if it was seen to end.
    #[serde(default)]
    pub end: Option<f64>,
    /// How it ended, if known.
    #[serde(default)]
    pub exit: Option<ExitStatus>,
    /// User CPU seconds.
    #[serde(default)]
    pub user_cpu: Option<f64>,
    /// System CPU seconds.
    #[serde(default)]
    pub sys_cpu: Option<f64>,
    /// Peak resident memory, KiB.
    #[serde(default)]
    pub max_rss_kib: Option<i64>,
}

impl TracedProcess {
    /// How long it ran, if it was seen to end.
    pub(crate) fn duration(&self) -> Option<f64> {
        self.end.map(|end| end - self.start)
    }
}

/// Something one process did to another, in time order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TraceEvent {
    /// Seconds from the start of the run.
    pub t: f64,
    /// `spawn`, `exit`, `join`, `terminate` or `kill`.
    pub event: String,
    /// The process it concerns.
    pub pid: i32,
    /// The process that did it (for spawn, join, terminate, kill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<i32>,
}

/// A whole traced run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Trace {
    /// Format version of this file.
    pub procscript_trace: u32,
    /// The script that ran.
    pub script: String,
    /// Seconds from the main process's start to its end.
    pub duration: f64,
    /// Every process, in the order they started (the main process first).
    pub processes: Vec<TracedProcess>,
    /// Spawns, exits, joins and signals, in time order.
    pub events: Vec<TraceEvent>,
}

/// Rounds to microseconds, so that the YAML stays readable.
fn micros(t: f64) -> f64 {
    (t * 1e6).round() / 1e6
}

impl TracedProcess {
    /// A process just spawned at `start` (seconds into the run), not yet seen to end.
    fn started(pid: i32, ppid: i32, name: &str, target: &str, start: f64) -> Self {
        Self {
            pid,
            ppid,
            name: name.to_string(),
            target: target.to_string(),
            start,
            end: None,
            exit: None,
            user_cpu: None,
            sys_cpu: None,
            max_rss_kib: None,
        }
    }

    /// Records how it ended, from its exit event, at `end` seconds into the run.
    fn ended(&mut self, exit: &Event, end: f64) {
        let Event::Exit {
            code,
            signal,
            user_cpu,
            sys_cpu,
            max_rss_kib,
            ..
        } = exit
        else {
            return;
        };
        self.end = Some(end.max(self.start));
        self.exit = Some(ExitStatus {
            code: *code,
            signal: *signal,
            signal_name: signal
                .and_then(|s| nix::sys::signal::Signal::try_from(s).ok())
                .map(|s| s.as_str().to_string()),
        });
        self.user_cpu = Some(micros(*user_cpu));
        self.sys_cpu = Some(micros(*sys_cpu));
        self.max_rss_kib = Some(*max_rss_kib);
    }
}

impl TraceEvent {
    /// The log entry of `event`, its time made relative by `rel`.
    fn of(event: &Event, rel: impl Fn(f64) -> f64) -> Self {
        let (t, kind, pid, by) = match event {
            Event::Spawn { t, pid, ppid, .. } => (t, "spawn", pid, Some(*ppid)),
            Event::Exit { t, pid, .. } => (t, "exit", pid, None),
            Event::Join { t, pid, by } => (t, "join", pid, Some(*by)),
            Event::Terminate { t, pid, by } => (t, "terminate", pid, Some(*by)),
            Event::Kill { t, pid, by } => (t, "kill", pid, Some(*by)),
        };
        Self {
            t: rel(*t),
            event: kind.into(),
            pid: *pid,
            by,
        }
    }
}

impl Trace {
    /// Folds a run's events (times on the monotonic clock) into a trace starting at `started`:
    /// each spawn starts a process, each exit ends the latest process with its pid (pids can
    /// be reused in a long run), and every event goes into the log, in time order.
    pub(crate) fn from_events(script: &str, started: f64, events: &[Event]) -> Self {
        let rel = |t: f64| micros(t - started);
        let mut processes: Vec<TracedProcess> = Vec::new();
        let mut log: Vec<TraceEvent> = Vec::with_capacity(events.len());
        for event in events {
            match event {
                Event::Spawn {
                    t,
                    pid,
                    ppid,
                    name,
                    target,
                } => {
                    processes.push(TracedProcess::started(*pid, *ppid, name, target, rel(*t)));
                }
                Event::Exit { t, pid, .. } => {
                    if let Some(p) = processes
                        .iter_mut()
                        .rev()
                        .find(|p| p.pid == *pid && p.end.is_none())
                    {
                        p.ended(event, rel(*t));
                    }
                }
                Event::Join { .. } | Event::Terminate { .. } | Event::Kill { .. } => {}
            }
            log.push(TraceEvent::of(event, rel));
        }
        processes.sort_by(|a, b| a.start.total_cmp(&b.start));
        log.sort_by(|a, b| a.t.total_cmp(&b.t));
        let duration = processes
            .first()
            .and_then(|p| p.end)
            .unwrap_or_else(|| log.last().map_or(0.0, |e| e.t));
        Self {
            procscript_trace: 1,
            script: script.to_string(),
            duration,
            processes,
            events: log,
        }
    }

    /// The processes depth-first from the root, each with its depth and whether it is the
    /// last of its siblings (for drawing trees).
    ///
    /// Every process appears exactly once, under its parent: the latest process with its
    /// parent's pid that started no later than it did (pids can be reused in a long run).
    /// Processes whose parents name each other in a cycle, which only a hand-made trace can
    /// hold, are listed after the rest, each cycle from its first member in the file (see
    /// [`Trace::cycles`]). Time O(n log n) and memory O(n) for n processes, at any depth.
    pub(crate) fn tree(&self) -> Vec<(usize, bool, &TracedProcess)> {
        self.layout()
            .0
            .into_iter()
            .map(|(depth, last, i)| (depth, last, &self.processes[i]))
            .collect()
    }

    /// The pids at which [`Trace::tree`] had to start listing a parent-pid cycle (empty for
    /// a trace procscript wrote).
    #[cfg_attr(not(feature = "cli"), allow(dead_code))] // used by the binary
    pub(crate) fn cycles(&self) -> Vec<i32> {
        self.layout()
            .1
            .into_iter()
            .map(|i| self.processes[i].pid)
            .collect()
    }

    /// Each process's parent, as an index into `processes`.
    fn parents(&self) -> Vec<Option<usize>> {
        // Indices of the processes with each pid, by start time.
        let mut by_pid: std::collections::HashMap<i32, Vec<usize>> =
            std::collections::HashMap::new();
        for (i, p) in self.processes.iter().enumerate() {
            by_pid.entry(p.pid).or_default().push(i);
        }
        for list in by_pid.values_mut() {
            list.sort_by(|&a, &b| self.processes[a].start.total_cmp(&self.processes[b].start));
        }
        self.processes
            .iter()
            .enumerate()
            .map(|(i, child)| {
                let list = by_pid.get(&child.ppid)?;
                // The candidates that started no later than the child, latest first.
                let end = list.partition_point(|&q| self.processes[q].start <= child.start);
                list[..end].iter().rev().copied().find(|&q| q != i)
            })
            .collect()
    }

    /// The tree as (depth, last sibling, index) in listing order, and the indices at which
    /// listing a cycle began.
    fn layout(&self) -> (Vec<(usize, bool, usize)>, Vec<usize>) {
        let n = self.processes.len();
        let parents = self.parents();
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut roots = Vec::new();
        for (i, parent) in parents.iter().enumerate() {
            match parent {
                Some(p) => children[*p].push(i),
                None => roots.push(i),
            }
        }
        let mut out = Vec::with_capacity(n);
        let mut seen = vec![false; n];
        let mut stack: Vec<(usize, usize, bool)> = Vec::new();
        let mut walk = |start: &[usize], seen: &mut Vec<bool>, out: &mut Vec<_>| {
            let count = start.len();
            stack.extend(
                start
                    .iter()
                    .enumerate()
                    .rev()
                    .map(|(k, &i)| (i, 0, k + 1 == count)),
            );
            while let Some((i, depth, last)) = stack.pop() {
                seen[i] = true;
                out.push((depth, last, i));
                // In a cycle, the child that leads back to where listing began is seen.
                let next: Vec<usize> = children[i].iter().copied().filter(|&c| !seen[c]).collect();
                let count = next.len();
                stack.extend(
                    next.into_iter()
                        .enumerate()
                        .rev()
                        .map(|(k, c)| (c, depth + 1, k + 1 == count)),
                );
            }
        };
        walk(&roots, &mut seen, &mut out);
        let mut cycles = Vec::new();
        for i in 0..n {
            if !seen[i] {
                cycles.push(i);
                walk(&[i], &mut seen, &mut out);
            }
        }
        (out, cycles)
    }

    /// Checks a trace read from a file: every time and CPU figure must be a finite number,
    /// so that drawing it takes bounded work. The error names the field.
    #[cfg_attr(not(feature = "cli"), allow(dead_code))] // used by the binary
    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
        fn finite(value: f64, field: &dyn Fn() -> String) -> std::result::Result<(), String> {
            if value.is_finite() {
                Ok(())
            } else {
                Err(format!(
                    "`{}` is {value}; it must be a finite number of seconds",
                    field()
                ))
            }
        }
        if self.procscript_trace != 1 {
            return Err(format!(
                "`procscript_trace` is {}; this procscript reads version 1",
                self.procscript_trace
            ));
        }
        finite(self.duration, &|| "duration".into())?;
        for (i, p) in self.processes.iter().enumerate() {
            finite(p.start, &|| format!("processes[{i}].start"))?;
            for (name, value) in [
                ("end", p.end),
                ("user_cpu", p.user_cpu),
                ("sys_cpu", p.sys_cpu),
            ] {
                if let Some(value) = value {
                    finite(value, &|| format!("processes[{i}].{name}"))?;
                }
            }
        }
        for (i, e) in self.events.iter().enumerate() {
            finite(e.t, &|| format!("events[{i}].t"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Trace {
        let events = vec![
            Event::Spawn {
                t: 100.0,
                pid: 10,
                ppid: 1,
                name: "MainProcess".into(),
                target: "join.rhai".into(),
            },
            Event::Spawn {
                t: 100.5,
                pid: 11,
                ppid: 10,
                name: "Process-1".into(),
                target: "piao".into(),
            },
            Event::Spawn {
                t: 100.6,
                pid: 12,
                ppid: 11,
                name: "Process-1:1".into(),
                target: "task".into(),
            },
            Event::Exit {
                t: 101.0,
                pid: 12,
                code: None,
                signal: Some(9),
                user_cpu: 0.0,
                sys_cpu: 0.0,
                max_rss_kib: 900,
            },
            Event::Exit {
                t: 102.0,
                pid: 11,
                code: Some(0),
                signal: None,
                user_cpu: 0.25,
                sys_cpu: 0.5,
                max_rss_kib: 1000,
            },
            Event::Join {
                t: 102.1,
                pid: 11,
                by: 10,
            },
            Event::Exit {
                t: 103.0,
                pid: 10,
                code: Some(0),
                signal: None,
                user_cpu: 1.0,
                sys_cpu: 0.0,
                max_rss_kib: 5000,
            },
        ];
        Trace::from_events("join.rhai", 100.0, &events)
    }

    #[test]
    fn events_fold_into_processes_with_relative_times() {
        let trace = sample();
        assert_eq!(trace.processes.len(), 3);
        assert_eq!(trace.duration, 3.0);
        let child = &trace.processes[1];
        assert_eq!(
            (child.start, child.end, child.duration()),
            (0.5, Some(2.0), Some(1.5))
        );
        assert_eq!(child.exit.as_ref().unwrap().short(), "0");
        assert_eq!(
            trace.processes[2].exit.as_ref().unwrap().short(),
            "-SIGKILL"
        );
        assert_eq!(trace.events.iter().filter(|e| e.event == "join").count(), 1);
    }

    #[test]
    fn tree_is_depth_first_with_last_sibling_flags() {
        let trace = sample();
        let tree: Vec<(usize, bool, i32)> = trace
            .tree()
            .into_iter()
            .map(|(d, l, p)| (d, l, p.pid))
            .collect();
        assert_eq!(tree, vec![(0, true, 10), (1, true, 11), (2, true, 12)]);
    }

    #[test]
    fn yaml_round_trips() {
        let trace = sample();
        let text = serde_yaml::to_string(&trace).unwrap();
        let back: Trace = serde_yaml::from_str(&text).unwrap();
        assert_eq!(back, trace);
        assert!(text.contains("signal_name: SIGKILL"), "{text}");
    }
}
