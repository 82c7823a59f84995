//! The state live modes share between their workers and the operator: the
//! current policy (swapped atomically on reload), and whether to keep
//! running, drain or stop.
//!
//! Workers read the policy once per batch ([`Control::rules`] is a lock-free
//! load) and hand it to their engine when it changed: tracked flows keep
//! flowing, new flows see the new rules. A policy that fails to load is
//! reported and the old one kept.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;

use crate::base::Nanos;
use crate::engine::Ruleset;
use crate::import::LoadError;
use crate::policy::Policy;

/// Why a reload kept the old policy.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("the built-in policy cannot be reloaded: start with -c FILE")]
    Builtin,
    #[error("policy not reloaded, the old one stays: {0}")]
    Rejected(LoadError),
}

/// What SIGTERM does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnTerm {
    /// Stop at once (inline mode).
    Stop,
    /// Report unhealthy, keep serving established flows for this long, then stop (GWLB).
    Drain(Duration),
}

/// Shared by every thread of a live mode.
pub struct Control {
    rules: ArcSwap<Ruleset>,
    policy_path: Option<PathBuf>,
    generation: AtomicU64,
    stop: AtomicBool,
    draining: AtomicBool,
    drain_until: Mutex<Option<Instant>>,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    last_modified: Mutex<Option<SystemTime>>,
    /// GWLB mode's TCP idle timeout in seconds; 0: not GWLB mode.
    gwlb_tcp_idle: AtomicU32,
}

/// The current time as the engine counts it (nanoseconds since the Unix epoch).
pub fn now() -> Nanos {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as Nanos)
}

impl Control {
    /// `path` is where reloads read the policy from (`None`: the built-in one,
    /// which cannot change).
    pub fn new(policy: Policy, path: Option<PathBuf>) -> Arc<Control> {
        let modified = path.as_deref().and_then(modified);
        Arc::new(Control {
            rules: ArcSwap::from_pointee(Ruleset::compile(policy)),
            policy_path: path,
            generation: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            drain_until: Mutex::new(None),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            last_modified: Mutex::new(modified),
            gwlb_tcp_idle: AtomicU32::new(0),
        })
    }

    /// Judges as a GWLB appliance from now on, this policy and every one
    /// reloaded ([`Policy::for_gwlb`]: every flow tracked, GWLB's timeouts
    /// where the policy sets none, `tcp_idle` seconds for established TCP).
    pub fn gwlb_mode(&self, tcp_idle: u32) {
        self.gwlb_tcp_idle.store(tcp_idle.max(1), Ordering::Release);
        let p = self.rules().policy.clone().for_gwlb(tcp_idle.max(1));
        self.rules.store(Arc::new(Ruleset::compile(p)));
    }

    /// A loaded policy as this appliance judges it.
    fn shape(&self, p: Policy) -> Policy {
        match self.gwlb_tcp_idle.load(Ordering::Acquire) {
            0 => p,
            idle => p.for_gwlb(idle),
        }
    }

    /// The current policy and its compiled tables.
    #[inline]
    pub fn rules(&self) -> Arc<Ruleset> {
        self.rules.load_full()
    }

