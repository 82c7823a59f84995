//! Reading pcap and pcapng captures from any byte stream (a file or stdin),
//! record by record, with the offset of every record so a truncated or corrupt
//! file can say where it stopped.
//!
//! pcap-file parses the headers and blocks. Two things are done here instead:
//! record lengths are bounded before a record is buffered (a corrupt length
//! must not make us read the whole stream into memory), and pcapng timestamps
//! are converted with the interface's `if_tsresol`/`if_tsoffset`, which
//! pcap-file 2.0 leaves raw. Packet lengths are not checked against the snap
//! length, as libpcap does not either.
//!
//! As a device (`capture/frames.rs`): a reader is a [`FrameSource`](super::FrameSource)
//! of its packets, and [`CaptureWriter`] a [`FrameSink`](super::FrameSink)
//! that writes a pcap file.

mod frames;

pub use frames::CaptureWriter;

use std::io::{self, Read};

use pcap_file::pcap::{PcapHeader, PcapParser};
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{Endianness, PcapError, TsResolution};

use crate::base::Nanos;
use crate::wire::LinkType;

/// The largest record accepted (a pcap record or a pcapng block).
pub const MAX_RECORD: usize = 16 << 20;
const CHUNK: usize = 256 << 10;

/// Why a capture could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("not a pcap or pcapng file (it starts with {0:02x?})")]
    UnknownFormat(Vec<u8>),
    #[error("truncated at byte {offset}: the last record needs {needed} bytes, {have} are left")]
    Truncated {
        offset: u64,
        needed: usize,
        have: usize,
    },
    #[error("corrupt at byte {offset}: {what}")]
    Corrupt { offset: u64, what: String },
    #[error("read error at byte {offset}: {source}")]
    Io { offset: u64, source: io::Error },
}

impl CaptureError {
    /// The byte offset where reading stopped.
    pub fn offset(&self) -> u64 {
        match self {
            CaptureError::UnknownFormat(_) => 0,
            CaptureError::Truncated { offset, .. }
            | CaptureError::Corrupt { offset, .. }
            | CaptureError::Io { offset, .. } => *offset,
        }
    }
}

/// A captured packet.
#[derive(Debug, Clone, Copy)]
pub struct CapPacket<'a> {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts: Nanos,
    /// Length on the wire.
    pub orig_len: u32,
    pub data: &'a [u8],
    /// pcap LINKTYPE of the packet's interface.
    pub linktype: u32,
    /// `linktype` when sgplane can parse it.
    pub link: Option<LinkType>,
    /// pcapng interface id (0 for pcap).
    pub interface: u32,
}

/// One record of the capture, with its bytes as stored (for copying into
/// output captures of the same format).
pub struct Record<'a> {
    pub raw: &'a [u8],
    /// `None` for pcapng blocks that are not packets (section and interface
    /// descriptions, statistics, name resolution…).
    pub packet: Option<CapPacket<'a>>,
}

/// A record located in the reader's buffer (see [`CaptureReader::fill_batch`]).
#[derive(Debug, Clone, Copy)]
pub struct RecordInfo {
    pub raw: (usize, usize),
    pub packet: Option<PacketInfo>,
}

/// A packet located in the reader's buffer.
#[derive(Debug, Clone, Copy)]
pub struct PacketInfo {
    pub ts: Nanos,
    pub orig_len: u32,
    pub data: (usize, usize),
    pub linktype: u32,
    pub link: Option<LinkType>,
    pub interface: u32,
}

impl RecordInfo {
    /// The record, borrowing `buf` (the reader's [`CaptureReader::buffer`]).
    pub fn resolve<'a>(&self, buf: &'a [u8]) -> Record<'a> {
        Record {
            raw: &buf[self.raw.0..self.raw.1],
            packet: self.packet.map(|p| CapPacket {
                ts: p.ts,
                orig_len: p.orig_len,
                data: &buf[p.data.0..p.data.1],
                linktype: p.linktype,
                link: p.link,
                interface: p.interface,
            }),
        }
    }
}

