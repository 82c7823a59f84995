//! Renderers over a [`Trace`]: text for people, JSON (SPEC §8) for
//! programs, and a standalone SVG picture of the hops.

use std::fmt::Write as _;

use super::*;

/// The SPEC §8 JSON: `blocked_at` is the blocking hop's component
/// (`blocked_hop` its index).
pub fn to_json(t: &Trace) -> serde_json::Value {
    let mut v = serde_json::to_value(t).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "blocked_at".into(),
            t.blocking()
                .map_or(serde_json::Value::Null, |h| h.component.clone().into()),
        );
        o.insert(
            "blocked_hop".into(),
            t.blocked_at.map_or(serde_json::Value::Null, |i| i.into()),
        );
    }
    v
}

/// The answer as text.
pub fn to_text(t: &Trace) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "path {} -> {} {}: {}",
        t.from,
        t.to,
        t.flow,
        if t.reachable {
            "REACHABLE"
        } else {
            "NOT REACHABLE"
        }
    );
    for (i, h) in t.hops.iter().enumerate() {
        let mark = if Some(i) == t.blocked_at { ">>" } else { "  " };
        let _ = writeln!(
            s,
            "{mark}{:>2}. {:<11} {:<30} {:<13} {}",
            i + 1,
            h.verdict.as_str(),
            h.kind,
            h.direction,
            h.component
        );
        let _ = writeln!(
            s,
            "       {}{}",
            h.rule
                .as_ref()
                .map(|r| format!("[{r}] "))
                .unwrap_or_default(),
            h.explanation
        );
    }
    if let Some(h) = t.blocking() {
        let _ = writeln!(
            s,
            "blocked at hop {}: {}",
            t.blocked_at.unwrap_or(0) + 1,
            h.component
        );
        for e in &t.explanations {
            let _ = writeln!(s, "  {}: {}", e.code, e.message);
        }
        if !h.nearest_misses.is_empty() {
            let _ = writeln!(s, "nearest misses:");
            for m in &h.nearest_misses {
                let _ = writeln!(s, "  {}", m.message);
            }
        }
    }
    if !t.fixes.is_empty() {
        let _ = writeln!(s, "fixes (applied in order):");
        for (i, f) in t.fixes.iter().enumerate() {
            let _ = writeln!(s, "  {}. {} ({})", i + 1, f.change, f.verified);
            for line in f.toml.lines() {
                let _ = writeln!(s, "       {line}");
            }
            if let Some(a) = &f.aws {
                let _ = writeln!(s, "       $ {a}");
            }
        }
    } else if !t.reachable {
        let _ = writeln!(s, "no fix found that the analysis could check");
    }
    for n in &t.notes {
        let _ = writeln!(s, "note: {n}");
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Splits text into lines of at most `width` characters at spaces.
fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in s.split_whitespace() {
        let last = lines.last_mut().expect("one line at least");
        if !last.is_empty() && last.len() + 1 + word.len() > width {
            lines.push(word.chars().take(width).collect());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(&word.chars().take(width).collect::<String>());
        }
    }
    lines
}

/// The hops as boxes left to right, the blocking one red with its fix
/// beside it: a standalone SVG document.
pub fn to_svg(t: &Trace) -> String {
    const W: usize = 190;
    const GAP: usize = 30;
    const H: usize = 150;
    let n = t.hops.len().max(1);
    let width = 20 + n * (W + GAP) + 260;
    let fix_lines: Vec<String> = t
        .fixes
        .iter()
        .flat_map(|f| wrap(&format!("fix: {}", f.change), 60))
        .collect();
    let height = 130 + H + 20 * (fix_lines.len() + 2);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">
<title>sgplane path {} to {}</title>
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="24" font-size="15" font-weight="bold">{} → {} ({}): {}</text>"#,
        esc(&t.from),
        esc(&t.to),
        esc(&t.from),
        esc(&t.to),
        esc(&t.flow),
        if t.reachable {
            "reachable"
        } else {
            "NOT reachable"
        }
    );
    let _ = writeln!(
        s,
        r##"<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#555"/></marker></defs>"##
    );
    for (i, h) in t.hops.iter().enumerate() {
        let x = 10 + i * (W + GAP);
        let y = 50;
        let blocking = Some(i) == t.blocked_at;
        let (fill, stroke) = match h.verdict {
            HopVerdict::Allow => ("#e6f4ea", "#2e7d32"),
            HopVerdict::Deny => ("#fdecea", "#c62828"),
            HopVerdict::Unsupported => ("#fff4e5", "#ef6c00"),
        };
        let _ = writeln!(
            s,
            r#"<g class="hop{}"><rect x="{x}" y="{y}" width="{W}" height="{H}" rx="8" fill="{fill}" stroke="{stroke}" stroke-width="{}"/>"#,
            if blocking { " blocking" } else { "" },
            if blocking { 3 } else { 1 }
        );
        let mut lines = vec![(format!("{}. {} ({})", i + 1, h.kind, h.direction), true)];
        lines.extend(wrap(&h.component, 30).into_iter().map(|l| (l, false)));
        lines.push((h.verdict.as_str().to_uppercase(), true));
        if let Some(r) = &h.rule {
            lines.extend(wrap(r, 30).into_iter().map(|l| (l, false)));
        }
        for (k, (line, bold)) in lines.iter().take(9).enumerate() {
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}"{}>{}</text>"#,
                x + 8,
                y + 18 + k * 15,
                if *bold { r#" font-weight="bold""# } else { "" },
                esc(line)
            );
        }
        let _ = writeln!(s, "</g>");
        if i + 1 < t.hops.len() {
            let _ = writeln!(
                s,
                r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#555" marker-end="url(#arrow)"/>"##,
                x + W,
                y + H / 2,
                x + W + GAP - 2,
                y + H / 2
            );
        }
    }
    let mut y = 50 + H + 30;
    if let Some(h) = t.blocking() {
        let x = 10 + t.blocked_at.unwrap_or(0) * (W + GAP);
        for e in t.explanations.iter().take(2) {
            let _ = writeln!(
                s,
                r##"<text x="{x}" y="{y}" fill="#c62828" font-weight="bold">{}</text>"##,
                esc(e.code)
            );
            y += 16;
        }
        for line in wrap(&h.explanation, 70).iter().take(3) {
            let _ = writeln!(
                s,
                r##"<text x="{x}" y="{y}" fill="#c62828">{}</text>"##,
                esc(line)
            );
            y += 15;
        }
        for line in &fix_lines {
            let _ = writeln!(
                s,
                r##"<text x="{x}" y="{y}" fill="#1565c0">{}</text>"##,
                esc(line)
            );
            y += 15;
        }
    }
    let _ = writeln!(s, "</svg>");
    s
}
