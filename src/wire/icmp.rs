//! ICMP and ICMPv6 (RFC 792, RFC 4443): where the fields sgplane reads sit,
//! and which messages are errors that quote the packet they are about.
//! Views are not needed: the parser reads the type, code and echo
//! identifier, and the GWLB steering hashes the quoted addresses.

/// Offsets in the header, the same for ICMP and ICMPv6.
pub mod field {
    use crate::wire::Field;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    /// An echo request or reply's identifier and sequence number.
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQ: Field = 6..8;
}

/// Length of the header; an error's quoted packet starts here.
pub const HEADER_LEN: usize = field::ECHO_SEQ.end;

/// ICMP types that quote the offending packet: destination unreachable,
/// source quench, redirect, time exceeded, parameter problem.
pub const V4_ERROR_TYPES: [u8; 5] = [3, 4, 5, 11, 12];
/// ICMPv6 types that quote the offending packet: destination unreachable,
/// packet too big, time exceeded, parameter problem.
pub const V6_ERROR_TYPES: core::ops::RangeInclusive<u8> = 1..=4;

/// ICMP echo request and reply.
pub const V4_ECHO_TYPES: [u8; 2] = [0, 8];
/// ICMPv6 echo request and reply.
pub const V6_ECHO_TYPES: [u8; 2] = [128, 129];

/// Whether a message of this type quotes the packet it is about.
#[inline]
pub fn is_error(v6: bool, typ: u8) -> bool {
    if v6 {
        matches!(typ, 1..=4)
    } else {
        matches!(typ, 3 | 4 | 5 | 11 | 12)
    }
}

/// Whether a message of this type is an echo request or reply.
#[inline]
pub fn is_echo(v6: bool, typ: u8) -> bool {
    if v6 {
        matches!(typ, 128 | 129)
    } else {
        matches!(typ, 0 | 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The functions (written as matches, for the parser) and the lists
    /// (for the steering program) say the same.
    #[test]
    fn errors_and_echoes_by_family() {
        let types =
            |f: fn(bool, u8) -> bool, v6| (0..=255).filter(|&t| f(v6, t)).collect::<Vec<u8>>();
        assert_eq!(types(is_error, false), V4_ERROR_TYPES);
        assert_eq!(types(is_error, true), V6_ERROR_TYPES.collect::<Vec<_>>());
        assert_eq!(types(is_echo, false), V4_ECHO_TYPES);
        assert_eq!(types(is_echo, true), V6_ECHO_TYPES);
        assert_eq!(V4_ERROR_TYPES, [3, 4, 5, 11, 12]);
    }
}