/// The capture's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap { header: PcapHeader },
    PcapNg,
}

struct Interface {
    linktype: u32,
    /// Nanoseconds per tick as a ratio, and the offset in seconds.
    tsresol: u8,
    tsoffset: u64,
}

/// Reads records from a byte stream.
pub struct CaptureReader<R> {
    src: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// Stream offset of `buf[start]`.
    offset: u64,
    format: Format,
    /// How the records read, for pcap.
    pcap: Option<PcapLayout>,
    ng: Option<PcapNgParser>,
    ng_endian: Endianness,
    interfaces: Vec<Interface>,
    /// The bytes before the first record (the pcap global header).
    preamble: Vec<u8>,
    last_ts: Nanos,
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header and detects the format.
    pub fn new(src: R) -> Result<CaptureReader<R>, CaptureError> {
        let mut r = CaptureReader {
            src,
            buf: vec![0; CHUNK],
            start: 0,
            end: 0,
            eof: false,
            offset: 0,
            format: Format::PcapNg,
            pcap: None,
            ng: None,
            ng_endian: Endianness::Big,
            interfaces: Vec::new(),
            preamble: Vec::new(),
            last_ts: 0,
        };
        while r.end < 24 && !r.eof {
            r.refill()?;
        }
        let head = r.buf[..r.end].to_vec();
        match head.get(..4) {
            Some([0x0a, 0x0d, 0x0d, 0x0a]) => {
                // The section header is the first record; the parser is made from it below.
                r.format = Format::PcapNg;
            }
            Some(
                [0xa1, 0xb2, 0xc3, 0xd4]
                | [0xd4, 0xc3, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0x3c, 0x4d]
                | [0x4d, 0x3c, 0xb2, 0xa1],
            ) => {
                if head.len() < 24 {
                    return Err(CaptureError::Truncated {
                        offset: 0,
                        needed: 24,
                        have: head.len(),
                    });
                }
                let (_, parser) =
                    PcapParser::new(&head[..24]).map_err(|e| CaptureError::Corrupt {
                        offset: 0,
                        what: format!("pcap header: {e}"),
                    })?;
                r.format = Format::Pcap {
                    header: parser.header(),
                };
                r.pcap = Some(PcapLayout::of(&parser.header()));
                r.preamble = head[..24].to_vec();
                r.start = 24;
                r.offset = 24;
            }
            _ => {
                return Err(CaptureError::UnknownFormat(
                    head.iter().take(8).copied().collect(),
                ))
            }
        }
        Ok(r)
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Bytes to write before the records of an output capture in the same format.
    pub fn preamble(&self) -> &[u8] {
        &self.preamble
    }

    /// Bytes read so far (the offset of the next record).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Whether timestamps have nanosecond resolution (pcap) or may (pcapng).
    pub fn nanosecond(&self) -> bool {
        match self.format {
            Format::Pcap { header } => header.ts_resolution == TsResolution::NanoSecond,
            Format::PcapNg => self.interfaces.iter().any(|i| i.tsresol != 6),
        }
    }

    fn refill(&mut self) -> Result<(), CaptureError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let n = (self.buf.len() * 2).min(MAX_RECORD + CHUNK);
            self.buf.resize(n, 0);
        }
        loop {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(CaptureError::Io {
                        offset: self.offset,
                        source: e,
                    })
                }
            }
        }
    }

    /// The length of the record at the head of the buffer, when its header is there.
    fn record_len(&self) -> Option<usize> {
        let d = &self.buf[self.start..self.end];
        match self.format {
            Format::Pcap { .. } => {
                let incl = self.pcap?.field(d.get(..12)?, 8);
                Some(16usize.saturating_add(incl as usize))
            }
            Format::PcapNg => {
                let ty = d.get(..4)?;
                let endian = if ty == [0x0a, 0x0d, 0x0d, 0x0a] {
                    match d.get(8..12)? {
                        [0x1a, 0x2b, 0x3c, 0x4d] => Endianness::Big,
                        _ => Endianness::Little,
                    }
                } else {
                    self.ng_endian
                };
                let b = d.get(4..8)?;
                let len = match endian {
                    Endianness::Big => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                    Endianness::Little => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                };
                Some(len as usize)
            }
        }
    }

    /// The next record, or `None` at a clean end of the stream.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, CaptureError> {
        let Some(len) = self.wait_for_record()? else {
            return Ok(None);
        };
        let info = self.take_record(len)?;
        Ok(Some(info.resolve(&self.buf)))
    }

    /// Appends the records that are complete in the buffer (reading more only
    /// when none is) to `out`, at most `max`. The ranges stay valid until the
    /// next call. An error comes after the records read before it; `out`
    /// stays empty only at the end of the stream.
    pub fn fill_batch(
        &mut self,
        max: usize,
        out: &mut Vec<RecordInfo>,
    ) -> Result<(), CaptureError> {
        out.clear();
        let mut next = self.wait_for_record()?;
        if let (Some(layout), Some(_)) = (self.pcap, next) {
            return self.pcap_batch(layout, max, out);
        }
        while let Some(len) = next {
            out.push(self.take_record(len)?);
            if out.len() == max {
                break;
            }
            next = self.complete_len()?;
        }
        Ok(())
    }

    /// [`CaptureReader::fill_batch`] for pcap, a record at the head of the
    /// buffer: the records complete in the buffer, at most `max`, in one
    /// pass over their headers.
    fn pcap_batch(
        &mut self,
        layout: PcapLayout,
        max: usize,
        out: &mut Vec<RecordInfo>,
    ) -> Result<(), CaptureError> {
        let (mut at, end) = (self.start, self.end);
        let mut result = Ok(());
        while out.len() < max {
            if end - at < 16 {
                break;
            }
            let len = 16 + layout.field(&self.buf[at..at + 16], 8) as usize;
            if len > MAX_RECORD {
                result = Err(too_long(self.offset + (at - self.start) as u64, len));
                break;
            }
            if len > end - at {
                break;
            }
            out.push(layout.record(&self.buf, at, at + len));
            at += len;
        }
        self.offset += (at - self.start) as u64;
        self.start = at;
        result
    }

    /// The bytes the ranges of [`RecordInfo`] point into.
    pub fn buffer(&self) -> &[u8] {
        &self.buf
    }

    /// The length of the record at the head of the buffer if all of it is there.
    fn complete_len(&self) -> Result<Option<usize>, CaptureError> {
        match self.record_len() {
            Some(n) if n > MAX_RECORD => Err(too_long(self.offset, n)),
            Some(n) if matches!(self.format, Format::PcapNg) && (n < 12 || n % 4 != 0) => {
                Err(CaptureError::Corrupt {
                    offset: self.offset,
                    what: format!("pcapng block length {n}"),
                })
            }
            Some(n) if n <= self.end - self.start => Ok(Some(n)),
            _ => Ok(None),
        }
    }

    /// Reads until a whole record is buffered and returns its length; `None`
    /// at a clean end.
    fn wait_for_record(&mut self) -> Result<Option<usize>, CaptureError> {
        loop {
            if let Some(len) = self.complete_len()? {
                return Ok(Some(len));
            }
            let avail = self.end - self.start;
            if self.eof {
                if avail == 0 {
                    return Ok(None);
                }
                let needed = self.record_len().unwrap_or(16);
                return Err(CaptureError::Truncated {
                    offset: self.offset,
                    needed,
                    have: avail,
                });
            }
            self.refill()?;
        }
    }

    /// Consumes the whole record of `len` bytes at the head of the buffer.
    fn take_record(&mut self, len: usize) -> Result<RecordInfo, CaptureError> {
        let at = self.offset;
        let (start, end) = (self.start, self.start + len);
        self.start = end;
        self.offset += len as u64;
        match self.format {
            Format::Pcap { .. } => {
                let layout = self.pcap.expect("a pcap capture has its layout");
                Ok(layout.record(&self.buf, start, end))
            }
            Format::PcapNg => self.ng_record(start, end, at),
        }
    }

    fn ng_record(&mut self, start: usize, end: usize, at: u64) -> Result<RecordInfo, CaptureError> {
        let corrupt = |e: PcapError| CaptureError::Corrupt {
            offset: at,
            what: format!("pcapng: {e}"),
        };
        let raw = &self.buf[start..end];
        // Some writers end the options without opt_endofopt, which the pcapng
        // spec allows and pcap-file 2.0 rejects: retry with one added.
        let repaired: Vec<u8>;
        if self.ng.is_none() || raw[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
            let endian = if raw.get(8..12) == Some(&[0x1a, 0x2b, 0x3c, 0x4d]) {
                Endianness::Big
            } else {
                Endianness::Little
            };
            let parser = match PcapNgParser::new(raw) {
                Ok((_, p)) => p,
                Err(e) => {
                    repaired = with_end_of_options(raw, endian);
                    PcapNgParser::new(&repaired).map_err(|_| corrupt(e))?.1
                }
            };
            self.ng_endian = parser.section().endianness;
            self.ng = Some(parser);
            self.interfaces.clear();
            return Ok(RecordInfo {
                raw: (start, end),
                packet: None,
            });
        }
        let endian = self.ng_endian;
        let parser = self.ng.as_mut().expect("set above");
        let (src, block) = match parser.next_block(raw) {
            Ok((_, b)) => (raw, b),
            Err(e) => {
                repaired = with_end_of_options(raw, endian);
                match parser.next_block(&repaired) {
                    Ok((_, b)) => (&repaired[..], b),
                    Err(_) => return Err(corrupt(e)),
                }
            }
        };
        let (interface, raw_ts, orig_len, data) = match block {
            Block::InterfaceDescription(idb) => {
                let mut i = Interface {
                    linktype: u32::from(idb.linktype),
                    tsresol: 6,
                    tsoffset: 0,
                };
                for o in &idb.options {
                    match o {
                        InterfaceDescriptionOption::IfTsResol(r) => i.tsresol = *r,
                        InterfaceDescriptionOption::IfTsOffset(s) => i.tsoffset = *s,
                        _ => {}
                    }
                }
                self.interfaces.push(i);
                return Ok(RecordInfo {
                    raw: (start, end),
                    packet: None,
                });
            }
            // Packet data precedes the options, so its offsets are the same in `raw`.
            Block::EnhancedPacket(epb) => (
                epb.interface_id,
                Some(epb.timestamp.as_nanos() as u64),
                epb.original_len,
                data_range(src, &epb.data),
            ),
            Block::SimplePacket(spb) => (0, None, spb.original_len, data_range(src, &spb.data)),
            Block::Packet(pb) => (
                u32::from(pb.interface_id),
                Some(pb.timestamp),
                pb.original_len,
                data_range(src, &pb.data),
            ),
            _ => {
                return Ok(RecordInfo {
                    raw: (start, end),
                    packet: None,
                })
            }
        };
        let Some(iface) = self.interfaces.get(interface as usize) else {
            return Err(CaptureError::Corrupt {
                offset: at,
                what: format!(
                    "a packet names interface {interface}, but {} are described",
                    self.interfaces.len()
                ),
            });
        };
        let ts = match raw_ts {
            Some(t) => ng_ts(t, iface.tsresol, iface.tsoffset),
            None => self.last_ts,
        };
        self.last_ts = ts;
        let (lo, hi) = data.ok_or_else(|| CaptureError::Corrupt {
            offset: at,
            what: "packet data outside its block".into(),
        })?;
        let packet = PacketInfo {
            ts,
            orig_len: orig_len.max((hi - lo) as u32),
            data: (start + lo, start + hi),
            linktype: iface.linktype,
            link: LinkType::from_pcap(iface.linktype),
            interface,
        };
        Ok(RecordInfo {
            raw: (start, end),
            packet: Some(packet),
        })
    }
}

