//! The XDP program that hands an interface's frames to sgplane's AF_XDP
//! socket, as eBPF instructions. In C it is one line:
//!
//! ```c
//! SEC("xdp") int sgplane_xdp(struct xdp_md *ctx) {
//!     return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_DROP);
//! }
//! ```
//!
//! A frame on a queue with a socket in the map goes to that socket; on any
//! other queue it is dropped (`XDP_DROP`, the helper's fallback when the slot
//! is empty, Linux 5.3 and later; before, a miss aborts, which drops too).
//! sgplane refuses interfaces with more than one receive queue and puts the
//! socket in the map before it attaches the program, so in use every frame
//! reaches the socket; should a frame ever arrive on another queue, a filter
//! fails closed: it does not go on to the host's stack, which might forward
//! it unjudged.

/// One eBPF instruction: `code`, the destination and source registers,
/// a signed offset and a signed immediate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Insn {
    code: u8,
    dst: u8,
    src: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    /// The 8 bytes the kernel reads (`struct bpf_insn`, little-endian on the
    /// machines sgplane runs on: the registers share a byte, dst low).
    fn encode(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.src << 4) | (self.dst & 0x0f);
        b[2..4].copy_from_slice(&self.off.to_ne_bytes());
        b[4..8].copy_from_slice(&self.imm.to_ne_bytes());
        b
    }
}

// Opcodes (include/uapi/linux/bpf_common.h, bpf.h).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const LD_IMM_DW: u8 = 0x18; // BPF_LD | BPF_IMM | BPF_DW: a 64-bit constant, two slots
const ALU64_MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JMP_CALL: u8 = 0x85; // BPF_JMP | BPF_CALL
const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

/// `BPF_PSEUDO_MAP_FD`: the constant of an `LD_IMM_DW` is a map's descriptor.
const PSEUDO_MAP_FD: u8 = 1;
/// The helper `bpf_redirect_map`.
const HELPER_REDIRECT_MAP: i32 = 51;
/// `offsetof(struct xdp_md, rx_queue_index)`.
const XDP_MD_RX_QUEUE_INDEX: i16 = 16;

/// XDP actions.
pub const XDP_ABORTED: u32 = 0;
pub const XDP_DROP: u32 = 1;

/// The program's licence: the helper it calls is not GPL-only.
pub const LICENSE: &str = "MIT";

/// The program, for the XSKMAP whose descriptor is `map_fd`.
pub fn redirect_to_socket(map_fd: i32) -> Vec<[u8; 8]> {
    let i = |code, dst, src, off, imm| Insn {
        code,
        dst,
        src,
        off,
        imm,
    };
    [
        // r2 = ctx->rx_queue_index (r1 is the context)
        i(LDX_MEM_W, 2, 1, XDP_MD_RX_QUEUE_INDEX, 0),
        // r1 = &xsks (the map; the constant's upper half follows)
        i(LD_IMM_DW, 1, PSEUDO_MAP_FD, 0, map_fd),
        i(0, 0, 0, 0, 0),
        // r3 = XDP_DROP, the action when the queue has no socket
        i(ALU64_MOV_K, 3, 0, 0, XDP_DROP as i32),
        // r0 = bpf_redirect_map(r1, r2, r3)
        i(JMP_CALL, 0, 0, 0, HELPER_REDIRECT_MAP),
        // return r0
        i(JMP_EXIT, 0, 0, 0, 0),
    ]
    .into_iter()
    .map(Insn::encode)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_reads_the_queue_loads_the_map_and_calls_the_helper() {
        let p = redirect_to_socket(0x1234);
        assert_eq!(p.len(), 6);
        // r2 = *(u32 *)(r1 + 16)
        assert_eq!(p[0], [0x61, 0x12, 16, 0, 0, 0, 0, 0]);
        // The map's descriptor in the first half of the 64-bit load, marked
        // as a map descriptor; the second half zero.
        assert_eq!(p[1], [0x18, 0x11, 0, 0, 0x34, 0x12, 0, 0]);
        assert_eq!(p[2], [0; 8]);
        assert_eq!(p[3], [0xb7, 0x03, 0, 0, 1, 0, 0, 0]);
        assert_eq!(p[4], [0x85, 0, 0, 0, 51, 0, 0, 0]);
        assert_eq!(p[5], [0x95, 0, 0, 0, 0, 0, 0, 0]);
    }
}
