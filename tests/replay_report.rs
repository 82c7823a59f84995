//! `sgplane replay --report FILE.html`: a capture generated here, whose
//! packets' verdicts and interfaces the generator knows, replayed under a
//! policy with names full of `<`, `&` and quotes. The page must load
//! nothing from the network, show the counts the generator implies, escape
//! every name, and render in headless Chromium with its script run to the
//! end and nothing on the console. The screenshot is kept in
//! `$CARGO_TARGET_TMPDIR/replay-report/` (target/tmp/replay-report/).
//! The same for a VPC Flow Log, and for a capture cut short.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sgplane::wire::build;

const POLICY: &str = r#"
[prefix_lists]
"pl-<office>&co" = ["198.51.100.0/24"]

[security_groups.sg-web]
description = "web <script>alert(1)</script>"
ingress = [
  { proto = "tcp", ports = "443", from = "0.0.0.0/0", description = "HTTPS </td><img src=x onerror=alert(2)>" },
  { proto = "tcp", ports = "22", from = "pl-<office>&co" },
  { proto = "tcp", ports = "23", from = "0.0.0.0/0", action = "deny", priority = 1 },
]
egress = [ { proto = "all", to = "0.0.0.0/0" } ]

[security_groups."sg-db\"<&>'"]
ingress = [ { proto = "tcp", ports = "5432", from = "sg-web" } ]
egress = []

[interfaces.eni-web]
addresses = ["10.0.1.10"]
security_groups = ["sg-web"]

[interfaces."eni-<db>&"]
addresses = ["10.0.2.20"]
security_groups = ["sg-db\"<&>'"]
"#;

const WEB: &str = "eni-web";
const DB: &str = "eni-<db>&";
/// The first packet's time: 2023-11-14 22:13:20 UTC.
const T0: u64 = 1_700_000_000;
/// The capture's span: ten minutes.
const SPAN_US: u64 = 600_000_000;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A packet and what the generator knows of it.
struct Sent {
    frame: Vec<u8>,
    /// The interfaces it leaves and enters.
    from: Option<&'static str>,
    to: Option<&'static str>,
    allowed: bool,
    reason: &'static str,
    /// The interface whose groups deny it.
    denied_at: Option<&'static str>,
}

/// The story: HTTPS from the internet to the web server (handshakes), the
/// web server to the database, SSH from the internet to the web server
/// (no rule), telnet to it (a deny rule), and the internet to the database
/// (no rule).
fn story() -> Vec<Sent> {
    let (web, db) = (ip("10.0.1.10"), ip("10.0.2.20"));
    let allow = |frame, from, to, reason| Sent {
        frame,
        from,
        to,
        allowed: true,
        reason,
        denied_at: None,
    };
    let deny = |frame, to: &'static str, reason| Sent {
        frame,
        from: None,
        to: Some(to),
        allowed: false,
        reason,
        denied_at: Some(to),
    };
    // Connections (a flow's packets, in order), interleaved below.
    let mut conns: Vec<Vec<Sent>> = Vec::new();
    for i in 0..40u16 {
        let c = ip(&format!("203.0.113.{}", 1 + i));
        let sport = 40_000 + i;
        conns.push(vec![
            allow(
                build::tcp(c, web, sport, 443, 0x02, 1, 0, b""),
                None,
                Some(WEB),
                "rule",
            ),
            allow(
                build::tcp(web, c, 443, sport, 0x12, 9, 2, b""),
                Some(WEB),
                None,
                "established",
            ),
            allow(
                build::tcp(c, web, sport, 443, 0x10, 2, 10, b""),
                None,
                Some(WEB),
                "established",
            ),
        ]);
    }
    for i in 0..10u16 {
        let sport = 50_000 + i;
        conns.push(vec![
            allow(
                build::tcp(web, db, sport, 5432, 0x02, 1, 0, b""),
                Some(WEB),
                Some(DB),
                "rule",
            ),
            allow(
                build::tcp(db, web, 5432, sport, 0x12, 9, 2, b""),
                Some(DB),
                Some(WEB),
                "established",
            ),
        ]);
    }
    for _ in 0..15 {
        let f = build::tcp(ip("203.0.113.77"), web, 41_000, 22, 0x02, 1, 0, b"");
        conns.push(vec![deny(f, WEB, "no-rule")]);
    }
    for i in 0..7u16 {
        let f = build::tcp(ip("203.0.113.88"), web, 42_000 + i, 23, 0x02, 1, 0, b"");
        conns.push(vec![deny(f, WEB, "rule")]);
    }
    for _ in 0..5 {
        let f = build::tcp(ip("203.0.113.99"), db, 5555, 5432, 0x02, 1, 0, b"");
        conns.push(vec![deny(f, DB, "no-rule")]);
    }
    // A fixed shuffle of whole connections: each flow's packets stay in order.
    let n = conns.len();
    let mut keyed: Vec<(usize, Vec<Sent>)> = conns.into_iter().enumerate().collect();
    keyed.sort_by_key(|(i, _)| (i * 37) % n);
    keyed.into_iter().flat_map(|(_, c)| c).collect()
}

