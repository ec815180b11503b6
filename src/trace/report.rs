//! `procscript report`: a trace as an aligned process tree, like `pstree` crossed with `ps`.

use super::{Trace, TracedProcess};

/// Peak memory as people read it.
fn memory(kib: Option<i64>) -> String {
    match kib {
        None => "-".into(),
        Some(k) if k < 1024 => format!("{k} KiB"),
        Some(k) => format!("{:.1} MiB", k as f64 / 1024.0),
    }
}

fn seconds(s: Option<f64>) -> String {
    s.map_or_else(|| "-".into(), |s| format!("{s:.3}s"))
}

/// Text on one line: control characters (a newline in a command's argument) escaped.
pub(crate) fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn cpu(p: &TracedProcess) -> Option<f64> {
    Some(p.user_cpu? + p.sys_cpu?)
}

/// Tree guides drawn in full up to this depth; deeper rows show the depth as a number and
/// the guides of their last levels only, so that a deep chain costs linear time and space.
const MAX_GUIDES: usize = 24;

/// Columns wider than this are not padded to the widest cell (a longer cell runs over), so
/// one long name cannot make every row that long.
const MAX_PAD: usize = 64;

/// The tree prefix of a row: ancestors' "│  " or "   ", then "├─ " / "└─ ". `open[k]` says
/// whether level k+1 has siblings still to come.
fn guides(open: &[bool], depth: usize, last: bool) -> String {
    let mut prefix = String::new();
    if depth == 0 {
        return prefix;
    }
    let shown = depth.min(MAX_GUIDES);
    if shown < depth {
        prefix.push_str(&format!("[{depth}] "));
    }
    for &more in &open[depth - shown + 1..depth] {
        prefix.push_str(if more { "│  " } else { "   " });
    }
    prefix.push_str(if last { "└─ " } else { "├─ " });
    prefix
}

/// The report's columns: their headings, and which are numbers (right-aligned).
const HEADER: [&str; 9] = [
    "PID", "PPID", "NAME", "TARGET", "START", "TIME", "CPU", "PEAK MEM", "EXIT",
];
const RIGHT: [bool; 9] = [true, true, false, false, true, true, true, true, false];

/// The tree as text: one line per process, the name indented under its parent.
#[cfg_attr(not(feature = "cli"), allow(dead_code))] // used by the binary
pub(crate) fn render(trace: &Trace) -> String {
    let rows = rows(trace);
    let mut widths = HEADER.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count().min(MAX_PAD));
        }
    }
    let mut out = format!(
        "trace of {} ({} processes, {:.3}s)\n",
        trace.script,
        trace.processes.len(),
        trace.duration
    );
    out.push_str(&aligned(&HEADER.map(String::from), &widths));
    out.push('\n');
    for row in &rows {
        out.push_str(&aligned(row, &widths));
        out.push('\n');
    }
    let cycles = trace.cycles();
    if !cycles.is_empty() {
        let pids: Vec<String> = cycles.iter().map(i32::to_string).collect();
        out.push_str(&format!(
            "note: the parent pids of some processes form a cycle; listed from pid {}\n",
            pids.join(", ")
        ));
    }
    out
}

/// One row of cells per process, in tree order, the name behind its tree guides.
fn rows(trace: &Trace) -> Vec<[String; 9]> {
    let tree = trace.tree();
    let mut open: Vec<bool> = Vec::new();
    tree.iter()
        .map(|(depth, last, p)| {
            open.truncate(*depth);
            let name = format!("{}{}", guides(&open, *depth, *last), one_line(&p.name));
            open.push(!last);
            [
                p.pid.to_string(),
                p.ppid.to_string(),
                name,
                one_line(&p.target),
                format!("{:.3}s", p.start),
                seconds(p.duration()),
                seconds(cpu(p)),
                memory(p.max_rss_kib),
                p.exit
                    .as_ref()
                    .map_or_else(|| "running?".into(), |e| e.short()),
            ]
        })
        .collect()
}

/// One line of the table: numbers right-aligned, words left-aligned, to `widths`.
fn aligned(cells: &[String], widths: &[usize; 9]) -> String {
    let parts: Vec<String> = cells
        .iter()
        .zip(widths)
        .zip(RIGHT)
        .map(|((cell, w), right)| {
            let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
            if right {
                format!("{pad}{cell}")
            } else {
                format!("{cell}{pad}")
            }
        })
        .collect();
    parts.join("  ").trim_end().to_string()
}

/// Writes the report to standard output. A reader that stops early (`| head`) ends the
/// writing quietly: `Ok(false)`, which `procscript report` turns into exit code 0, as
/// ripgrep does, since everything the reader wanted was written.
#[cfg_attr(not(feature = "cli"), allow(dead_code))] // used by the binary
pub(crate) fn print(trace: &Trace) -> crate::error::Result<bool> {
    use crate::output::{self, Stream};
    match output::write_all(Stream::Stdout, render(trace).as_bytes()) {
        Ok(()) => Ok(true),
        Err(nix::errno::Errno::EPIPE) => Ok(false),
        Err(errno) => Err(crate::error::Error::os("writing the report", errno)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::TracedProcess;

    fn process(pid: i32, ppid: i32, start: f64) -> TracedProcess {
        TracedProcess {
            pid,
            ppid,
            name: format!("p{pid}"),
            target: "t".into(),
            start,
            end: None,
            exit: None,
            user_cpu: None,
            sys_cpu: None,
            max_rss_kib: None,
        }
    }

    fn trace(processes: Vec<TracedProcess>) -> Trace {
        Trace {
            procscript_trace: 1,
            script: "s".into(),
            duration: 1.0,
            processes,
            events: Vec::new(),
        }
    }

    #[test]
    fn a_parent_pid_cycle_is_listed_and_named() {
        let t = trace(vec![
            process(1, 0, 0.0),
            process(5, 6, 0.5),
            process(6, 5, 0.5),
        ]);
        let text = render(&t);
        for name in ["p1", "p5", "p6"] {
            assert!(text.contains(name), "{text}");
        }
        assert!(text.contains("cycle; listed from pid 5"), "{text}");
        assert_eq!(t.tree().len(), 3);
    }

    #[test]
    fn a_deep_chain_renders_in_linear_space() {
        let depth = 100_000;
        let t = trace((1..=depth).map(|pid| process(pid, pid - 1, 0.0)).collect());
        let text = render(&t);
        assert_eq!(text.lines().count(), depth as usize + 2);
        // Bounded guides per row: the whole text stays within a constant per process.
        assert!(text.len() < depth as usize * 200, "{} bytes", text.len());
        assert!(
            text.contains("[99999] "),
            "the depth is shown past the guides"
        );
    }

    #[test]
    fn reused_pids_list_each_child_once_under_its_latest_parent() {
        // pid 7 ran twice; the child started after the second run belongs to the second.
        let t = trace(vec![
            process(1, 0, 0.0),
            process(7, 1, 0.1),
            process(7, 1, 0.5),
            process(8, 7, 0.6),
        ]);
        let tree: Vec<(usize, i32, f64)> = t
            .tree()
            .iter()
            .map(|(d, _, p)| (*d, p.pid, p.start))
            .collect();
        assert_eq!(
            tree,
            vec![(0, 1, 0.0), (1, 7, 0.1), (1, 7, 0.5), (2, 8, 0.6)]
        );
    }
}
