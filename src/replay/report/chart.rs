//! Stacked step areas over time, one or more panels sharing a UTC time
//! axis, drawn as inline SVG. Every bucket has an invisible column whose
//! tooltip gives its time range and counts.

use std::fmt::Write as _;

use super::html::{esc, num};
use super::timeline::{tick_step, Buckets, Utc};

/// One stacked quantity: its column in the bucket rows.
pub struct Series {
    pub label: String,
    pub color: &'static str,
    pub column: usize,
}

/// A chart panel: series stacked bottom-up in the order given.
pub struct Panel {
    pub title: String,
    pub series: Vec<Series>,
}

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const PANEL_H: f64 = 150.0;
const GAP: f64 = 34.0;
const TOP: f64 = 22.0;
const AXIS_H: f64 = 44.0;

/// A y axis for values up to `peak`: a round step (1, 2 or 5 × 10^k) that
/// cuts it into at most 5 intervals, and the top (a multiple of the step).
fn y_axis(peak: u64) -> (u64, u64) {
    let peak = peak.max(1);
    let mut m = 1u64;
    loop {
        for f in [1, 2, 5] {
            let step = m.saturating_mul(f);
            if step.saturating_mul(5) >= peak {
                return (step, peak.div_ceil(step).saturating_mul(step));
            }
        }
        if m > u64::MAX / 10 {
            return (peak, peak);
        }
        m *= 10;
    }
}

/// The SVG of `panels` over the buckets `b`; `unit` names what is
/// counted (`packets`, `records`).
pub fn stacked(b: &Buckets, panels: &[Panel], unit: &str) -> String {
    let n = b.rows.len().max(1);
    let plot_w = WIDTH - LEFT - RIGHT;
    let bw = plot_w / n as f64;
    let height = TOP + panels.len() as f64 * (PANEL_H + GAP) - GAP + AXIS_H;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" \
         width=\"100%\" role=\"img\" aria-label=\"{} over time\">",
        esc(unit)
    );
    for (pi, panel) in panels.iter().enumerate() {
        let y0 = TOP + pi as f64 * (PANEL_H + GAP);
        let base = y0 + PANEL_H;
        let peak = b
            .rows
            .iter()
            .map(|r| panel.series.iter().map(|x| r[x.column]).sum::<u64>())
            .max()
            .unwrap_or(0);
        let (step, top) = y_axis(peak);
        let y = |v: u64| base - v as f64 / top as f64 * PANEL_H;
        let _ = write!(
            s,
            "<text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"12.5\" font-weight=\"600\" fill=\"#1d2330\">{}</text>",
            y0 - 8.0,
            esc(&panel.title)
        );
        for k in 0..=top / step {
            let v = k * step;
            let yy = y(v);
            let _ = write!(
                s,
                "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/>\
                 <text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                WIDTH - RIGHT,
                LEFT - 6.0,
                yy + 4.0,
                num(v)
            );
        }
        if peak == 0 {
            let _ = write!(
                s,
                "<text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">none</text>",
                LEFT + plot_w / 2.0,
                base - PANEL_H / 2.0
            );
        }
        // Stacked step areas, bottom-up.
        let mut below = vec![0u64; b.rows.len()];
        for x in &panel.series {
            if b.rows.iter().all(|r| r[x.column] == 0) {
                continue;
            }
            let above: Vec<u64> = b
                .rows
                .iter()
                .zip(&below)
                .map(|(r, lo)| lo + r[x.column])
                .collect();
            let mut d = String::new();
            for (i, v) in above.iter().enumerate() {
                let (xa, xb) = (LEFT + i as f64 * bw, LEFT + (i + 1) as f64 * bw);
                let c = if i == 0 { 'M' } else { 'L' };
                let _ = write!(d, "{c}{xa:.2},{:.2}L{xb:.2},{:.2}", y(*v), y(*v));
            }
            for (i, v) in below.iter().enumerate().rev() {
                let (xa, xb) = (LEFT + i as f64 * bw, LEFT + (i + 1) as f64 * bw);
                let _ = write!(d, "L{xb:.2},{:.2}L{xa:.2},{:.2}", y(*v), y(*v));
            }
            let _ = write!(
                s,
                "<path d=\"{d}Z\" fill=\"{}\" fill-opacity=\"0.85\" stroke=\"{}\" stroke-width=\"0.6\"><title>{}</title></path>",
                x.color,
                x.color,
                esc(&x.label)
            );
            below = above;
        }
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{base:.1}\" y2=\"{base:.1}\" stroke=\"#8a93a3\"/>",
            WIDTH - RIGHT
        );
    }
    axis(&mut s, b, n, bw, height);
    hover(&mut s, b, panels, bw, height, unit);
    s.push_str("</svg>");
    s
}

