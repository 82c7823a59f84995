//! Wire formats: zero-copy views over packet bytes, parsed without copying and
//! without panicking on any input.
//!
//! - [`packet`]: a captured frame (Ethernet with VLANs, Linux cooked, raw IP,
//!   BSD loopback) down to the fields the rules and conntrack need.
//! - [`ethernet`], [`ipv4`], [`ipv6`], [`udp`], [`tcp`]: smoltcp-style views
//!   of one header each: offsets as data in a `field` module, `new_checked`
//!   that validates lengths once ([`HeaderError`]), accessors that cannot
//!   fail after it, setters on mutable buffers. [`icmp`] has the offsets and
//!   message types the parser and GWLB steering read.
//! - [`geneve`]: the GENEVE header and its options (RFC 8926), with AWS GWLB's.
//! - [`vxlan`]: the VXLAN header (RFC 7348) of AWS Traffic Mirroring.
//! - [`checksum`]: the Internet checksum.
//! - [`build`]: whole frames for tests, benches and the capture generator.
pub mod build;
pub mod checksum;
mod error;
pub mod ethernet;
pub mod geneve;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod packet;
pub mod tcp;
pub mod udp;
pub mod vxlan;

pub use error::{HeaderError, Layer};
pub use ethernet::EthernetFrame;
pub use ipv4::Ipv4Packet;
pub use ipv6::Ipv6Packet;
pub use packet::{
    parse, parse_geneve, Encap, Fragment, Frame, IpPacket, LinkType, OuterEnds, ParseError,
    ParseOptions, Quoted, Tunnel, L4,
};
pub use tcp::TcpPacket;
pub use udp::UdpPacket;

/// Where a field sits in a header: a byte range from the header's start.
pub type Field = core::ops::Range<usize>;

/// The big-endian 16-bit field `f` of `d`.
///
/// # Panics
/// If `d` ends before the field does.
#[inline]
fn read_u16(d: &[u8], f: Field) -> u16 {
    debug_assert_eq!(f.len(), 2);
    u16::from_be_bytes([d[f.start], d[f.start + 1]])
}

/// The big-endian 32-bit field `f` of `d`.
///
/// # Panics
/// If `d` ends before the field does.
#[inline]
fn read_u32(d: &[u8], f: Field) -> u32 {
    debug_assert_eq!(f.len(), 4);
    u32::from_be_bytes([d[f.start], d[f.start + 1], d[f.start + 2], d[f.start + 3]])
}

/// Writes `v` big-endian into the 16-bit field `f` of `d`.
///
/// # Panics
/// If `d` ends before the field does.
#[inline]
fn write_u16(d: &mut [u8], f: Field, v: u16) {
    d[f].copy_from_slice(&v.to_be_bytes());
}
