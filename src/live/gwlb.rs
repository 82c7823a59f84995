//! `sgplane gwlb`: the Gateway Load Balancer appliance (SPEC §5).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::control::Control;

/// `sgplane gwlb` options.
#[derive(Debug, Clone)]
pub struct GwlbOptions {
    /// Where GENEVE arrives (default 0.0.0.0:6081).
    pub listen: SocketAddr,
    /// Health-check endpoint: 200 while serving, 503 while draining.
    pub health: Option<SocketAddr>,
    /// Prometheus endpoint.
    pub metrics: Option<SocketAddr>,
    /// Worker threads (default: the number of cores).
    pub workers: usize,
    /// How long established flows keep being served after SIGTERM.
    pub drain: Duration,
    /// Reload the policy when its file changes.
    pub watch: bool,
}

/// Runs the appliance until stopped; returns the final summary.
pub fn run(control: Arc<Control>, opts: GwlbOptions) -> anyhow::Result<String> {
    let _ = (control, opts);
    anyhow::bail!("sgplane gwlb is not built yet")
}
