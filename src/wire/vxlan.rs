//! VXLAN (RFC 7348): a zero-copy view of the 8-byte header that AWS Traffic
//! Mirroring puts before each mirrored frame (SPEC §10), and [`emit`] to
//! write one.
//!
//! Unlike GWLB's GENEVE, which carries raw IP, VXLAN always carries an
//! Ethernet frame; the VNI names the mirror session. Reserved bits are
//! ignored on receipt, as the RFC asks; a header without the I flag has no
//! valid VNI and is refused.

use crate::wire::read_u32;

/// Offsets in the header.
pub mod field {
    use crate::wire::Field;

    /// The flags byte: only the I flag (0x08) is defined.
    pub const FLAGS: usize = 0;
    /// 24 reserved bits after the flags.
    pub const RESERVED: Field = 1..4;
    /// The VNI (high 24 bits) and 8 reserved bits.
    pub const VNI_RESERVED: Field = 4..8;
}

/// Length of the header.
pub const HEADER_LEN: usize = field::VNI_RESERVED.end;
/// The UDP destination port IANA assigned to VXLAN.
pub const UDP_PORT: u16 = 4789;
/// The I flag: the VNI is valid.
pub const FLAG_VNI: u8 = 0x08;
/// The largest VNI (24 bits).
pub const VNI_MAX: u32 = 0x00ff_ffff;

/// What is wrong with a VXLAN header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VxlanError {
    #[error("VXLAN header truncated: {required} bytes needed, {len} present")]
    Truncated { required: usize, len: usize },
    #[error("VXLAN I flag clear (flags {0:#04x}): the header carries no VNI")]
    NoVni(u8),
}

/// A view of a VXLAN header and the Ethernet frame it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VxlanPacket<T> {
    /// Wraps a buffer without looking at it.
    ///
    /// # Panics
    /// Accessors panic if the buffer is shorter than [`HEADER_LEN`].
    pub const fn new_unchecked(buffer: T) -> Self {
        VxlanPacket { buffer }
    }

    /// Wraps a buffer whose header is whole and has the I flag set; after
    /// it no accessor fails.
    pub fn new_checked(buffer: T) -> Result<Self, VxlanError> {
        let len = buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(VxlanError::Truncated {
                required: HEADER_LEN,
                len,
            });
        }
        let p = Self::new_unchecked(buffer);
        if p.flags() & FLAG_VNI == 0 {
            return Err(VxlanError::NoVni(p.flags()));
        }
        Ok(p)
    }

    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// The VXLAN network identifier: the mirror session's, for Traffic
    /// Mirroring.
    pub fn vni(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::VNI_RESERVED) >> 8
    }

    /// The inner Ethernet frame.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

/// Writes a VXLAN header with the I flag and `vni` (its low 24 bits) at the
/// start of `buf`, reserved bits zero; returns its length.
///
/// # Panics
/// If `buf` is shorter than [`HEADER_LEN`].
pub fn emit(buf: &mut [u8], vni: u32) -> usize {
    buf[..HEADER_LEN].fill(0);
    buf[field::FLAGS] = FLAG_VNI;
    buf[field::VNI_RESERVED].copy_from_slice(&((vni & VNI_MAX) << 8).to_be_bytes());
    HEADER_LEN
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A header laid out as RFC 7348 §5 gives it: the I flag, VNI
    /// 0x2c0d45, reserved bits zero.
    const HEADER: [u8; 8] = [0x08, 0, 0, 0, 0x2c, 0x0d, 0x45, 0];

    #[test]
    fn a_header_gives_its_vni_and_emit_writes_it_back() {
        let p = VxlanPacket::new_checked(&HEADER[..]).unwrap();
        assert_eq!((p.flags(), p.vni(), p.payload()), (0x08, 0x2c0d45, &[][..]));
        let mut out = [0xff; 8];
        assert_eq!(emit(&mut out, 0x2c0d45), HEADER_LEN);
        assert_eq!(out, HEADER);
    }

    #[test]
    fn every_truncation_and_a_clear_i_flag_are_refused() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                VxlanPacket::new_checked(&HEADER[..len]),
                Err(VxlanError::Truncated {
                    required: HEADER_LEN,
                    len
                })
            );
        }
        let mut clear = HEADER;
        clear[0] = 0x80;
        assert_eq!(
            VxlanPacket::new_checked(&clear[..]),
            Err(VxlanError::NoVni(0x80))
        );
        // Reserved bits are ignored on receipt (RFC 7348 §5).
        let noisy = [0xff; 8];
        assert_eq!(VxlanPacket::new_checked(&noisy[..]).unwrap().vni(), VNI_MAX);
    }

    proptest! {
        /// Any bytes: the view never panics, and what it accepts has the
        /// I flag and keeps every byte (header then payload).
        #[test]
        fn any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = VxlanPacket::new_checked(&bytes[..]) {
                prop_assert!(p.flags() & FLAG_VNI != 0);
                prop_assert!(p.vni() <= VNI_MAX);
                prop_assert_eq!(HEADER_LEN + p.payload().len(), bytes.len());
            }
        }

        /// An emitted header parses back with its VNI.
        #[test]
        fn emitted_headers_parse_back(vni in 0..=VNI_MAX, tail in prop::collection::vec(any::<u8>(), 0..20)) {
            let mut buf = vec![0u8; HEADER_LEN];
            emit(&mut buf, vni);
            buf.extend_from_slice(&tail);
            let p = VxlanPacket::new_checked(&buf[..]).unwrap();
            prop_assert_eq!((p.vni(), p.payload()), (vni, &tail[..]));
        }
    }
}