/// A pcap of `packets`, spread evenly over [`SPAN_US`] from [`T0`].
fn pcap(packets: &[Sent]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let n = packets.len() as u64;
    for (i, p) in packets.iter().enumerate() {
        let us = T0 * 1_000_000 + i as u64 * (SPAN_US - 1) / (n - 1);
        out.extend_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(p.frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(p.frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&p.frame);
    }
    out
}

fn sgplane(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sgplane"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run sgplane")
}

/// `s` as it must appear in the page's text.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn num(n: u64) -> String {
    let d = n.to_string();
    let mut o = String::new();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i) % 3 == 0 {
            o.push(',');
        }
        o.push(c);
    }
    o
}

/// Nothing in the page loads from elsewhere: no `src`/`href` to a URL, no
/// `url(...)`, no `@import`, no `<link>`, and the one script is inline.
fn assert_self_contained(page: &str) {
    let lower = page.to_ascii_lowercase();
    for bad in [
        "src=\"http",
        "src='http",
        "href=\"http",
        "href='http",
        "href=\"//",
        "src=\"//",
        "url(",
        "@import",
        "<link",
        "<iframe",
        "<img",
        "<script src",
    ] {
        assert!(!lower.contains(bad), "the page has {bad}");
    }
    // The only http(s) text is SVG's namespace name, which loads nothing.
    let urls = lower.matches("http://").count() + lower.matches("https://").count();
    let ns = lower
        .matches("xmlns=\"http://www.w3.org/2000/svg\"")
        .count();
    assert_eq!(urls, ns, "only SVG namespace names mention http");
    assert_eq!(lower.matches("<script").count(), 1, "one script, ours");
}

