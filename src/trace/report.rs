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
pub fn one_line(text: &str) -> String {
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

/// The tree as text: one line per process, the name indented under its parent.
pub fn render(trace: &Trace) -> String {
    let tree = trace.tree();
    // Build each name with its tree prefix: ancestors' "│  " or "   ", then "├─ " / "└─ ".
    let mut open: Vec<bool> = Vec::new();
    let mut names = Vec::with_capacity(tree.len());
    for (depth, last, p) in &tree {
        open.truncate(*depth);
        let mut prefix = String::new();
        if *depth > 0 {
            for &more in &open[1..] {
                prefix.push_str(if more { "│  " } else { "   " });
            }
            prefix.push_str(if *last { "└─ " } else { "├─ " });
        }
        open.push(!last);
        names.push(format!("{prefix}{}", one_line(&p.name)));
    }
    let header = [
        "PID", "PPID", "NAME", "TARGET", "START", "TIME", "CPU", "PEAK MEM", "EXIT",
    ];
    let rows: Vec<[String; 9]> = tree
        .iter()
        .zip(names)
        .map(|((_, _, p), name)| {
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
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // Numbers are right-aligned, words left-aligned.
    let right = [true, true, false, false, true, true, true, true, false];
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(widths)
            .zip(right)
            .map(|((cell, w), r)| {
                let pad = " ".repeat(w - cell.chars().count());
                if r {
                    format!("{pad}{cell}")
                } else {
                    format!("{cell}{pad}")
                }
            })
            .collect();
        parts.join("  ").trim_end().to_string()
    };
    let mut out = format!(
        "trace of {} ({} processes, {:.3}s)\n",
        trace.script,
        trace.processes.len(),
        trace.duration
    );
    out.push_str(&line(&header.map(String::from)));
    out.push('\n');
    for row in &rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}
