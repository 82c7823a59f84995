//! Counters of live modes and the two HTTP endpoints: Prometheus metrics
//! (`--metrics ADDR:PORT`, path `/metrics`) and the health check
//! (`--health ADDR:PORT`, any path: 200 while serving, 503 while draining).
//!
//! Workers keep their own counters (no atomics on the packet path) and publish
//! a snapshot every so often; the endpoint sums the snapshots.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::control::Control;
use crate::conntrack::InterfaceCount;
use crate::engine::{Engine, Ruleset, Stats};
use crate::policy::Reason;

/// One worker's last published counters.
#[derive(Clone, Default)]
pub struct Snapshot {
    pub stats: Stats,
    pub conntrack_entries: usize,
    /// The rules the counters' rule ids refer to.
    pub rules: Option<Arc<Ruleset>>,
    /// Mode-specific counters, e.g. `("returned_packets", n)`.
    pub extra: Vec<(&'static str, u64)>,
    /// Each interface's entries, allowance and refusals, by interface
    /// index of `rules`' policy.
    pub interfaces: Vec<InterfaceCount>,
}

/// Every worker's snapshot.
pub struct Metrics {
    workers: Vec<Mutex<Snapshot>>,
    control: Arc<Control>,
    mode: &'static str,
}

impl Metrics {
    pub fn new(workers: usize, control: Arc<Control>, mode: &'static str) -> Arc<Metrics> {
        Arc::new(Metrics {
            workers: (0..workers).map(|_| Mutex::default()).collect(),
            control,
            mode,
        })
    }

    /// Publishes a worker's counters.
    pub fn publish(&self, worker: usize, engine: &Engine, extra: &[(&'static str, u64)]) {
        let snap = Snapshot {
            stats: engine.stats().clone(),
            conntrack_entries: engine.conntrack().len(),
            rules: Some(Arc::clone(engine.rules())),
            extra: extra.to_vec(),
            interfaces: engine.conntrack().interfaces().to_vec(),
        };
        *self.workers[worker].lock().expect("not poisoned") = snap;
    }

    /// The workers' counters added up.
    pub fn totals(&self) -> (Stats, usize, BTreeMap<&'static str, u64>) {
        let mut total = Stats::default();
        let mut entries = 0;
        let mut extra = BTreeMap::new();
        for w in &self.workers {
            let s = w.lock().expect("not poisoned");
            add(&mut total, &s.stats);
            entries += s.conntrack_entries;
            for (k, v) in &s.extra {
                *extra.entry(*k).or_insert(0) += v;
            }
        }
        (total, entries, extra)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let (total, entries, extra) = self.totals();
        let mut out = String::new();
        let head = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(
                out,
                "# HELP sgplane_{name} {help}\n# TYPE sgplane_{name} {kind}"
            );
        };
        head(
            &mut out,
            "packets_total",
            "counter",
            "Packets judged, by verdict and reason.",
        );
        for (verdict, by) in [
            ("allow", &total.allowed_by_reason),
            ("deny", &total.denied_by_reason),
        ] {
            for r in Reason::ALL {
                let n = by[r.index()];
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "sgplane_packets_total{{verdict=\"{verdict}\",reason=\"{r}\"}} {n}"
                    );
                }
            }
        }
        head(
            &mut out,
            "bytes_total",
            "counter",
            "Bytes judged, by verdict.",
        );
        let _ = writeln!(
            out,
            "sgplane_bytes_total{{verdict=\"allow\"}} {}",
            total.bytes_allowed
        );
        let _ = writeln!(
            out,
            "sgplane_bytes_total{{verdict=\"deny\"}} {}",
            total.bytes_denied
        );
        head(
            &mut out,
            "new_flows_total",
            "counter",
            "New flows decided by the rules.",
        );
        let _ = writeln!(out, "sgplane_new_flows_total {}", total.new_flows);
        head(
            &mut out,
            "conntrack_entries",
            "gauge",
            "Flows in the connection-tracking tables.",
        );
        let _ = writeln!(out, "sgplane_conntrack_entries {entries}");
        head(
            &mut out,
            "conntrack_full_total",
            "counter",
            "New flows denied because the table was full.",
        );
        let _ = writeln!(
            out,
            "sgplane_conntrack_full_total {}",
            total.denied_by_reason[Reason::ConntrackFull.index()]
        );
        self.render_allowances(&mut out);
        head(
            &mut out,
            "conntrack_early_drops_total",
            "counter",
            "Unassured entries evicted from a full table to make room for a new flow.",
        );
        let _ = writeln!(
            out,
            "sgplane_conntrack_early_drops_total {}",
            total.early_drops
        );
        head(
            &mut out,
            "malformed_total",
            "counter",
            "Malformed packets, by what was wrong.",
        );
        for (cause, n) in &total.malformed {
            let _ = writeln!(
                out,
                "sgplane_malformed_total{{cause=\"{}\"}} {n}",
                escape(cause)
            );
        }
        head(
            &mut out,
            "rule_hits_total",
            "counter",
            "New flows each rule decided (since the policy was loaded).",
        );
        let mut hits: BTreeMap<String, u64> = BTreeMap::new();
        for w in &self.workers {
            let s = w.lock().expect("not poisoned");
            if let Some(rules) = &s.rules {
                for (id, &n) in s.stats.rule_hits.iter().enumerate() {
                    if n > 0 && id < rules.policy.rules().len() {
                        *hits
                            .entry(rules.policy.rule_name(id as u32).to_string())
                            .or_insert(0) += n;
                    }
                }
            }
        }
        for (rule, n) in hits {
            let _ = writeln!(
                out,
                "sgplane_rule_hits_total{{rule=\"{}\"}} {n}",
                escape(&rule)
            );
        }
        head(
            &mut out,
            "nacl_hits_total",
            "counter",
            "Packets each network ACL entry decided, `*` for the implicit deny (since the policy was loaded).",
        );
        let mut hits: BTreeMap<String, u64> = BTreeMap::new();
        for w in &self.workers {
            let s = w.lock().expect("not poisoned");
            if let Some(n) = s.rules.as_ref().and_then(|r| r.policy.nacls()) {
                for (i, &c) in s.stats.nacl_hits.iter().enumerate() {
                    if c > 0 && i < n.hit_count() {
                        *hits.entry(n.hit_name(i).to_string()).or_insert(0) += c;
                    }
                }
            }
        }
        for (rule, n) in hits {
            let _ = writeln!(
                out,
                "sgplane_nacl_hits_total{{rule=\"{}\"}} {n}",
                escape(&rule)
            );
        }
        head(
            &mut out,
            "policy_reloads_total",
            "counter",
            "Policy reloads, by result.",
        );
        let _ = writeln!(
            out,
            "sgplane_policy_reloads_total{{result=\"ok\"}} {}",
            self.control.reloads_ok.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "sgplane_policy_reloads_total{{result=\"error\"}} {}",
            self.control.reloads_failed.load(Ordering::Relaxed)
        );
        head(
            &mut out,
            "draining",
            "gauge",
            "1 while draining (health checks answer 503).",
        );
        let _ = writeln!(
            out,
            "sgplane_draining {}",
            u8::from(self.control.draining())
        );
        head(&mut out, "workers", "gauge", "Worker threads.");
        let _ = writeln!(
            out,
            "sgplane_workers{{mode=\"{}\"}} {}",
            self.mode,
            self.workers.len()
        );
        for (name, v) in extra {
            head(&mut out, name, "counter", "Mode-specific counter.");
            let _ = writeln!(out, "sgplane_{name} {v}");
        }
        out
    }
}

