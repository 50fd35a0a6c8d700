//! The evaluation as an SVG: one panel per attacker model, re-authentication
//! rate of legitimate logins (y) against the attacker's block rate (x), one
//! curve per scorer, the target block rates marked. Hand-written SVG: a
//! plotting crate would cost more to build than these hundred lines.

use std::fmt::Write as _;

use super::eval::{ScorerEval, TARGET_BLOCK_RATES};

const PANEL_W: f64 = 360.0;
const PANEL_H: f64 = 300.0;
const MARGIN_L: f64 = 56.0;
const MARGIN_T: f64 = 40.0;
const PLOT_W: f64 = 280.0;
const PLOT_H: f64 = 220.0;
const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Renders the SVG document. Panels follow the first scorer's label order.
pub fn svg(title: &str, scorers: &[ScorerEval]) -> String {
    let labels: Vec<&str> = scorers
        .first()
        .map(|s| s.labels.iter().map(|l| l.label.as_str()).collect())
        .unwrap_or_default();
    let cols = labels.len().clamp(1, 3);
    let rows = labels.len().div_ceil(cols).max(1);
    let width = PANEL_W * cols as f64;
    let height = PANEL_H * rows as f64 + 60.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="{x}" y="20" text-anchor="middle" font-size="14">{t}</text>"#,
        x = width / 2.0,
        t = escape(title)
    );
    // Legend.
    for (i, sc) in scorers.iter().enumerate() {
        let x = 20.0 + 160.0 * i as f64;
        let y = height - 20.0;
        let color = COLORS[i % COLORS.len()];
        let _ = writeln!(
            s,
            r#"<line x1="{x}" y1="{y}" x2="{x2}" y2="{y}" stroke="{color}" stroke-width="2"/><text x="{tx}" y="{ty}">{name}</text>"#,
            x2 = x + 24.0,
            tx = x + 30.0,
            ty = y + 4.0,
            name = escape(&sc.scorer)
        );
    }
    if labels.is_empty() {
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">no attacker attempts to evaluate</text>"#,
            width / 2.0,
            height / 2.0
        );
    }
    for (p, label) in labels.iter().enumerate() {
        let ox = PANEL_W * (p % cols) as f64 + MARGIN_L;
        let oy = PANEL_H * (p / cols) as f64 + MARGIN_T;
        let px = |x: f64| ox + x.clamp(0.0, 1.0) * PLOT_W;
        let py = |y: f64| oy + PLOT_H - y.clamp(0.0, 1.0) * PLOT_H;
        let _ = writeln!(
            s,
            r##"<g><text x="{cx}" y="{ty}" text-anchor="middle" font-size="12">{label}</text>
<rect x="{ox}" y="{oy}" width="{PLOT_W}" height="{PLOT_H}" fill="none" stroke="#444"/>"##,
            cx = ox + PLOT_W / 2.0,
            ty = oy - 6.0,
            label = escape(label)
        );
        for i in 0..=4 {
            let v = f64::from(i) / 4.0;
            let _ = writeln!(
                s,
                r##"<line x1="{x}" y1="{y0}" x2="{x}" y2="{y1}" stroke="#ddd"/><text x="{x}" y="{ly}" text-anchor="middle">{v}</text><line x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" stroke="#ddd"/><text x="{lx}" y="{ty}" text-anchor="end">{v}</text>"##,
                x = px(v),
                y0 = py(0.0),
                y1 = py(1.0),
                ly = py(0.0) + 14.0,
                y = py(v),
                x0 = px(0.0),
                x1 = px(1.0),
                lx = px(0.0) - 4.0,
                ty = py(v) + 4.0,
            );
        }
        for t in TARGET_BLOCK_RATES {
            let _ = writeln!(
                s,
                r##"<line x1="{x}" y1="{y0}" x2="{x}" y2="{y1}" stroke="#999" stroke-dasharray="2,3"/>"##,
                x = px(t),
                y0 = py(0.0),
                y1 = py(1.0),
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{cx}" y="{by}" text-anchor="middle">block rate of attacker attempts</text>
<text x="{lx}" y="{cy}" text-anchor="middle" transform="rotate(-90 {lx} {cy})">re-authentication rate (legitimate)</text>"#,
            cx = ox + PLOT_W / 2.0,
            by = py(0.0) + 30.0,
            lx = ox - 38.0,
            cy = oy + PLOT_H / 2.0,
        );
        for (i, sc) in scorers.iter().enumerate() {
            let Some(l) = sc.labels.iter().find(|l| l.label == *label) else {
                continue;
            };
            let mut pts = String::new();
            for (x, y) in &l.curve {
                let _ = write!(pts, "{:.2},{:.2} ", px(*x), py(*y));
            }
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{c}" stroke-width="1.5" points="{p}"><title>{name}: {label}, AUC {auc}</title></polyline>"#,
                c = COLORS[i % COLORS.len()],
                p = pts.trim_end(),
                name = escape(&sc.scorer),
                label = escape(label),
                auc = l.auc.map_or("n/a".to_string(), |a| format!("{a:.4}")),
            );
        }
        let _ = writeln!(s, "</g>");
    }
    s.push_str("</svg>\n");
    s
}
