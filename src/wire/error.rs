//! What a header view's `new_checked` found wrong: which header, and the
//! lengths involved, like etherparse's `LenError { required_len, len, layer }`.

use core::fmt;

/// The header a [`HeaderError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    Ethernet,
    Ipv4,
    Ipv6,
    Udp,
    Tcp,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Ethernet => "Ethernet",
            Layer::Ipv4 => "IPv4",
            Layer::Ipv6 => "IPv6",
            Layer::Udp => "UDP",
            Layer::Tcp => "TCP",
        })
    }
}

/// Why a buffer is not a whole header of its kind (and, where the header
/// gives one, a whole packet of the length it gives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The buffer ends before the fixed header, the header with its options,
    /// or the length a length field gives.
    #[error("{layer} truncated: {required_len} bytes needed, {len} present")]
    Truncated {
        layer: Layer,
        required_len: usize,
        len: usize,
    },
    /// An IP header of another version.
    #[error("{layer} header with version {version}")]
    BadVersion { layer: Layer, version: u8 },
    /// A header length field below the fixed header (IPv4 IHL or TCP data
    /// offset under 5).
    #[error("{layer} header length of {header_len} bytes is less than the minimum of {min}")]
    HeaderLenTooSmall {
        layer: Layer,
        header_len: usize,
        min: usize,
    },
    /// A length field that does not cover the header it includes (IPv4 total
    /// length under the header length, UDP length under 8).
    #[error("{layer} length of {length} bytes is less than its {header_len}-byte header")]
    LengthTooSmall {
        layer: Layer,
        length: usize,
        header_len: usize,
    },
}

/// `Truncated` unless `len >= required_len`.
pub(crate) fn need(layer: Layer, required_len: usize, len: usize) -> Result<(), HeaderError> {
    if len < required_len {
        Err(HeaderError::Truncated {
            layer,
            required_len,
            len,
        })
    } else {
        Ok(())
    }
}