impl Metrics {
    /// Each interface's connection-tracking allowance, as ENA reports it
    /// (SPEC §9.3): entries it may still open (interfaces with a
    /// `conntrack_max`), and new flows refused because it had none left;
    /// the workers' shares added up.
    fn render_allowances(&self, out: &mut String) {
        let mut by: BTreeMap<String, (Option<u64>, u64, u64)> = BTreeMap::new();
        for w in &self.workers {
            let s = w.lock().expect("not poisoned");
            let Some(rules) = &s.rules else { continue };
            for (c, i) in s.interfaces.iter().zip(rules.policy.interfaces()) {
                let e = by.entry(i.name.clone()).or_default();
                if let Some(a) = c.available() {
                    e.0 = Some(e.0.unwrap_or(0) + u64::from(a));
                }
                e.1 += c.exceeded;
                e.2 += u64::from(c.entries);
            }
        }
        let _ = writeln!(
            out,
            "# HELP sgplane_conntrack_allowance_available Entries each interface with a conntrack_max may still open.\n# TYPE sgplane_conntrack_allowance_available gauge"
        );
        for (name, (available, _, _)) in &by {
            if let Some(a) = available {
                let _ = writeln!(
                    out,
                    "sgplane_conntrack_allowance_available{{interface=\"{}\"}} {a}",
                    escape(name)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP sgplane_conntrack_allowance_exceeded New flows refused because the interface's conntrack_max was reached.\n# TYPE sgplane_conntrack_allowance_exceeded counter"
        );
        for (name, (_, exceeded, _)) in &by {
            if *exceeded > 0 {
                let _ = writeln!(
                    out,
                    "sgplane_conntrack_allowance_exceeded{{interface=\"{}\"}} {exceeded}",
                    escape(name)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP sgplane_conntrack_interface_entries Entries each interface keeps.\n# TYPE sgplane_conntrack_interface_entries gauge"
        );
        for (name, (_, _, entries)) in &by {
            if *entries > 0 {
                let _ = writeln!(
                    out,
                    "sgplane_conntrack_interface_entries{{interface=\"{}\"}} {entries}",
                    escape(name)
                );
            }
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Adds one worker's counters to a total.
pub fn add(total: &mut Stats, s: &Stats) {
    total.packets += s.packets;
    total.allowed += s.allowed;
    total.denied += s.denied;
    total.bytes_allowed += s.bytes_allowed;
    total.bytes_denied += s.bytes_denied;
    total.new_flows += s.new_flows;
    total.flows_opened += s.flows_opened;
    total.early_drops += s.early_drops;
    for i in 0..total.allowed_by_reason.len() {
        total.allowed_by_reason[i] += s.allowed_by_reason[i];
        total.denied_by_reason[i] += s.denied_by_reason[i];
    }
    for (k, v) in &s.malformed {
        *total.malformed.entry(k).or_insert(0) += v;
    }
}

/// Why an HTTP endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot serve {what} on {addr}: {reason}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        reason: String,
    },
    #[error("starting the {what} thread")]
    Thread {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

fn server(what: &'static str, addr: SocketAddr) -> Result<tiny_http::Server, ServeError> {
    tiny_http::Server::http(addr).map_err(|e| ServeError::Bind {
        what,
        addr,
        reason: e.to_string(),
    })
}

/// Serves `GET /metrics` on `addr` from a thread of its own.
pub fn serve_metrics(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<SocketAddr, ServeError> {
    let server = server("metrics", addr)?;
    let bound = server.server_addr().to_ip().unwrap_or(addr);
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for req in server.incoming_requests() {
                let resp = if req.url() == "/metrics" || req.url() == "/" {
                    let ct =
                        tiny_http::Header::from_bytes("Content-Type", "text/plain; version=0.0.4")
                            .expect("valid header");
                    tiny_http::Response::from_string(metrics.render()).with_header(ct)
                } else {
                    tiny_http::Response::from_string("not found: try /metrics\n")
                        .with_status_code(404)
                };
                let _ = req.respond(resp);
            }
        })
        .map_err(|source| ServeError::Thread {
            what: "metrics",
            source,
        })?;
    tracing::info!(%bound, "serving Prometheus metrics on /metrics");
    Ok(bound)
}

/// Answers every request on `addr` with 200 while serving and 503 while draining.
pub fn serve_health(addr: SocketAddr, control: Arc<Control>) -> Result<SocketAddr, ServeError> {
    let server = server("health checks", addr)?;
    let bound = server.server_addr().to_ip().unwrap_or(addr);
    std::thread::Builder::new()
        .name("health".into())
        .spawn(move || {
            for req in server.incoming_requests() {
                let resp = if control.draining() {
                    tiny_http::Response::from_string("draining\n").with_status_code(503)
                } else {
                    tiny_http::Response::from_string("ok\n").with_status_code(200)
                };
                let _ = req.respond(resp);
            }
        })
        .map_err(|source| ServeError::Thread {
            what: "health check",
            source,
        })?;
    tracing::info!(%bound, "answering health checks");
    Ok(bound)
}

/// The final summary a live mode prints when it stops.
pub fn summary(metrics: &Metrics) -> String {
    let (t, entries, extra) = metrics.totals();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "packets {} (allowed {}, denied {})",
        t.packets, t.allowed, t.denied
    );
    for (verdict, by) in [
        ("allowed", &t.allowed_by_reason),
        ("denied", &t.denied_by_reason),
    ] {
        let parts: Vec<String> = Reason::ALL
            .iter()
            .filter(|r| by[r.index()] > 0)
            .map(|r| format!("{r} {}", by[r.index()]))
            .collect();
        if !parts.is_empty() {
            let _ = writeln!(s, "  {verdict}: {}", parts.join(", "));
        }
    }
    let _ = writeln!(
        s,
        "new flows {}, tracked at the end {entries}, early drops {}",
        t.new_flows, t.early_drops
    );
    for (k, v) in extra {
        let _ = writeln!(s, "{k} {v}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Engine;
    use crate::policy::Policy;
    use crate::wire::build;
    use crate::wire::packet::LinkType;

    #[test]
    fn allowances_per_interface_as_ena_names_them() {
        let text = r#"
[security_groups.sg-x]
ingress = [ { proto = "tcp", from = "10.0.0.0/8" } ]
egress = [ { proto = "all", to = "0.0.0.0/0" } ]
[interfaces.eni-a]
addresses = ["10.0.0.1"]
security_groups = ["sg-x"]
[interfaces.eni-b]
addresses = ["10.0.0.2"]
security_groups = ["sg-x"]
conntrack_max = 1
"#;
        let policy = Policy::from_toml(text, "t.toml").unwrap();
        let control = Control::new(policy.clone(), None);
        let mut e = Engine::with_policy(policy);
        for sport in [1, 2] {
            let f = build::tcp(
                "10.0.0.1".parse().unwrap(),
                "10.0.0.2".parse().unwrap(),
                sport,
                80,
                crate::conntrack::tcp::SYN,
                1,
                1,
                b"",
            );
            e.process(LinkType::Ethernet, &f, f.len(), 1_000_000_000);
        }
        let m = Metrics::new(1, control, "test");
        m.publish(0, &e, &[]);
        let text = m.render();
        assert!(
            text.contains("sgplane_conntrack_allowance_available{interface=\"eni-b\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("sgplane_conntrack_allowance_exceeded{interface=\"eni-b\"} 1"),
            "{text}"
        );
        assert!(
            !text.contains("allowance_available{interface=\"eni-a\"}"),
            "{text}"
        );
        assert!(
            text.contains("sgplane_conntrack_interface_entries{interface=\"eni-a\"} 1"),
            "{text}"
        );
    }
}
