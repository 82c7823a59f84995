//! Captures behind the frame interface: a [`CaptureReader`] hands over its
//! packets as frames with their capture time and length on the wire, and a
//! [`CaptureWriter`] writes the frames it is sent as a pcap file.

use std::io::{self, Read, Write};
use std::os::fd::BorrowedFd;

use super::{CaptureError, CaptureReader};
use crate::io::frame::{FrameMeta, FrameSink, FrameSource, Frames};
use crate::wire::LinkType;

/// Packets per burst.
const BURST: usize = 64;

impl<R: Read> FrameSource for CaptureReader<R> {
    /// Up to 64 packets a burst (records that are not packets are passed
    /// over); 0 at the end of the capture. A capture that cannot be read to
    /// its end is an error (`InvalidData`, or the read error).
    fn recv_burst(
        &mut self,
        bursts: usize,
        each: &mut dyn FnMut(&[u8], &FrameMeta),
    ) -> io::Result<usize> {
        let mut taken = 0;
        while taken < BURST * bursts {
            let record = match self.next_record() {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    let kind = match &e {
                        CaptureError::Io { source, .. } => source.kind(),
                        _ => io::ErrorKind::InvalidData,
                    };
                    return Err(io::Error::new(kind, e));
                }
            };
            if let Some(p) = record.packet {
                let meta = FrameMeta {
                    link: p.link,
                    wire_len: p.orig_len,
                    ts: p.ts,
                    ..FrameMeta::default()
                };
                each(p.data, &meta);
                taken += 1;
            }
        }
        Ok(taken)
    }

    /// A capture never makes one wait.
    fn poll_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
}

/// Writes frames of one link type to a pcap file with nanosecond
/// timestamps (each frame's [`FrameMeta::ts`]).
pub struct CaptureWriter<W: Write> {
    out: W,
    link: LinkType,
    /// The first write that failed: nothing is written after it.
    error: Option<io::Error>,
}

impl<W: Write> CaptureWriter<W> {
    /// Writes the file header: frames of `link`, at most `snaplen` bytes each.
    pub fn new(mut out: W, link: LinkType, snaplen: u32) -> io::Result<CaptureWriter<W>> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes()); // nanosecond pcap
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&[0; 8]); // thiszone, sigfigs
        h.extend_from_slice(&snaplen.to_le_bytes());
        h.extend_from_slice(&link.to_pcap().to_le_bytes());
        out.write_all(&h)?;
        Ok(CaptureWriter {
            out,
            link,
            error: None,
        })
    }

    /// Flushes and hands back the output, or the first error a write met.
    pub fn finish(mut self) -> io::Result<W> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()?;
        Ok(self.out)
    }

    fn write(&mut self, frame: &[u8], meta: &FrameMeta) -> io::Result<()> {
        let mut h = [0u8; 16];
        let secs = (meta.ts / 1_000_000_000) as u32;
        let nanos = (meta.ts % 1_000_000_000) as u32;
        h[0..4].copy_from_slice(&secs.to_le_bytes());
        h[4..8].copy_from_slice(&nanos.to_le_bytes());
        h[8..12].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&meta.wire_len.max(frame.len() as u32).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(frame)
    }
}

impl<W: Write> FrameSink for CaptureWriter<W> {
    /// Frames of another link type are refused; after a failed write,
    /// everything is (see [`CaptureWriter::finish`]).
    fn send_burst(&mut self, frames: &Frames, which: &[u32]) -> usize {
        let mut written = 0;
        for &i in which {
            let (frame, meta) = frames.get(i as usize);
            if self.error.is_some() || meta.link.is_some_and(|l| l != self.link) {
                continue;
            }
            match self.write(frame, meta) {
                Ok(()) => written += 1,
                Err(e) => self.error = Some(e),
            }
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_written_read_back_with_their_time_and_length() {
        let mut frames = Frames::default();
        let eth = Some(LinkType::Ethernet);
        for (i, (len, wire)) in [(60u32, 60u32), (100, 1500), (64, 64)]
            .into_iter()
            .enumerate()
        {
            let meta = FrameMeta {
                link: if i == 2 { Some(LinkType::RawIp) } else { eth },
                wire_len: wire,
                ts: 1_700_000_000_123_456_789 + i as u64,
                ..FrameMeta::default()
            };
            frames.push(&vec![i as u8; len as usize], &meta);
        }
        let mut w = CaptureWriter::new(Vec::new(), LinkType::Ethernet, 65_535).unwrap();
        assert_eq!(w.send_burst(&frames, &[1, 0, 2]), 2);
        let file = w.finish().unwrap();

        let mut r = CaptureReader::new(&file[..]).unwrap();
        assert!(r.poll_fd().is_none());
        let mut got = Vec::new();
        let n = r
            .recv_burst(1, &mut |f, m| got.push((f.to_vec(), *m)))
            .unwrap();
        assert_eq!(n, 2);
        for ((f, m), i) in got.iter().zip([1usize, 0]) {
            let (want, want_meta) = frames.get(i);
            assert_eq!(&f[..], want);
            assert_eq!(
                (m.ts, m.wire_len, m.link),
                (want_meta.ts, want_meta.wire_len, eth)
            );
        }
        assert_eq!(r.recv_burst(1, &mut |_, _| {}).unwrap(), 0);
    }

    #[test]
    fn a_truncated_capture_is_an_error() {
        let mut frames = Frames::default();
        frames.push(&[1; 60], &FrameMeta::default());
        let mut w = CaptureWriter::new(Vec::new(), LinkType::Ethernet, 65_535).unwrap();
        w.send_burst(&frames, &[0]);
        let file = w.finish().unwrap();
        let mut r = CaptureReader::new(&file[..file.len() - 1]).unwrap();
        let e = r.recv_burst(1, &mut |_, _| {}).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    }
}