/// A copy of a pcapng block with an opt_endofopt added after its options.
fn with_end_of_options(raw: &[u8], endian: Endianness) -> Vec<u8> {
    let len = raw.len() + 4;
    let l = match endian {
        Endianness::Big => (len as u32).to_be_bytes(),
        Endianness::Little => (len as u32).to_le_bytes(),
    };
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&raw[..raw.len().saturating_sub(4)]);
    v.extend_from_slice(&[0; 4]);
    v.extend_from_slice(&l);
    if v.len() >= 8 {
        v[4..8].copy_from_slice(&l);
    }
    v
}

/// Where `part` (borrowed from `whole`) lies in `whole`.
fn data_range(whole: &[u8], part: &[u8]) -> Option<(usize, usize)> {
    let lo = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let hi = lo.checked_add(part.len())?;
    (hi <= whole.len()).then_some((lo, hi))
}

/// A record at `offset` claiming `len` bytes, more than [`MAX_RECORD`].
fn too_long(offset: u64, len: usize) -> CaptureError {
    CaptureError::Corrupt {
        offset,
        what: format!("a record claims {len} bytes (at most {MAX_RECORD} are accepted)"),
    }
}

/// How a pcap file's record headers read (from its file header).
#[derive(Debug, Clone, Copy)]
struct PcapLayout {
    big: bool,
    nano: bool,
    linktype: u32,
    link: Option<LinkType>,
}

