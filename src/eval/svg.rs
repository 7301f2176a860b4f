//! A hand-written SVG chart: a grid of small line charts (one per metric and noise family),
//! each with categorical x labels (noise levels) and a y axis from 0 to the panel's maximum.
//! No plotting crate; the output is plain SVG 1.1 that browsers and GitHub render.

use std::fmt::Write;

/// One small line chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    pub x_labels: Vec<String>,
    /// One value per x label; `None` (not computable) leaves a gap.
    pub y: Vec<Option<f64>>,
}

const W: f64 = 300.0;
const H: f64 = 190.0;
const PAD_L: f64 = 46.0;
const PAD_R: f64 = 12.0;
const PAD_T: f64 = 26.0;
const PAD_B: f64 = 40.0;

/// Escapes text for XML content and attributes.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn nice_max(m: f64) -> f64 {
    // below 1e-6 (e.g. BLEU-4's 1e-9 smoothing floor) the series is drawn as zero on 0..1
    if !m.is_finite() || m < 1e-6 {
        return 1.0;
    }
    let e = 10f64.powf(m.log10().floor());
    for k in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if k * e >= m {
            return k * e;
        }
    }
    10.0 * e
}

fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 10.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1e-3 {
        format!("{v:.3}")
    } else {
        format!("{v:.1e}")
    }
}

fn panel(out: &mut String, p: &Panel, ox: f64, oy: f64) {
    let (pw, ph) = (W - PAD_L - PAD_R, H - PAD_T - PAD_B);
    let ymax = nice_max(
        p.y.iter()
            .flatten()
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max),
    );
    let n = p.x_labels.len().max(1);
    let x_at = |i: usize| {
        if n == 1 {
            PAD_L + pw / 2.0
        } else {
            PAD_L + pw * i as f64 / (n - 1) as f64
        }
    };
    let y_at = |v: f64| PAD_T + ph * (1.0 - (v / ymax).clamp(0.0, 1.0));
    let _ = writeln!(out, r#"<g transform="translate({ox:.1},{oy:.1})">"#);
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="16" text-anchor="middle" font-size="12" font-weight="bold">{}</text>"#,
        W / 2.0,
        escape(&p.title)
    );
    // axes and horizontal grid lines at 0, 1/2, 1 of the range
    for k in 0..=2 {
        let v = ymax * k as f64 / 2.0;
        let y = y_at(v);
        let _ = writeln!(
            out,
            r##"<line x1="{PAD_L:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/>"##,
            PAD_L + pw
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="10">{}</text>"#,
            PAD_L - 4.0,
            y + 3.0,
            fmt_num(v)
        );
    }
    let _ = writeln!(
        out,
        r##"<line x1="{PAD_L:.1}" y1="{PAD_T:.1}" x2="{PAD_L:.1}" y2="{:.1}" stroke="#333"/>"##,
        PAD_T + ph
    );
    for (i, l) in p.x_labels.iter().enumerate() {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{}</text>"#,
            x_at(i),
            PAD_T + ph + 14.0,
            escape(l)
        );
    }
    // polyline segments between consecutive present points
    let pts: Vec<Option<(f64, f64)>> =
        p.y.iter()
            .enumerate()
            .map(|(i, v)| v.filter(|v| v.is_finite()).map(|v| (x_at(i), y_at(v))))
            .collect();
    let mut run: Vec<(f64, f64)> = Vec::new();
    let flush = |run: &mut Vec<(f64, f64)>, out: &mut String| {
        if run.len() > 1 {
            let s: Vec<String> = run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            let _ = writeln!(
                out,
                r##"<polyline points="{}" fill="none" stroke="#1f77b4" stroke-width="2"/>"##,
                s.join(" ")
            );
        }
        run.clear();
    };
    for pt in &pts {
        match pt {
            Some(xy) => run.push(*xy),
            None => flush(&mut run, out),
        }
    }
    flush(&mut run, out);
    for (x, y) in pts.iter().flatten() {
        let _ = writeln!(
            out,
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="#1f77b4"/>"##
        );
    }
    let _ = writeln!(out, "</g>");
}

/// The whole chart: `panels` laid out row by row, `cols` per row.
pub fn chart(title: &str, panels: &[Panel], cols: usize) -> String {
    let cols = cols.max(1);
    let rows = panels.len().div_ceil(cols).max(1);
    let (width, height) = (W * cols as f64, 30.0 + H * rows as f64);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="100%" height="100%" fill="white"/>
<text x="{:.1}" y="20" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        width / 2.0,
        escape(title)
    );
    for (i, p) in panels.iter().enumerate() {
        let (r, c) = (i / cols, i % cols);
        panel(&mut out, p, W * c as f64, 30.0 + H * r as f64);
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_is_balanced_and_escaped() {
        let p = Panel {
            title: "BLEU-4 <partial & co>".into(),
            x_labels: vec!["clean".into(), "0.05".into(), "0.10".into()],
            y: vec![Some(0.2), None, Some(0.1)],
        };
        let s = chart("t", &[p.clone(), p], 2);
        assert!(s.contains("&lt;partial &amp; co&gt;"));
        assert_eq!(s.matches("<g ").count(), s.matches("</g>").count());
        assert!(s.trim_end().ends_with("</svg>"));
        // the gap splits the line: no polyline with a single point
        assert_eq!(s.matches("<polyline").count(), 0);
        assert_eq!(s.matches("<circle").count(), 4);
    }

    #[test]
    fn nice_axis_maximum() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(0.37), 0.5);
        assert_eq!(nice_max(3.0), 5.0);
        assert_eq!(nice_max(1e-10), 1.0);
        assert_eq!(fmt_num(0.0004), "4.0e-4");
    }
}
