//! The timeline picture: one row per process, indented under its parent with a thin tree
//! connector (as `procscript report` draws it), a bar from start to end coloured by how it
//! ended and filled by how much of that time it spent on a CPU, a marker where the parent's
//! `join` returned, and hover text naming parent, target, CPU time and peak memory.

use svg::node::element::{Group, Line, Path, Polygon, Rectangle, Text, Title};
use svg::Document;

use super::Trace;

const ROW: f64 = 28.0;
const LABEL_WIDTH: f64 = 300.0;
const PLOT_WIDTH: f64 = 640.0;
const TOP: f64 = 56.0;
const MARGIN: f64 = 16.0;
const LEGEND: f64 = 24.0;
const FONT: &str = "DejaVu Sans Mono, Menlo, Consolas, monospace";

/// Colour of a bar: green for exit 0, amber for another code, red for a signal, grey when
/// the end was not seen.
fn colour(exit: Option<&super::ExitStatus>) -> &'static str {
    match exit {
        Some(e) if e.code == Some(0) => "#43a047",
        Some(e) if e.code.is_some() => "#fb8c00",
        Some(_) => "#e53935",
        None => "#9e9e9e",
    }
}

/// Longest label, in characters, that fits left of the bars at depth 0.
const LABEL_CHARS: usize = 40;

/// How far a child's label is indented under its parent's, in pixels (two characters).
const INDENT: f64 = 14.0;

/// Deeper levels are drawn at this depth, so that a deep chain stays inside the label column.
const MAX_DRAWN_DEPTH: usize = 16;

/// How far in a row at `depth` is drawn, in indentation steps.
fn drawn(depth: usize) -> f64 {
    depth.min(MAX_DRAWN_DEPTH) as f64
}

/// Colour of the tree connectors and spawn lines.
const CONNECTOR: &str = "#9e9e9e";

/// A row's label: name, pid and target (a script shown by its file name only), cut to fit
/// beside its indentation.
fn label(depth: usize, name: &str, pid: i32, target: &str) -> String {
    let target = std::path::Path::new(target)
        .file_name()
        .map_or(target.into(), |f| f.to_string_lossy());
    let text = super::report::one_line(&format!("{name} ({pid}) {target}"));
    let room = LABEL_CHARS
        .saturating_sub(2 * depth.min(MAX_DRAWN_DEPTH))
        .max(8);
    if text.chars().count() <= room {
        text
    } else {
        text.chars().take(room - 1).collect::<String>() + "…"
    }
}

/// The share of its wall time a process spent on a CPU (user + system), from 0 to 1;
/// `None` when either is unknown.
fn cpu_share(p: &super::TracedProcess) -> Option<f64> {
    let wall = p.duration()?;
    let cpu = p.user_cpu? + p.sys_cpu?;
    Some(if wall > 0.0 {
        (cpu / wall).clamp(0.0, 1.0)
    } else {
        0.0
    })
}

/// Peak memory as people read it.
fn memory(kib: Option<i64>) -> String {
    match kib {
        None => "unknown".into(),
        Some(k) if k < 1024 => format!("{k} KiB"),
        Some(k) => format!("{:.1} MiB", k as f64 / 1024.0),
    }
}

/// The hover text of a bar: who it is, its parent, what it ran, when, how it ended, its
/// CPU time and share, and its peak memory.
fn bar_title(p: &super::TracedProcess, parent: Option<&super::TracedProcess>, end: f64) -> String {
    let exit = p.exit.as_ref().map_or_else(
        || "not seen to end".to_string(),
        |e| format!("exit {}", e.short()),
    );
    let parent = match parent {
        Some(q) => format!("child of {} ({})", super::report::one_line(&q.name), q.pid),
        None => format!("parent pid {}", p.ppid),
    };
    let cpu = match (p.user_cpu, p.sys_cpu) {
        (Some(user), Some(sys)) => format!(
            "CPU {:.3}s ({:.0}% of its time; user {user:.3}s, system {sys:.3}s)",
            user + sys,
            cpu_share(p).unwrap_or(0.0) * 100.0
        ),
        _ => "CPU unknown".into(),
    };
    format!(
        "{} pid {}, {parent}, ran {}: {:.3}s to {:.3}s, {exit}; {cpu}; peak memory {}",
        super::report::one_line(&p.name),
        p.pid,
        super::report::one_line(&p.target),
        p.start,
        end,
        memory(p.max_rss_kib)
    )
}

