//! The page around the sections: escaping, the inline style sheet and
//! script, and small builders for tables and notes. Nothing here loads
//! anything: no external style sheet, font, image or script.

use std::fmt::Write as _;

/// `s` safe in HTML text and in quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// `s` cut to `n` characters, an ellipsis marking a cut.
pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut o: String = s.chars().take(n.saturating_sub(1)).collect();
    o.push('…');
    o
}

/// `1234567` as `1,234,567`.
pub fn num(n: u64) -> String {
    let d = n.to_string();
    let mut o = String::with_capacity(d.len() + d.len() / 3);
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i) % 3 == 0 {
            o.push(',');
        }
        o.push(c);
    }
    o
}

/// `part` of `whole` as a percentage with one decimal.
pub fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0.0%".into();
    }
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}

/// A table: a header row and body rows of cells that are already HTML;
/// columns named in `numeric` are right-aligned.
pub struct Table {
    html: String,
    numeric: Vec<bool>,
}

impl Table {
    pub fn new(class: &str, headers: &[(&str, bool)]) -> Table {
        let mut html = format!("<table class=\"{class}\"><thead><tr>");
        for (h, n) in headers {
            let _ = write!(
                html,
                "<th{}>{}</th>",
                if *n { " class=\"n\"" } else { "" },
                esc(h)
            );
        }
        html.push_str("</tr></thead><tbody>");
        Table {
            html,
            numeric: headers.iter().map(|h| h.1).collect(),
        }
    }

    /// A row of cells that are HTML already (escape what is text).
    pub fn row(&mut self, cells: &[String]) {
        self.html.push_str("<tr>");
        for (i, c) in cells.iter().enumerate() {
            let n = self.numeric.get(i).copied().unwrap_or(false);
            let _ = write!(
                self.html,
                "<td{}>{c}</td>",
                if n { " class=\"n\"" } else { "" }
            );
        }
        self.html.push_str("</tr>");
    }

    pub fn finish(mut self) -> String {
        self.html.push_str("</tbody></table>");
        self.html
    }
}

/// A note box: `kind` is `warn` or `info`; `html` is HTML already.
pub fn note(kind: &str, html: &str) -> String {
    format!("<p class=\"note {kind}\">{html}</p>")
}

/// A figure card: a big number and what it counts.
pub fn card(value: &str, label: &str, class: &str) -> String {
    format!(
        "<div class=\"card {class}\"><div class=\"v\">{}</div><div class=\"l\">{}</div></div>",
        esc(value),
        esc(label)
    )
}

/// The whole document around `body` (HTML), titled `title` (text).
pub fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <div id=\"js-status\" data-state=\"pending\" hidden></div>\n\
         {body}\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
        esc(title)
    )
}

