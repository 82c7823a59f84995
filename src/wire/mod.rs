//! Wire formats: zero-copy views over packet bytes, parsed without copying and
//! without panicking on any input.
//!
//! - [`packet`]: a captured frame (Ethernet with VLANs, Linux cooked, raw IP,
//!   BSD loopback) down to the fields the rules and conntrack need.
//! - [`geneve`]: the GENEVE header and its options (RFC 8926), with AWS GWLB's.
pub mod build;
pub mod geneve;
pub mod packet;

pub use packet::{
    parse, Fragment, Frame, IpPacket, LinkType, ParseError, ParseOptions, Quoted, Tunnel, L4,
};