/// A "nice" tick step giving about six ticks over `span` seconds.
fn tick_step(span: f64) -> f64 {
    let raw = (span / 6.0).max(1e-6);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// The picture's measures: the time it spans, its size, and where times and rows go.
struct Frame {
    span: f64,
    width: f64,
    height: f64,
}

impl Frame {
    fn of(trace: &Trace, rows: usize) -> Self {
        let span = trace
            .processes
            .iter()
            .filter_map(|p| p.end)
            .chain(trace.events.iter().map(|e| e.t))
            .fold(trace.duration, f64::max)
            .max(1e-3);
        Self {
            span,
            width: LABEL_WIDTH + PLOT_WIDTH + MARGIN * 2.0,
            height: TOP + ROW * rows as f64 + MARGIN * 2.0 + LEGEND,
        }
    }

    /// The x of time `t`.
    fn x(&self, t: f64) -> f64 {
        LABEL_WIDTH + t / self.span * PLOT_WIDTH
    }

    /// The top of row `row`.
    fn row_y(&self, row: usize) -> f64 {
        TOP + ROW * row as f64
    }
}

/// The rows of the picture: the trace's tree in depth-first order, each row's depth and
/// process, and each row's parent row.
struct Rows<'a> {
    tree: Vec<(usize, bool, &'a super::TracedProcess)>,
    parents: Vec<Option<usize>>,
}

impl<'a> Rows<'a> {
    fn of(trace: &'a Trace) -> Self {
        let tree = trace.tree();
        // The nearest row above with one less depth, found in one pass.
        let mut last_at_depth: Vec<Option<usize>> = Vec::new();
        let parents = tree
            .iter()
            .enumerate()
            .map(|(row, (depth, _, _))| {
                last_at_depth.truncate(*depth);
                last_at_depth.resize(*depth, None);
                let parent = depth.checked_sub(1).and_then(|d| last_at_depth[d]);
                last_at_depth.push(Some(row));
                parent
            })
            .collect();
        Self { tree, parents }
    }

    /// The first row of each pid, for the joins: linear in the trace's size.
    fn first_of_each_pid(&self) -> std::collections::HashMap<i32, usize> {
        let mut rows = std::collections::HashMap::with_capacity(self.tree.len());
        for (row, (_, _, p)) in self.tree.iter().enumerate() {
            rows.entry(p.pid).or_insert(row);
        }
        rows
    }
}

/// Renders the timeline as an SVG document: the title, the time axis, the tree's
/// connectors, one row per process, the joins, and the legend.
pub(crate) fn render(trace: &Trace) -> String {
    let rows = Rows::of(trace);
    let frame = Frame::of(trace, rows.tree.len());
    let mut doc = page(trace, &frame)
        .add(axis(&frame))
        .add(connectors(&rows, &frame));
    for row in 0..rows.tree.len() {
        doc = doc.add(process_row(&rows, row, &frame));
    }
    for join in joins(trace, &rows, &frame) {
        doc = doc.add(join);
    }
    doc.add(legend(&frame)).to_string()
}

/// The document with its white ground and title line.
fn page(trace: &Trace, frame: &Frame) -> Document {
    Document::new()
        .set("viewBox", (0, 0, frame.width, frame.height))
        .set("width", frame.width)
        .set("height", frame.height)
        .set("font-family", FONT)
        .set("font-size", 12)
        .add(
            Rectangle::new()
                .set("width", "100%")
                .set("height", "100%")
                .set("fill", "white"),
        )
        .add(
            Text::new(format!(
                "{}: {} processes, {:.3}s",
                trace.script,
                trace.processes.len(),
                trace.duration
            ))
            .set("x", MARGIN)
            .set("y", 20)
            .set("font-size", 14)
            .set("font-weight", "bold"),
        )
}

/// The time axis, with grid lines.
fn axis(frame: &Frame) -> Group {
    let step = tick_step(frame.span);
    let mut axis = Group::new().set("class", "axis");
    let mut t = 0.0;
    while t <= frame.span + step * 1e-9 {
        axis = axis
            .add(
                Line::new()
                    .set("x1", frame.x(t))
                    .set("x2", frame.x(t))
                    .set("y1", TOP - 6.0)
                    .set("y2", frame.height - MARGIN - LEGEND)
                    .set("stroke", "#e0e0e0"),
            )
            .add(
                Text::new(format!("{t:.2}s"))
                    .set("x", frame.x(t))
                    .set("y", TOP - 10.0)
                    .set("text-anchor", "middle")
                    .set("fill", "#616161"),
            );
        t += step;
    }
    axis
}

/// The tree: in the label column, a connector from under each parent's name to its
/// child's; in the plot, a dotted line where the parent forked the child.
fn connectors(rows: &Rows<'_>, frame: &Frame) -> Group {
    let mut connectors = Group::new()
        .set("class", "tree")
        .set("stroke", CONNECTOR)
        .set("stroke-width", 1)
        .set("fill", "none");
    for (row, (depth, _, p)) in rows.tree.iter().enumerate() {
        let Some(parent) = rows.parents[row] else {
            continue;
        };
        let trunk = MARGIN + INDENT * (drawn(*depth) - 1.0) + 4.0;
        let mid = frame.row_y(row) + ROW / 2.0;
        connectors = connectors.add(Path::new().set(
            "d",
            format!(
                "M{trunk},{} V{mid} H{}",
                frame.row_y(parent) + ROW - 6.0,
                trunk + INDENT - 6.0
            ),
        ));
        connectors = connectors.add(
            Line::new()
                .set("class", "spawn")
                .set("x1", frame.x(p.start))
                .set("x2", frame.x(p.start))
                .set("y1", frame.row_y(parent) + ROW - 5.0)
                .set("y2", frame.row_y(row) + 5.0)
                .set("stroke-dasharray", "2,2"),
        );
    }
    connectors
}

/// One process's row: its label, its whole life as a pale bar, and its CPU share in full
/// colour from the bottom up, each with the hover text.
fn process_row(rows: &Rows<'_>, row: usize, frame: &Frame) -> Group {
    let (depth, _, p) = &rows.tree[row];
    let y = frame.row_y(row);
    let end = p.end.unwrap_or(frame.span);
    let parent = rows.parents[row].map(|r| rows.tree[r].2);
    let fill = colour(p.exit.as_ref());
    let (bar_x, bar_y) = (frame.x(p.start), y + 5.0);
    let (bar_w, bar_h) = ((frame.x(end) - frame.x(p.start)).max(1.5), ROW - 10.0);
    let title = bar_title(p, parent, end);
    let mut group = Group::new()
        .set("class", "process")
        .set("data-pid", p.pid)
        .add(
            Text::new(label(*depth, &p.name, p.pid, &p.target))
                .set("x", MARGIN + INDENT * drawn(*depth))
                .set("y", y + ROW * 0.62),
        )
        .add(
            Rectangle::new()
                .set("class", "bar")
                .set("x", bar_x)
                .set("y", bar_y)
                .set("width", bar_w)
                .set("height", bar_h)
                .set("rx", 3)
                .set("fill", fill)
                .set("fill-opacity", 0.35)
                .set("stroke", fill)
                .add(Title::new(title.clone())),
        );
    if let Some(share) = cpu_share(p) {
        let h = bar_h * share;
        group = group.add(
            Rectangle::new()
                .set("class", "cpu")
                .set("data-share", format!("{share:.3}"))
                .set("x", bar_x)
                .set("y", bar_y + bar_h - h)
                .set("width", bar_w)
                .set("height", h)
                .set("fill", fill)
                .add(Title::new(title)),
        );
    }
    group
}

/// The points of a diamond centred on `(cx, cy)`, `w` wide and `h` high.
fn diamond(cx: f64, cy: f64, w: f64, h: f64) -> String {
    format!(
        "{},{} {},{} {},{} {},{}",
        cx,
        cy - h / 2.0,
        cx + w / 2.0,
        cy,
        cx,
        cy + h / 2.0,
        cx - w / 2.0,
        cy
    )
}

/// The joins: a dark diamond on the joined process's row where the parent's join returned.
fn joins(trace: &Trace, rows: &Rows<'_>, frame: &Frame) -> Vec<Polygon> {
    let first = rows.first_of_each_pid();
    trace
        .events
        .iter()
        .filter(|e| e.event == "join")
        .filter_map(|event| {
            let row = *first.get(&event.pid)?;
            let (cx, cy) = (frame.x(event.t), frame.row_y(row) + ROW / 2.0);
            Some(
                Polygon::new()
                    .set("class", "join")
                    .set("points", diamond(cx, cy, 10.0, 14.0))
                    .set("fill", "#212121")
                    .add(Title::new(format!(
                        "joined by pid {} at {:.3}s",
                        event.by.unwrap_or(0),
                        event.t
                    ))),
            )
        })
        .collect()
}

/// A small square of `fill` at `x` on the legend's line `y`.
fn swatch(x: f64, y: f64, fill: &str) -> Rectangle {
    Rectangle::new()
        .set("x", x)
        .set("y", y - 10.0)
        .set("width", 12)
        .set("height", 12)
        .set("rx", 2)
        .set("fill", fill)
}

/// The legend: what the colours, the diamond and a bar's fill mean.
fn legend(frame: &Frame) -> Group {
    let y = frame.height - MARGIN - 6.0;
    let mut legend = Group::new().set("class", "legend");
    let mut lx = MARGIN;
    for (fill, text) in [
        ("#43a047", "exit 0"),
        ("#fb8c00", "other exit code"),
        ("#e53935", "ended by a signal"),
        ("#9e9e9e", "end not seen"),
    ] {
        legend = legend
            .add(swatch(lx, y, fill))
            .add(Text::new(text).set("x", lx + 17.0).set("y", y));
        lx += 34.0 + 7.0 * text.len() as f64;
    }
    legend = legend
        .add(
            Polygon::new()
                .set("points", diamond(lx + 5.0, y - 4.0, 10.0, 14.0))
                .set("fill", "#212121"),
        )
        .add(
            Text::new("the parent's join returned")
                .set("x", lx + 15.0)
                .set("y", y),
        );
    // What the fill of a bar means: a pale bar with its CPU share filled from below.
    let lx = lx + 15.0 + 7.0 * 28.0;
    legend
        .add(
            swatch(lx, y, "#43a047")
                .set("fill-opacity", 0.35)
                .set("stroke", "#43a047"),
        )
        .add(
            Rectangle::new()
                .set("x", lx)
                .set("y", y - 4.0)
                .set("width", 12)
                .set("height", 6)
                .set("fill", "#43a047"),
        )
        .add(
            Text::new("filled: share of time on a CPU")
                .set("x", lx + 17.0)
                .set("y", y),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_show_script_file_names_and_fit() {
        assert_eq!(
            label(0, "MainProcess", 7, "/work/main/scripts/join.rhai"),
            "MainProcess (7) join.rhai"
        );
        assert_eq!(label(1, "Process-1", 8, "piao"), "Process-1 (8) piao");
        let long = label(2, &"x".repeat(80), 9, "t");
        assert_eq!(long.chars().count(), LABEL_CHARS - 4);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn ticks_are_round_numbers() {
        assert_eq!(tick_step(3.0), 0.5);
        assert_eq!(tick_step(60.0), 10.0);
        assert_eq!(tick_step(0.012), 0.002);
    }
}
