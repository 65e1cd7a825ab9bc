//! Charts as inline SVG, drawn from Rust: line charts over time and grouped bar charts for
//! histograms. No scripts, fonts or files: the page that holds them is self-contained.

use std::fmt::Write as _;

/// Colours for series, by position (one per transport, in [`bots::Transport::ALL`] order).
pub const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#555555",
];

const W: f64 = 760.0;
const H: f64 = 280.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 40.0;

/// One series of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// CSS colour.
    pub color: &'static str,
    /// `(x, y)` points, x ascending (line charts), or one y per category (bar charts).
    pub points: Vec<(f64, f64)>,
}

/// Text safe inside SVG/HTML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A round step for about `n` ticks over `span`.
fn nice_step(span: f64, n: f64) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let raw = span / n;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// A number as a short label: 1.2k, 3.4M.
pub fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn frame(out: &mut String, title: &str, x_label: &str, y_label: &str) {
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" font-family="sans-serif" font-size="11">
<text x="{LEFT}" y="18" font-size="13" font-weight="bold">{}</text>
<text x="{}" y="{}" text-anchor="middle">{}</text>
<text transform="translate(14 {}) rotate(-90)" text-anchor="middle">{}</text>
"##,
        escape(title),
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 6.0,
        escape(x_label),
        TOP + (H - TOP - BOTTOM) / 2.0,
        escape(y_label),
    );
}

fn legend(out: &mut String, series: &[Series]) {
    for (i, s) in series.iter().enumerate() {
        let y = TOP + 14.0 * i as f64;
        let x = W - RIGHT + 12.0;
        let _ = writeln!(
            out,
            r#"<rect x="{x}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            y,
            s.color,
            x + 14.0,
            y + 9.0,
            escape(&s.label)
        );
    }
}

/// Horizontal grid lines and y labels from 0 to `y_max`; returns the y scale's top.
fn y_axis(out: &mut String, y_max: f64) -> f64 {
    let step = nice_step(y_max, 5.0);
    let top = (y_max / step).ceil().max(1.0) * step;
    let plot_h = H - TOP - BOTTOM;
    let mut v = 0.0;
    while v <= top + step / 2.0 {
        let y = TOP + plot_h * (1.0 - v / top);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            short(v)
        );
        v += step;
    }
    top
}

/// A line chart of `series` over x; `shade` marks an x range (the measured window).
pub fn lines(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    shade: Option<(f64, f64)>,
) -> String {
    let mut out = String::new();
    frame(&mut out, title, x_label, y_label);
    let all = || series.iter().flat_map(|s| s.points.iter());
    let x_max = all().map(|p| p.0).fold(1.0, f64::max);
    let y_max = all().map(|p| p.1).fold(0.0, f64::max).max(1e-9);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let sx = |x: f64| LEFT + plot_w * x / x_max;
    if let Some((a, b)) = shade {
        let _ = writeln!(
            out,
            r##"<rect x="{:.1}" y="{TOP}" width="{:.1}" height="{plot_h}" fill="#f3f7ff"/>"##,
            sx(a.min(x_max)),
            (sx(b.min(x_max)) - sx(a.min(x_max))).max(0.0)
        );
    }
    let top = y_axis(&mut out, y_max);
    let sy = |y: f64| TOP + plot_h * (1.0 - y / top);
    let step = nice_step(x_max, 8.0);
    let mut x = 0.0;
    while x <= x_max + 1e-9 {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            sx(x),
            H - BOTTOM + 14.0,
            short(x)
        );
        x += step;
    }
    for s in series {
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{}" stroke-width="1.6" points="{}"/>"#,
            s.color,
            pts.join(" ")
        );
    }
    let _ = writeln!(
        out,
        r##"<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{}" stroke="#888"/>"##,
        H - BOTTOM
    );
    legend(&mut out, series);
    out.push_str("</svg>\n");
    out
}

/// A grouped bar chart: one group per category (`categories`), one bar per series in each.
/// Each series' points give its y for each category, in order.
pub fn bars(
    title: &str,
    x_label: &str,
    y_label: &str,
    categories: &[String],
    series: &[Series],
) -> String {
    let mut out = String::new();
    frame(&mut out, title, x_label, y_label);
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0, f64::max)
        .max(1e-9);
    let top = y_axis(&mut out, y_max);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let group = plot_w / categories.len().max(1) as f64;
    let bar = (group * 0.8) / series.len().max(1) as f64;
    for (c, label) in categories.iter().enumerate() {
        let gx = LEFT + group * c as f64 + group * 0.1;
        for (k, s) in series.iter().enumerate() {
            let y = s.points.get(c).map_or(0.0, |p| p.1);
            let h = plot_h * y / top;
            let _ = writeln!(
                out,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {}</title></rect>"#,
                gx + bar * k as f64,
                TOP + plot_h - h,
                bar.max(0.5),
                h,
                s.color,
                escape(&s.label),
                short(y)
            );
        }
        // Label every category when few, else every other one.
        if categories.len() <= 16 || c.is_multiple_of(2) {
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                gx + group * 0.4,
                H - BOTTOM + 14.0,
                escape(label)
            );
        }
    }
    legend(&mut out, series);
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_their_series() {
        let s = vec![
            Series {
                label: "ws <fast>".into(),
                color: COLORS[0],
                points: vec![(0.0, 1.0), (1.0, 3.0), (2.0, 2.0)],
            },
            Series {
                label: "sse".into(),
                color: COLORS[1],
                points: vec![(0.0, 0.0), (2.0, 5.0)],
            },
        ];
        let svg = lines("Frames", "s", "frames/s", &s, Some((0.5, 1.5)));
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("ws &lt;fast&gt;"));
        let cats = vec!["1".to_owned(), "2".to_owned()];
        let svg = bars("Latency", "ms", "count", &cats, &s);
        assert_eq!(svg.matches("<rect").count(), 4 + 2); // bars + legend swatches
    }

    #[test]
    fn steps_and_labels() {
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(nice_step(7.0, 5.0), 2.0);
        assert_eq!(nice_step(0.0, 5.0), 1.0);
        assert_eq!(short(1500.0), "1.5k");
        assert_eq!(short(2_500_000.0), "2.5M");
        assert_eq!(short(0.25), "0.25");
    }
}