/// Tick marks and UTC labels under the last panel; the date under the
/// first tick and wherever the day changes.
fn axis(s: &mut String, b: &Buckets, n: usize, bw: f64, height: f64) {
    let base = height - AXIS_H;
    let span = b.width.saturating_mul(n as u64);
    let end = b.start.saturating_add(span);
    let step = tick_step(span, 8).max(1);
    let x_of = |t: u64| LEFT + (t - b.start) as f64 / b.width as f64 * bw;
    let mut next = b.start.checked_next_multiple_of(step);
    let mut last_date = String::new();
    while let Some(t) = next.filter(|&t| t <= end) {
        let u = Utc::from_ns(t);
        let x = x_of(t);
        // A label at the right end would run off the picture.
        let anchor = if x > WIDTH - RIGHT - 48.0 {
            "end"
        } else {
            "middle"
        };
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{base:.1}\" y2=\"{:.1}\" stroke=\"#8a93a3\"/>\
             <text class=\"axis\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            base + 5.0,
            base + 17.0,
            u.time(step)
        );
        let date = u.date();
        if date != last_date {
            let _ = write!(
                s,
                "<text class=\"axis\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{date}</text>",
                base + 30.0
            );
            last_date = date;
        }
        next = t.checked_add(step);
    }
    let _ = write!(
        s,
        "<text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">time (UTC)</text>",
        WIDTH - RIGHT,
        height - 2.0
    );
}

/// An invisible column per bucket with its counts as a tooltip.
fn hover(s: &mut String, b: &Buckets, panels: &[Panel], bw: f64, height: f64, unit: &str) {
    s.push_str("<g class=\"hover\">");
    for (i, row) in b.rows.iter().enumerate() {
        let at = |k: u64| b.start.saturating_add(k.saturating_mul(b.width));
        let (from, to) = (Utc::from_ns(at(i as u64)), Utc::from_ns(at(i as u64 + 1)));
        let mut tip = format!(
            "{} {} – {} UTC",
            from.date(),
            from.time(b.width),
            to.time(b.width)
        );
        for p in panels {
            let total: u64 = p.series.iter().map(|x| row[x.column]).sum();
            let _ = write!(tip, "\n{}: {} {unit}", p.title, num(total));
            for x in p.series.iter().filter(|x| row[x.column] > 0) {
                let _ = write!(tip, "\n  {} {}", x.label, num(row[x.column]));
            }
        }
        let _ = write!(
            s,
            "<rect x=\"{:.2}\" y=\"{TOP}\" width=\"{:.2}\" height=\"{:.1}\"><title>{}</title></rect>",
            LEFT + i as f64 * bw,
            bw,
            height - AXIS_H - TOP,
            esc(&tip)
        );
    }
    s.push_str("</g>");
}

/// The legend of `panels`: each series with its total.
pub fn legend(panels: &[Panel], totals: &[u64]) -> String {
    let mut s = String::new();
    for p in panels {
        let _ = write!(s, "<div class=\"legend\"><b>{}:</b>", esc(&p.title));
        for x in &p.series {
            let t = totals.get(x.column).copied().unwrap_or(0);
            if t == 0 {
                continue;
            }
            let _ = write!(
                s,
                "<span><i style=\"background:{}\"></i>{} <b>{}</b></span>",
                x.color,
                esc(&x.label),
                num(t)
            );
        }
        s.push_str("</div>");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ends_of_time_draw_without_overflowing() {
        use super::super::timeline::Timeline;
        let panels = [Panel {
            title: "t".into(),
            series: vec![Series {
                label: "a".into(),
                color: "#000",
                column: 0,
            }],
        }];
        for ts in [
            [0, 0],
            [u64::MAX, u64::MAX],
            [0, u64::MAX],
            [u64::MAX - 5, 3],
        ] {
            let mut t = Timeline::new(1, 1);
            for x in ts {
                t.add(x, 0);
            }
            assert_eq!(t.totals(), vec![2]);
            let svg = stacked(&t.buckets(), &panels, "packets");
            assert!(svg.ends_with("</svg>") && svg.contains("time (UTC)"));
        }
    }

    #[test]
    fn y_axes_have_round_steps_and_at_most_five_intervals() {
        assert_eq!(y_axis(0), (1, 1));
        assert_eq!(y_axis(3), (1, 3));
        assert_eq!(y_axis(7), (2, 8));
        assert_eq!(y_axis(26), (10, 30));
        assert_eq!(y_axis(101), (50, 150));
        assert_eq!(y_axis(1_000_000), (200_000, 1_000_000));
        let (step, top) = y_axis(u64::MAX);
        assert!(top >= step && top / step <= 5);
    }
}