impl PcapLayout {
    fn of(header: &PcapHeader) -> PcapLayout {
        let linktype = u32::from(header.datalink);
        PcapLayout {
            big: header.endianness == Endianness::Big,
            nano: header.ts_resolution == TsResolution::NanoSecond,
            linktype,
            link: LinkType::from_pcap(linktype),
        }
    }

    /// The 32-bit field at `i` of a record header `h`.
    #[inline]
    fn field(&self, h: &[u8], i: usize) -> u32 {
        let b = [h[i], h[i + 1], h[i + 2], h[i + 3]];
        if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    /// The record at `start..end` of `buf`: its 16-byte header (seconds,
    /// fraction, captured and original lengths), then the packet.
    #[inline]
    fn record(&self, buf: &[u8], start: usize, end: usize) -> RecordInfo {
        let h = &buf[start..start + 16];
        let frac = u64::from(self.field(h, 4));
        let frac = if self.nano { frac } else { frac * 1000 };
        RecordInfo {
            raw: (start, end),
            packet: Some(PacketInfo {
                ts: u64::from(self.field(h, 0)) * 1_000_000_000 + frac,
                orig_len: self.field(h, 12).max(self.field(h, 8)),
                data: (start + 16, end),
                linktype: self.linktype,
                link: self.link,
                interface: 0,
            }),
        }
    }
}

/// A pcapng timestamp in ticks of `tsresol` (RFC: 10^-n, or 2^-n when the
/// high bit is set), plus `tsoffset` seconds, in nanoseconds.
fn ng_ts(ticks: u64, tsresol: u8, tsoffset: u64) -> Nanos {
    let t = u128::from(ticks);
    let ns = if tsresol & 0x80 != 0 {
        (t * 1_000_000_000) >> (tsresol & 0x7f).min(127)
    } else {
        let r = u32::from(tsresol.min(30));
        if r <= 9 {
            t * 10u128.pow(9 - r)
        } else {
            t / 10u128.pow(r - 9)
        }
    };
    (ns.min(u128::from(u64::MAX)) as u64).saturating_add(tsoffset.saturating_mul(1_000_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap_file(records: &[(&[u8], u32)]) -> Vec<u8> {
        let mut f = vec![
            0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0,
            0,
        ];
        for (i, (d, orig)) in records.iter().enumerate() {
            f.extend_from_slice(&(1_700_000_000u32 + i as u32).to_le_bytes());
            f.extend_from_slice(&500_000u32.to_le_bytes());
            f.extend_from_slice(&(d.len() as u32).to_le_bytes());
            f.extend_from_slice(&orig.to_le_bytes());
            f.extend_from_slice(d);
        }
        f
    }

    fn read_all(bytes: &[u8]) -> (Vec<(Nanos, usize, u32)>, Option<CaptureError>) {
        let mut r = match CaptureReader::new(bytes) {
            Ok(r) => r,
            Err(e) => return (vec![], Some(e)),
        };
        let mut out = Vec::new();
        loop {
            match r.next_record() {
                Ok(Some(rec)) => {
                    if let Some(p) = rec.packet {
                        out.push((p.ts, p.data.len(), p.orig_len));
                    }
                }
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn pcap_records_and_snaplen_cuts() {
        let f = pcap_file(&[(&[1; 60], 60), (&[2; 40], 1500)]);
        let (pkts, err) = read_all(&f);
        assert!(err.is_none());
        assert_eq!(
            pkts,
            vec![
                (1_700_000_000_500_000_000, 60, 60),
                (1_700_000_001_500_000_000, 40, 1500)
            ]
        );
    }

    #[test]
    fn truncation_is_reported_with_the_offset() {
        let f = pcap_file(&[(&[1; 60], 60), (&[2; 40], 40)]);
        for cut in [24 + 76 + 5, 24 + 76 + 16 + 10, f.len() - 1] {
            let (pkts, err) = read_all(&f[..cut]);
            assert_eq!(pkts.len(), 1, "cut at {cut}");
            match err {
                Some(CaptureError::Truncated { offset, .. }) => assert_eq!(offset, 24 + 76),
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
        let (_, err) = read_all(&f[..10]);
        assert!(
            matches!(err, Some(CaptureError::Truncated { offset: 0, .. })),
            "{err:?}"
        );
    }

    #[test]
    fn absurd_lengths_are_corrupt_not_buffered() {
        let mut f = pcap_file(&[(&[1; 60], 60)]);
        f[24 + 8..24 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        let (_, err) = read_all(&f);
        assert!(
            matches!(err, Some(CaptureError::Corrupt { offset: 24, .. })),
            "{err:?}"
        );
    }

    #[test]
    fn unknown_format() {
        let (_, err) = read_all(b"GET / HTTP/1.1\r\n\r\n-------");
        assert!(matches!(err, Some(CaptureError::UnknownFormat(_))));
    }

    #[test]
    fn pcapng_resolution_and_interfaces() {
        // SHB, IDB (linktype 1, if_tsresol = 9), EPB on interface 0.
        let mut f = Vec::new();
        let shb: [u8; 28] = [
            0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 28, 0, 0, 0,
        ];
        f.extend_from_slice(&shb);
        let idb: [u8; 32] = [
            1, 0, 0, 0, 32, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0,
            32, 0, 0, 0,
        ];
        f.extend_from_slice(&idb);
        let ts: u64 = 1_700_000_000_123_456_789;
        let mut epb = vec![6, 0, 0, 0, 36, 0, 0, 0, 0, 0, 0, 0];
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&4u32.to_le_bytes());
        epb.extend_from_slice(&4u32.to_le_bytes());
        epb.extend_from_slice(&[9, 9, 9, 9]);
        epb.extend_from_slice(&36u32.to_le_bytes());
        f.extend_from_slice(&epb);
        let (pkts, err) = read_all(&f);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(pkts, vec![(ts, 4, 4)]);
        // An EPB naming interface 3.
        let mut bad = f.clone();
        bad[28 + 32 + 8] = 3;
        let (_, err) = read_all(&bad);
        assert!(matches!(err, Some(CaptureError::Corrupt { .. })), "{err:?}");
    }

    #[test]
    fn timestamp_resolutions() {
        assert_eq!(ng_ts(5, 6, 0), 5_000);
        assert_eq!(ng_ts(5, 9, 0), 5);
        assert_eq!(ng_ts(5_000, 12, 0), 5);
        assert_eq!(ng_ts(1 << 20, 0x80 | 20, 0), 1_000_000_000);
        assert_eq!(ng_ts(1, 6, 10), 10_000_001_000);
    }
}