/// The numeric cells of the table row with a cell holding just `name`.
fn row_numbers(page: &str, name: &str) -> Vec<u64> {
    let cell = format!("<td><span class=\"mono\">{}</span></td>", esc(name));
    let at = page
        .find(&cell)
        .unwrap_or_else(|| panic!("no row for {name}"));
    let start = page[..at].rfind("<tr>").unwrap();
    let row = &page[start..at + page[at..].find("</tr>").unwrap()];
    row.split("<td class=\"n\">")
        .skip(1)
        .map(|c| {
            c[..c.find("</td>").unwrap()]
                .replace(',', "")
                .parse()
                .unwrap()
        })
        .collect()
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// Where screenshots are kept.
fn artifacts() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("replay-report");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Renders `page` in headless Chromium: the script ran to its end without
/// an exception, nothing was logged to the console, and a screenshot is
/// saved as `shot`. Skips (saying so) without Chromium.
fn render(page: &Path, shot: &Path, must_show: &[&str]) {
    let Some(chromium) = chromium() else {
        eprintln!(
            "SKIPPED: no chromium on this machine; {} was not rendered",
            page.display()
        );
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(format!("file://{}", page.display()))
            .output()
            .unwrap()
    };
    let out = run(&["--dump-dom"]);
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        dom.contains("id=\"js-status\" data-state=\"ok\""),
        "the script ran to its end: {}",
        &dom[..dom.len().min(2000)]
    );
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console output: {console:?}");
    for want in must_show {
        assert!(dom.contains(want), "rendered page shows {want}");
    }
    let _ = std::fs::remove_file(shot);
    let out = run(&[
        "--window-size=1280,2400",
        &format!("--screenshot={}", shot.display()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "a screenshot"
    );
    eprintln!("screenshot: {}", shot.display());
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    in_allowed: u64,
    in_denied: u64,
    out_allowed: u64,
    out_denied: u64,
    denied_here: u64,
}

#[test]
fn a_capture_report_shows_the_counts_the_story_implies_and_renders_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let sent = story();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    std::fs::write(dir.path().join("story.pcap"), pcap(&sent)).unwrap();
    let o = sgplane(
        &[
            "-c",
            "policy.toml",
            "replay",
            "story.pcap",
            "--json",
            "--no-progress",
            "--report",
            "report.html",
        ],
        dir.path(),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert_self_contained(&page);

    // The summary agrees with the story, and the page with both.
    let n = sent.len() as u64;
    let allowed = sent.iter().filter(|s| s.allowed).count() as u64;
    assert_eq!(summary["packets"], n);
    assert_eq!(summary["allowed"], allowed);
    for (v, label) in [
        (n, "packets"),
        (allowed, "allowed"),
        (n - allowed, "denied"),
    ] {
        let card = format!(
            "<div class=\"v\">{}</div><div class=\"l\">{label}</div>",
            num(v)
        );
        assert!(page.contains(&card), "{card}");
    }
    let mut by_reason: BTreeMap<&str, u64> = BTreeMap::new();
    for s in sent.iter().filter(|s| !s.allowed) {
        *by_reason.entry(s.reason).or_default() += 1;
    }
    // The chart's legend: totals per series equal the story's.
    let legend = |label: &str, v: u64| format!("</i>{label} <b>{}</b></span>", num(v));
    assert!(page.contains(&legend("allowed", allowed)));
    for (r, v) in &by_reason {
        assert!(page.contains(&legend(r, *v)), "{}", legend(r, *v));
    }
    // Ten minutes in at most 240 buckets: 10 s each (2 s would need 300).
    assert!(page.contains("60 buckets of 10 s"), "bucket width");
    assert!(page.contains("2023-11-14 22:13:20 UTC → 2023-11-14 22:23:19.999999 UTC"));
    // Ticks every 2 min (10 min / 8 rounded up), the date under the first.
    assert!(
        page.contains(">22:14<") && page.contains(">22:22<"),
        "UTC axis labels"
    );
    assert!(page.contains(">2023-11-14<"), "the date on the axis");

    // Per interface, as the story has them.
    let mut want: BTreeMap<&str, Counts> = BTreeMap::new();
    for s in &sent {
        if let Some(f) = s.from {
            let c = want.entry(f).or_default();
            if s.allowed {
                c.out_allowed += 1
            } else {
                c.out_denied += 1
            }
        }
        if let Some(t) = s.to {
            let c = want.entry(t).or_default();
            if s.allowed {
                c.in_allowed += 1
            } else {
                c.in_denied += 1
            }
        }
        if let Some(d) = s.denied_at {
            want.entry(d).or_default().denied_here += 1;
        }
    }
    for (name, c) in &want {
        assert_eq!(
            row_numbers(&page, name),
            vec![
                c.in_allowed,
                c.in_denied,
                c.out_allowed,
                c.out_denied,
                c.denied_here
            ],
            "{name}"
        );
    }

    // The top denied flow: the 15 SSH attempts, counted exactly.
    let top = page.find("<h2>Top denied flows</h2>").unwrap();
    let first_row = &page[top..top + page[top..].find("</tr><tr>").unwrap() + 200];
    assert!(first_row.contains("<td class=\"n\">15</td><td class=\"n\">0</td>"));
    assert!(first_row.contains("203.0.113.77"));
    assert!(page.contains("Every count is exact"));
    // Rules by new flows: the HTTPS allow (40) and the telnet deny (7).
    let rules = &page[page.find("<h2>Rules that decided the most</h2>").unwrap()..];
    assert_eq!(row_numbers(rules, "sg-web/ingress/0"), vec![40]);
    assert_eq!(row_numbers(rules, "sg-web/ingress/2"), vec![7]);
    let deny_col = page.find(">deny rules (new flows decided)</h3>").unwrap();
    assert!(page[deny_col..].contains("sg-web/ingress/2"));

    // Every name from the policy is escaped; nothing of it runs.
    for name in ["sg-db\"<&>'", DB, "pl-<office>&co"] {
        assert!(page.contains(&esc(name)), "{name} escaped");
    }
    assert!(!page.contains("<script>alert"));
    assert!(page.contains("web &lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("HTTPS &lt;/td&gt;&lt;img src=x onerror=alert(2)&gt;"));
    // The graph: both interfaces, their groups, and what the rules name.
    let graph = &page[page.find("<svg id=\"sg-graph\"").unwrap()..];
    for node in [
        WEB,
        DB,
        "sg-web",
        "sg-db\"<&>'",
        "pl-<office>&co",
        "anywhere",
    ] {
        assert!(
            graph.contains(&format!(">{}</text>", esc(node))),
            "graph node {node}"
        );
    }
    assert!(!page.contains("Truncated"));

    let shot = artifacts().join("capture.png");
    let kept = artifacts().join("capture.html");
    std::fs::write(&kept, &page).unwrap();
    render(&kept, &shot, &["Top denied flows", "sg-graph"]);
}

#[test]
fn a_flow_log_report_counts_agreeing_and_differing_records() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/flowlogs");
    let dir = tempfile::tempdir().unwrap();
    let o = sgplane(
        &[
            "-c",
            data.join("policy.toml").to_str().unwrap(),
            "replay",
            data.join("default.log").to_str().unwrap(),
            "--json",
            "--report",
            "flows.html",
        ],
        dir.path(),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let page = std::fs::read_to_string(dir.path().join("flows.html")).unwrap();
    assert_self_contained(&page);
    for (key, label) in [
        ("records", "records"),
        ("agreeing", "agree"),
        ("differing", "differ"),
        ("recorded_accept_denied", "recorded ACCEPT, sgplane denies"),
    ] {
        let v = summary[key].as_u64().unwrap();
        let card = format!(
            "<div class=\"v\">{}</div><div class=\"l\">{}</div>",
            num(v),
            esc(label)
        );
        assert!(page.contains(&card), "{card}");
    }
    let differing = summary["differing"].as_u64().unwrap();
    assert!(differing > 0, "the fixture has differing records");
    // The chart's first panel holds every judged record with a start time.
    let agree = summary["agreeing"].as_u64().unwrap();
    assert!(page.contains(&format!("</i>agree <b>{}</b></span>", num(agree))));
    // Each listed difference names its line.
    for d in summary["differences"].as_array().unwrap() {
        let line = d["line"].as_u64().unwrap();
        assert!(
            page.contains(&format!("<td class=\"n\">{line}</td>")),
            "line {line}"
        );
    }
    assert!(page.contains("Top differing flows"));
    assert!(page.contains(">eni-web</text>"));
    let kept = artifacts().join("flowlog.html");
    std::fs::write(&kept, &page).unwrap();
    render(
        &kept,
        &artifacts().join("flowlog.png"),
        &["Top differing flows"],
    );
}

#[test]
fn a_capture_cut_short_still_gets_its_report_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let sent = story();
    let mut file = pcap(&sent);
    file.truncate(file.len() - 10);
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    std::fs::write(dir.path().join("cut.pcap"), &file).unwrap();
    let o = sgplane(
        &[
            "-c",
            "policy.toml",
            "replay",
            "cut.pcap",
            "--no-progress",
            "--report",
            "cut.html",
        ],
        dir.path(),
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let page = std::fs::read_to_string(dir.path().join("cut.html")).unwrap();
    let read = sent.len() as u64 - 1;
    assert!(page.contains("The capture stopped early"));
    assert!(page.contains(&format!("This report covers the {read} packets before it")));
    assert!(page.contains(&format!(
        "<div class=\"v\">{read}</div><div class=\"l\">packets</div>"
    )));
}

#[test]
fn a_report_that_cannot_be_created_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("story.pcap"), pcap(&story())).unwrap();
    let o = sgplane(
        &[
            "replay",
            "story.pcap",
            "--no-progress",
            "--report",
            "no/such/dir/r.html",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot create no/such/dir/r.html"), "{err}");
}

#[test]
fn an_interrupted_replay_says_so_in_its_report() {
    use std::io::Write;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sgplane"))
        .args([
            "-c",
            "policy.toml",
            "replay",
            "-",
            "--json",
            "--no-progress",
        ])
        .args(["--report", "int.html"])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&pcap(&story())).unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: kill(2) on a child this test started and has not waited for.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    // The input stays open: sgplane stops on the signal, not on EOF.
    let o = child.wait_with_output().unwrap();
    drop(stdin);
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let n = summary["packets"].as_u64().unwrap();
    assert!(n <= story().len() as u64, "{n} packets judged");
    let page = std::fs::read_to_string(dir.path().join("int.html")).unwrap();
    assert!(
        page.contains(&format!(
            "<b>Interrupted</b> by SIGINT at packet {}",
            num(n)
        )),
        "the note"
    );
    assert_self_contained(&page);
}