const STYLE: &str = r#"
:root { --fg:#1d2330; --muted:#5d6675; --line:#d8dde6; --bg:#f5f7fa; --card:#fff;
  --allow:#2e9d5b; --deny:#d1363a; }
* { box-sizing:border-box; }
body { margin:0; background:var(--bg); color:var(--fg);
  font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif; }
main { max-width:1180px; margin:0 auto; padding:24px 28px 48px; }
h1 { font-size:22px; margin:0 0 4px; }
h1 .sub { color:var(--muted); font-weight:400; }
h2 { font-size:17px; margin:30px 0 10px; padding-bottom:4px; border-bottom:2px solid var(--line); }
h3 { font-size:14px; margin:14px 0 6px; }
code, .mono, td.mono { white-space:nowrap; font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace; font-size:12.5px; }
dl.meta { display:grid; grid-template-columns:max-content 1fr; gap:3px 16px; margin:12px 0; }
dl.meta dt { color:var(--muted); }
dl.meta dd { margin:0; overflow-wrap:anywhere; }
.cards { display:flex; flex-wrap:wrap; gap:12px; margin:16px 0 6px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:10px 16px; min-width:150px; }
.card .v { font-size:22px; font-weight:600; }
.card .l { color:var(--muted); font-size:12.5px; }
.card.allow .v { color:var(--allow); } .card.deny .v { color:var(--deny); }
.note { padding:8px 12px; border-radius:6px; margin:8px 0; }
.note.warn { background:#fff4e0; border:1px solid #f0b45a; }
.note.info { background:#eef4ff; border:1px solid #a9c1ef; }
.panel { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 14px; overflow-x:auto; }
table { border-collapse:collapse; width:100%; background:var(--card); }
th, td { text-align:left; padding:4px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:12.5px; color:var(--muted); font-weight:600; background:#eef1f5; }
td.n, th.n { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
tbody tr:hover { background:#f3f6fb; }
.cols { display:grid; grid-template-columns:1fr 1fr; gap:18px; }
@media (max-width:900px) { .cols { grid-template-columns:1fr; } }
.muted { color:var(--muted); }
.allow { color:var(--allow); } .deny { color:var(--deny); }
.legend { display:flex; flex-wrap:wrap; gap:4px 16px; margin:6px 0 0; font-size:12.5px; }
.legend span i { display:inline-block; width:11px; height:11px; border-radius:2px; margin-right:5px; vertical-align:-1px; }
.bar { display:inline-block; height:9px; border-radius:2px; vertical-align:0; }
svg text { font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif; }
svg .axis { font-size:11px; fill:var(--muted); }
svg .grid { stroke:#e6e9ef; stroke-width:1; }
svg .hover rect { fill:transparent; }
svg .hover rect:hover { fill:rgba(40,60,90,.08); }
#sg-graph .node rect { stroke-width:1.2; rx:5; }
#sg-graph .node text { font-size:12px; }
#sg-graph .node .k { font-size:10.5px; fill:var(--muted); }
#sg-graph .node.iface rect { fill:#eef4ff; stroke:#7d9fd8; }
#sg-graph .node.sg rect { fill:#fff7e6; stroke:#e0a33a; }
#sg-graph .node.ref rect { fill:#f4f0ff; stroke:#9c86d6; }
#sg-graph .node.pl rect { fill:#eaf7ef; stroke:#5fae7c; }
#sg-graph .node.any rect { fill:#fdecec; stroke:#d1363a; }
#sg-graph .edge { fill:none; stroke-opacity:.75; }
#sg-graph .edge.attach { stroke:#7d9fd8; }
#sg-graph .edge.subnet { stroke:#7d9fd8; stroke-dasharray:2 3; }
#sg-graph .edge.allow { stroke:#3f7fbf; }
#sg-graph .edge.deny { stroke:#d1363a; }
#sg-graph .edge.out { stroke-dasharray:6 4; }
#sg-graph .head { font-size:12px; font-weight:600; fill:var(--muted); }
#sg-graph.focus .edge { stroke-opacity:.08; }
#sg-graph.focus .node { opacity:.3; }
#sg-graph.focus .edge.hot { stroke-opacity:1; }
#sg-graph.focus .node.hot { opacity:1; }
footer { margin-top:36px; color:var(--muted); font-size:12px; }
"#;

/// Highlights a graph node's edges on hover; says in `#js-status` that it
/// ran without an exception (a test reads it from the rendered DOM).
const SCRIPT: &str = r#"
(function () {
  var status = document.getElementById('js-status');
  window.addEventListener('error', function (e) {
    status.setAttribute('data-state', 'error');
    status.textContent = 'script error: ' + e.message;
  });
  var g = document.getElementById('sg-graph');
  if (g) {
    var edges = g.querySelectorAll('.edge');
    var nodes = {};
    g.querySelectorAll('.node').forEach(function (n) { nodes[n.getAttribute('data-n')] = n; });
    var lit = [];
    var clear = function () {
      g.classList.remove('focus');
      lit.forEach(function (e) { e.classList.remove('hot'); });
      lit = [];
    };
    Object.keys(nodes).forEach(function (id) {
      var n = nodes[id];
      n.addEventListener('mouseenter', function () {
        clear();
        g.classList.add('focus');
        n.classList.add('hot');
        lit.push(n);
        edges.forEach(function (e) {
          var a = e.getAttribute('data-a'), b = e.getAttribute('data-b');
          if (a === id || b === id) {
            e.classList.add('hot');
            lit.push(e);
            var other = nodes[a === id ? b : a];
            if (other) { other.classList.add('hot'); lit.push(other); }
          }
        });
      });
      n.addEventListener('mouseleave', clear);
    });
  }
  if (status.getAttribute('data-state') === 'pending') {
    status.setAttribute('data-state', 'ok');
  }
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_text_and_attributes() {
        assert_eq!(
            esc(r#"<sg "a" & 'b'>"#),
            "&lt;sg &quot;a&quot; &amp; &#39;b&#39;&gt;"
        );
        assert_eq!(num(1_234_567), "1,234,567");
        assert_eq!(num(999), "999");
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
    }
}