    /// Bumped by every successful reload; cheap to poll.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Loads the policy file again and swaps it in; on error the old policy
    /// stays and the error is returned (and logged).
    pub fn reload(&self) -> Result<(), ReloadError> {
        let Some(path) = &self.policy_path else {
            let e = ReloadError::Builtin;
            tracing::warn!("{e}");
            return Err(e);
        };
        *self.last_modified.lock().expect("not poisoned") = modified(path);
        let started = Instant::now();
        match crate::import::load_policy(path) {
            Ok((p, skipped)) => {
                for s in &skipped {
                    tracing::warn!("{s}");
                }
                let rules = p.rules().len();
                let p = self.shape(p);
                self.rules.store(Arc::new(Ruleset::compile(p)));
                self.generation.fetch_add(1, Ordering::AcqRel);
                // Logged before counted: whoever sees the counter move also
                // finds the log line.
                tracing::info!(file = %path.display(), rules, ms = started.elapsed().as_millis() as u64, "policy reloaded");
                self.reloads_ok.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                let e = ReloadError::Rejected(e);
                tracing::error!("{e}");
                self.reloads_failed.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Reloads when the policy file's modification time changed since the last load.
    pub fn reload_if_changed(&self) -> Option<Result<(), ReloadError>> {
        let path = self.policy_path.as_ref()?;
        let now = modified(path);
        let changed = *self.last_modified.lock().expect("not poisoned") != now;
        changed.then(|| self.reload())
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Whether workers should finish (stop requested, or the drain period is over).
    #[inline]
    pub fn should_stop(&self) -> bool {
        if self.stop.load(Ordering::Acquire) {
            return true;
        }
        if self.draining.load(Ordering::Relaxed) {
            let until = *self.drain_until.lock().expect("not poisoned");
            if until.is_some_and(|t| Instant::now() >= t) {
                self.stop();
                return true;
            }
        }
        false
    }

    /// Starts draining: health checks fail from now on, and the workers stop
    /// after `period`.
    pub fn drain(&self, period: Duration) {
        *self.drain_until.lock().expect("not poisoned") = Some(Instant::now() + period);
        self.draining.store(true, Ordering::Release);
        tracing::info!(
            seconds = period.as_secs_f64(),
            "draining: health checks answer 503"
        );
    }

    #[inline]
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Handles SIGHUP (reload), SIGTERM (per `on_term`) and SIGINT (stop) on a
    /// thread of its own.
    pub fn spawn_signal_thread(self: &Arc<Self>, on_term: OnTerm) -> std::io::Result<()> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGTERM])?;
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    match sig {
                        SIGHUP => {
                            tracing::info!("SIGHUP: reloading the policy");
                            let _ = me.reload();
                        }
                        SIGTERM => match on_term {
                            OnTerm::Stop => {
                                tracing::info!("SIGTERM: stopping");
                                me.stop();
                            }
                            OnTerm::Drain(d) => me.drain(d),
                        },
                        _ => {
                            tracing::info!("SIGINT: stopping");
                            me.stop();
                        }
                    }
                }
            })?;
        Ok(())
    }

    /// Polls the policy file every `every` and reloads it when it changes (`--watch`).
    pub fn spawn_watch_thread(self: &Arc<Self>, every: Duration) -> std::io::Result<()> {
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name("watch".into())
            .spawn(move || {
                while !me.should_stop() {
                    std::thread::sleep(every);
                    let _ = me.reload_if_changed();
                }
            })?;
        Ok(())
    }
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "[security_groups.sg-a]\ningress = [ { proto = \"tcp\", ports = \"80\", from = \"0.0.0.0/0\" } ]\n";

    #[test]
    fn gwlb_mode_shapes_the_policy_and_every_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "[conntrack]\nudp = 45\n").unwrap();
        let c = Control::new(Policy::load(&path).unwrap(), Some(path.clone()));
        c.gwlb_mode(600);
        let ct = *c.rules().policy.conntrack();
        assert!(c.rules().policy.gwlb_mode());
        assert_eq!((ct.tcp_established, ct.udp, ct.other), (600, 45, 120));
        std::fs::write(&path, "[conntrack]\nother = 30\n").unwrap();
        c.reload().unwrap();
        let ct = *c.rules().policy.conntrack();
        assert!(c.rules().policy.gwlb_mode());
        assert_eq!((ct.tcp_established, ct.udp, ct.other), (600, 120, 30));
    }

    #[test]
    fn reload_swaps_good_policies_and_keeps_the_old_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, GOOD).unwrap();
        let c = Control::new(Policy::load(&path).unwrap(), Some(path.clone()));
        assert_eq!(c.rules().policy.rules().len(), 1);
        std::fs::write(
            &path,
            format!("{GOOD}egress = [ {{ proto = \"all\", to = \"0.0.0.0/0\" }} ]\n"),
        )
        .unwrap();
        c.reload().unwrap();
        assert_eq!((c.rules().policy.rules().len(), c.generation()), (2, 1));
        std::fs::write(&path, "[security_groups.sg-a\n").unwrap();
        let err = c.reload().unwrap_err().to_string();
        assert!(err.contains("p.toml:1:"), "{err}");
        assert_eq!((c.rules().policy.rules().len(), c.generation()), (2, 1));
        assert_eq!(c.reloads_failed.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn the_builtin_policy_cannot_be_reloaded() {
        let c = Control::new(Policy::builtin(), None);
        assert!(c.reload().is_err());
    }

    #[test]
    fn draining_ends_in_stop() {
        let c = Control::new(Policy::builtin(), None);
        assert!(!c.should_stop() && !c.draining());
        c.drain(Duration::from_millis(0));
        assert!(c.draining());
        assert!(c.should_stop());
    }
}
