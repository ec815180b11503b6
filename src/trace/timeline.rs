//! The timeline picture: one row per process, nested under its parent, a bar from start to
//! end coloured by how it ended, and a marker where the parent's `join` returned.

use svg::node::element::{Group, Line, Polygon, Rectangle, Text, Title};
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

/// Longest label, in characters, that fits left of the bars.
const LABEL_CHARS: usize = 40;

/// A row's label: indented name, pid and target (a script shown by its file name only),
/// cut to fit.
fn label(depth: usize, name: &str, pid: i32, target: &str) -> String {
    let target = std::path::Path::new(target)
        .file_name()
        .map_or(target.into(), |f| f.to_string_lossy());
    // Indentation past the label's width would be cut anyway: capping it keeps a deep chain linear.
    let indent = "  ".repeat(depth.min(LABEL_CHARS / 2));
    let text = super::report::one_line(&format!("{indent}{name} ({pid}) {target}"));
    if text.chars().count() <= LABEL_CHARS {
        text
    } else {
        text.chars().take(LABEL_CHARS - 1).collect::<String>() + "…"
    }
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

/// Renders the timeline as an SVG document.
pub fn render(trace: &Trace) -> String {
    let tree = trace.tree();
    let span = trace
        .processes
        .iter()
        .filter_map(|p| p.end)
        .chain(trace.events.iter().map(|e| e.t))
        .fold(trace.duration, f64::max)
        .max(1e-3);
    let x = |t: f64| LABEL_WIDTH + t / span * PLOT_WIDTH;
    let height = TOP + ROW * tree.len() as f64 + MARGIN * 2.0 + LEGEND;
    let width = LABEL_WIDTH + PLOT_WIDTH + MARGIN * 2.0;

    let mut doc = Document::new()
        .set("viewBox", (0, 0, width, height))
        .set("width", width)
        .set("height", height)
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
        );

    // Time axis with grid lines.
    let step = tick_step(span);
    let mut axis = Group::new().set("class", "axis");
    let mut t = 0.0;
    while t <= span + step * 1e-9 {
        axis = axis
            .add(
                Line::new()
                    .set("x1", x(t))
                    .set("x2", x(t))
                    .set("y1", TOP - 6.0)
                    .set("y2", height - MARGIN - LEGEND)
                    .set("stroke", "#e0e0e0"),
            )
            .add(
                Text::new(format!("{t:.2}s"))
                    .set("x", x(t))
                    .set("y", TOP - 10.0)
                    .set("text-anchor", "middle")
                    .set("fill", "#616161"),
            );
        t += step;
    }
    doc = doc.add(axis);

    // The first row of each pid, looked up once per join: linear in the trace's size.
    let mut rows = std::collections::HashMap::with_capacity(tree.len());
    for (row, (_, _, p)) in tree.iter().enumerate() {
        rows.entry(p.pid).or_insert(row);
    }
    let row_of = |pid: i32| rows.get(&pid).copied();
    for (row, (depth, _, p)) in tree.iter().enumerate() {
        let y = TOP + ROW * row as f64;
        let end = p.end.unwrap_or(span);
        let exit = p.exit.as_ref().map_or_else(
            || "not seen to end".to_string(),
            |e| format!("exit {}", e.short()),
        );
        let label = label(*depth, &p.name, p.pid, &p.target);
        let mut group = Group::new().set("class", "process").set("data-pid", p.pid);
        group = group
            .add(Text::new(label).set("x", MARGIN).set("y", y + ROW * 0.62))
            .add(
                Rectangle::new()
                    .set("x", x(p.start))
                    .set("y", y + 5.0)
                    .set("width", (x(end) - x(p.start)).max(1.5))
                    .set("height", ROW - 10.0)
                    .set("rx", 3)
                    .set("fill", colour(p.exit.as_ref()))
                    .add(Title::new(format!(
                        "{} pid {}: {:.3}s to {:.3}s, {exit}",
                        p.name, p.pid, p.start, end
                    ))),
            );
        doc = doc.add(group);
    }

    // Joins: a dark diamond on the joined process's row where the parent's join returned.
    for event in trace.events.iter().filter(|e| e.event == "join") {
        let Some(row) = row_of(event.pid) else {
            continue;
        };
        let (cx, cy) = (x(event.t), TOP + ROW * row as f64 + ROW / 2.0);
        let points = format!(
            "{},{} {},{} {},{} {},{}",
            cx,
            cy - 7.0,
            cx + 5.0,
            cy,
            cx,
            cy + 7.0,
            cx - 5.0,
            cy
        );
        doc = doc.add(
            Polygon::new()
                .set("class", "join")
                .set("points", points)
                .set("fill", "#212121")
                .add(Title::new(format!(
                    "joined by pid {} at {:.3}s",
                    event.by.unwrap_or(0),
                    event.t
                ))),
        );
    }
    // Legend.
    let y = height - MARGIN - 6.0;
    let mut legend = Group::new().set("class", "legend");
    let mut lx = MARGIN;
    for (fill, text) in [
        ("#43a047", "exit 0"),
        ("#fb8c00", "other exit code"),
        ("#e53935", "ended by a signal"),
        ("#9e9e9e", "end not seen"),
    ] {
        legend = legend
            .add(
                Rectangle::new()
                    .set("x", lx)
                    .set("y", y - 10.0)
                    .set("width", 12)
                    .set("height", 12)
                    .set("rx", 2)
                    .set("fill", fill),
            )
            .add(Text::new(text).set("x", lx + 17.0).set("y", y));
        lx += 34.0 + 7.0 * text.len() as f64;
    }
    let points = format!(
        "{},{} {},{} {},{} {},{}",
        lx + 5.0,
        y - 11.0,
        lx + 10.0,
        y - 4.0,
        lx + 5.0,
        y + 3.0,
        lx,
        y - 4.0
    );
    legend = legend
        .add(Polygon::new().set("points", points).set("fill", "#212121"))
        .add(
            Text::new("the parent's join returned")
                .set("x", lx + 15.0)
                .set("y", y),
        );
    doc.add(legend).to_string()
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
        assert_eq!(label(1, "Process-1", 8, "piao"), "  Process-1 (8) piao");
        let long = label(2, &"x".repeat(80), 9, "t");
        assert_eq!(long.chars().count(), LABEL_CHARS);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn ticks_are_round_numbers() {
        assert_eq!(tick_step(3.0), 0.5);
        assert_eq!(tick_step(60.0), 10.0);
        assert_eq!(tick_step(0.012), 0.002);
    }
}
