//! The policy file's spellings of values (SPEC §1), read into the model's
//! canonical types: `accept`/`drop` for allow/deny, `-1` and `any` for all
//! protocols, Alibaba's `80/90` ranges and `-1/-1` (or `-1`) for all ports,
//! and `"80,443"` lists.

use crate::policy::types::{Action, IpProto, PortRange, ProtoMatch};

/// A value the policy file cannot spell that way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialectError {
    #[error("unknown action `{0}`: expected allow (or accept) or deny (or drop)")]
    Action(String),
    #[error(
        "unknown protocol `{0}`: expected tcp, udp, icmp, icmpv6, all (or -1) or a number 0-255"
    )]
    Proto(String),
    #[error("protocol number {0} is out of range: expected 0-255, or -1 for all")]
    ProtoNumber(i64),
    #[error("bad port `{port}` in `{text}`: a port is a number 0-65535; ranges are written 80-90 or 80/90, all ports -1/-1")]
    BadPort { port: String, text: String },
    #[error("port range `{text}` ends before it starts ({lo} > {hi})")]
    Reversed { text: String, lo: u16, hi: u16 },
    #[error("port {0} is out of range: a port is 0-65535")]
    PortNumber(i64),
}

/// `allow`/`accept` or `deny`/`drop`, in any case.
pub fn action(s: &str) -> Result<Action, DialectError> {
    match s.to_ascii_lowercase().as_str() {
        "allow" | "accept" => Ok(Action::Allow),
        "deny" | "drop" => Ok(Action::Deny),
        _ => Err(DialectError::Action(s.to_string())),
    }
}

/// A protocol name (any case), `all`, `-1` or `any` for all, or a number.
pub fn proto(s: &str) -> Result<ProtoMatch, DialectError> {
    match s.to_ascii_lowercase().as_str() {
        "all" | "-1" | "any" => Ok(ProtoMatch::Any),
        _ => s
            .parse::<IpProto>()
            .map(ProtoMatch::Is)
            .map_err(|_| DialectError::Proto(s.to_string())),
    }
}

/// A protocol written as a number: 0-255, or -1 for all.
pub fn proto_number(v: i64) -> Result<ProtoMatch, DialectError> {
    match v {
        -1 => Ok(ProtoMatch::Any),
        0..=255 => Ok(ProtoMatch::Is(IpProto(v as u8))),
        _ => Err(DialectError::ProtoNumber(v)),
    }
}

/// `80`, `80-90`, `80/90` (Alibaba), `-1/-1` or `-1` (all ports).
pub fn port_range(s: &str) -> Result<PortRange, DialectError> {
    let t = s.trim();
    if t == "-1/-1" || t == "-1" {
        return Ok(PortRange::ALL);
    }
    let port = |p: &str| -> Result<u16, DialectError> {
        p.trim().parse::<u16>().map_err(|_| DialectError::BadPort {
            port: p.trim().to_string(),
            text: s.to_string(),
        })
    };
    let (lo, hi) = match t.split_once(['-', '/']) {
        Some((a, b)) if !a.trim().is_empty() => (port(a)?, port(b)?),
        _ => {
            let p = port(t)?;
            (p, p)
        }
    };
    if lo > hi {
        return Err(DialectError::Reversed {
            text: s.to_string(),
            lo,
            hi,
        });
    }
    Ok(PortRange { lo, hi })
}

/// Port ranges separated by commas, each as [`port_range`].
pub fn port_list(s: &str, out: &mut Vec<PortRange>) -> Result<(), DialectError> {
    for part in s.split(',') {
        out.push(port_range(part)?);
    }
    Ok(())
}

/// A port written as a number: 0-65535, or -1 for all.
pub fn port_number(v: i64) -> Result<PortRange, DialectError> {
    match v {
        -1 => Ok(PortRange::ALL),
        0..=65535 => Ok(PortRange {
            lo: v as u16,
            hi: v as u16,
        }),
        _ => Err(DialectError::PortNumber(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_forms() {
        let ok = |s| port_range(s).unwrap();
        assert_eq!(ok("80"), PortRange { lo: 80, hi: 80 });
        assert_eq!(ok("80-90"), PortRange { lo: 80, hi: 90 });
        assert_eq!(ok("80/90"), PortRange { lo: 80, hi: 90 });
        assert_eq!(ok("1/65535"), PortRange { lo: 1, hi: 65535 });
        assert_eq!(ok("-1/-1"), PortRange::ALL);
        assert_eq!(ok(" -1 "), PortRange::ALL);
        let err = |s| port_range(s).unwrap_err().to_string();
        assert!(err("90-80").contains("ends before"));
        assert!(err("65536").contains("0-65535"));
        assert!(port_range("http").is_err());
        assert!(port_range("-5").is_err());
        assert!(port_range("80-").is_err());
        let mut list = Vec::new();
        port_list("80, 443", &mut list).unwrap();
        assert_eq!(list, [ok("80"), ok("443")]);
        assert_eq!(port_number(-1), Ok(PortRange::ALL));
        assert!(port_number(65536).is_err());
    }

    #[test]
    fn protocols() {
        assert_eq!(proto("TCP"), Ok(ProtoMatch::Is(IpProto::TCP)));
        assert_eq!(proto("-1"), Ok(ProtoMatch::Any));
        assert_eq!(proto("all"), Ok(ProtoMatch::Any));
        assert_eq!(proto("47"), Ok(ProtoMatch::Is(IpProto(47))));
        assert!(proto("256").is_err());
        assert!(proto("tcpp")
            .unwrap_err()
            .to_string()
            .contains("expected tcp"));
        assert_eq!(proto_number(-1), Ok(ProtoMatch::Any));
        assert!(proto_number(256).is_err());
    }

    #[test]
    fn actions() {
        assert_eq!(action("ACCEPT"), Ok(Action::Allow));
        assert_eq!(action("drop"), Ok(Action::Deny));
        assert!(action("reject")
            .unwrap_err()
            .to_string()
            .contains("expected allow"));
    }
}
