//! The benchmark chart as a plain SVG (no plotting crate): two panels, req/s (linear) and p50 latency
//! (log scale) against the number of requests in flight (log scale), one line per client.

use std::fmt::Write as _;

/// One client's line: its points `(in flight, req/s, p50 µs)`, sorted by in flight.
pub struct Series {
    pub label: String,
    pub points: Vec<(usize, f64, f64)>,
    /// Drawn dashed (a variant of another client).
    pub dashed: bool,
}

const PALETTE: [&str; 12] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#393b79", "#ad494a",
];

const PANEL_W: f64 = 420.0;
const PANEL_H: f64 = 300.0;
const LEFT: f64 = 80.0;
const TOP: f64 = 78.0;
const GAP: f64 = 110.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Linear ticks from 0 covering `max`: steps of 1, 2 or 5 × 10^k, at most 6 of them.
fn linear_ticks(max: f64) -> Vec<f64> {
    let max = if max > 0.0 { max } else { 1.0 };
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| max / s <= 6.0)
        .unwrap_or(10.0 * mag);
    let n = (max / step).ceil() as usize;
    (0..=n).map(|i| i as f64 * step).collect()
}

fn human(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{}k", v / 1e3)
    } else {
        format!("{v}")
    }
}

/// The SVG document.
pub fn svg(title: &str, subtitle: &str, series: &[Series]) -> String {
    let levels: Vec<usize> = {
        let mut l: Vec<usize> = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
        l.sort_unstable();
        l.dedup();
        l
    };
    let (lo, hi) = (
        levels.first().copied().unwrap_or(1).max(1) as f64,
        levels.last().copied().unwrap_or(1).max(1) as f64,
    );
    let x_of = |n: usize, x0: f64| {
        if hi > lo {
            x0 + 20.0 + ((n.max(1) as f64).ln() - lo.ln()) / (hi.ln() - lo.ln()) * (PANEL_W - 40.0)
        } else {
            x0 + PANEL_W / 2.0
        }
    };
    let max_rps = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let rps_ticks = linear_ticks(max_rps * 1.05);
    let rps_top = *rps_ticks.last().unwrap();
    let p50s: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.2))
        .filter(|v| *v > 0.0)
        .collect();
    let (dec_lo, dec_hi) = if p50s.is_empty() {
        (1, 4)
    } else {
        let min = p50s.iter().copied().fold(f64::INFINITY, f64::min);
        let max = p50s.iter().copied().fold(0.0, f64::max);
        let (a, b) = (min.log10().floor() as i32, max.log10().ceil() as i32);
        (a, if b > a { b } else { a + 1 })
    };
    let y_rps = |v: f64| TOP + PANEL_H - v / rps_top * PANEL_H;
    let y_p50 = |v: f64| {
        let l = v.max(1e-9).log10();
        TOP + PANEL_H - (l - dec_lo as f64) / (dec_hi - dec_lo) as f64 * PANEL_H
    };
    let rows = series.len().div_ceil(3);
    let width = LEFT + 2.0 * PANEL_W + GAP + 30.0;
    let height = TOP + PANEL_H + 70.0 + rows as f64 * 20.0 + 10.0;
    let mut o = String::new();
    let _ = writeln!(
        o,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">"##
    );
    let _ = writeln!(
        o,
        r##"<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        o,
        r##"<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{}</text>"##,
        esc(title)
    );
    let _ = writeln!(
        o,
        r##"<text x="{LEFT}" y="40" fill="#555555">{}</text>"##,
        esc(subtitle)
    );
    for (panel, name) in [(0usize, "req/s"), (1, "p50 latency, µs (log scale)")] {
        let x0 = LEFT + panel as f64 * (PANEL_W + GAP);
        let _ = writeln!(
            o,
            r##"<rect x="{x0}" y="{TOP}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#333333"/>"##
        );
        let _ = writeln!(
            o,
            r##"<text x="{}" y="{}" text-anchor="middle" font-weight="bold">{name}</text>"##,
            x0 + PANEL_W / 2.0,
            TOP - 8.0
        );
        // y grid and labels
        let ticks: Vec<(f64, String)> = if panel == 0 {
            rps_ticks.iter().map(|&t| (y_rps(t), human(t))).collect()
        } else {
            (dec_lo..=dec_hi)
                .map(|d| (y_p50(10f64.powi(d)), human(10f64.powi(d))))
                .collect()
        };
        for (y, label) in ticks {
            let _ = writeln!(
                o,
                r##"<line x1="{x0}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#dddddd"/><text x="{}" y="{:.1}" text-anchor="end">{label}</text>"##,
                x0 + PANEL_W,
                x0 - 6.0,
                y + 4.0
            );
        }
        // x labels
        for &n in &levels {
            let x = x_of(n, x0);
            let _ = writeln!(
                o,
                r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{}" stroke="#eeeeee"/><text x="{x:.1}" y="{}" text-anchor="middle">{n}</text>"##,
                TOP + PANEL_H,
                TOP + PANEL_H + 16.0
            );
        }
        let _ = writeln!(
            o,
            r##"<text x="{}" y="{}" text-anchor="middle">requests in flight (log scale)</text>"##,
            x0 + PANEL_W / 2.0,
            TOP + PANEL_H + 34.0
        );
        for (i, s) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter(|p| if panel == 0 { p.1.is_finite() } else { p.2 > 0.0 })
                .map(|p| (x_of(p.0, x0), if panel == 0 { y_rps(p.1) } else { y_p50(p.2) }))
                .collect();
            let path: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            let dash = if s.dashed { r#" stroke-dasharray="6 4""# } else { "" };
            let _ = writeln!(
                o,
                r##"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"{dash}/>"##,
                path.join(" ")
            );
            for (x, y) in pts {
                let _ = writeln!(o, r##"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{color}"/>"##);
            }
        }
    }
    // legend
    let ly = TOP + PANEL_H + 58.0;
    for (i, s) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let (col, row) = (i % 3, i / 3);
        let x = LEFT + col as f64 * 300.0;
        let y = ly + row as f64 * 20.0;
        let dash = if s.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = writeln!(
            o,
            r##"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{color}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"##,
            x + 28.0,
            x + 34.0,
            y + 4.0,
            esc(&s.label)
        );
    }
    o.push_str("</svg>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_every_series_in_both_panels() {
        let series = vec![
            Series {
                label: "a <b>".into(),
                points: vec![(1, 5000.0, 180.0), (16, 25000.0, 600.0), (256, 36000.0, 7000.0)],
                dashed: false,
            },
            Series {
                label: "c".into(),
                points: vec![(1, 4000.0, 200.0), (16, 20000.0, 700.0)],
                dashed: true,
            },
        ];
        let svg = svg("t", "s", &series);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert_eq!(svg.matches("<circle").count(), 10);
        assert!(svg.contains("a &lt;b&gt;"));
        assert!(svg.contains(">256</text>") && svg.contains(">40k</text>") && svg.contains(">10k</text>"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn ticks() {
        assert_eq!(
            linear_ticks(36000.0 * 1.05),
            vec![0.0, 10000.0, 20000.0, 30000.0, 40000.0]
        );
        assert_eq!(linear_ticks(9.0).last(), Some(&10.0));
    }
}
