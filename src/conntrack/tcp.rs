//! The Linux nf_conntrack TCP state machine (net/netfilter/nf_conntrack_proto_tcp.c),
//! without window tracking and with loose pick-up of established flows.

/// The TCP flag bits (one definition, in the wire layer).
pub use crate::wire::tcp::flags::{ACK, CWR, ECE, FIN, PSH, RST, SYN, URG};

/// A tracked TCP connection's state, numbered as Linux numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TcpState {
    None = 0,
    SynSent = 1,
    SynRecv = 2,
    Established = 3,
    FinWait = 4,
    CloseWait = 5,
    LastAck = 6,
    TimeWait = 7,
    Close = 8,
    SynSent2 = 9,
}

impl TcpState {
    pub fn from_u8(v: u8) -> TcpState {
        use TcpState::*;
        match v {
            1 => SynSent,
            2 => SynRecv,
            3 => Established,
            4 => FinWait,
            5 => CloseWait,
            6 => LastAck,
            7 => TimeWait,
            8 => Close,
            9 => SynSent2,
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        use TcpState::*;
        match self {
            None => "NONE",
            SynSent => "SYN_SENT",
            SynRecv => "SYN_RECV",
            Established => "ESTABLISHED",
            FinWait => "FIN_WAIT",
            CloseWait => "CLOSE_WAIT",
            LastAck => "LAST_ACK",
            TimeWait => "TIME_WAIT",
            Close => "CLOSE",
            SynSent2 => "SYN_SENT2",
        }
    }
}

/// Linux's `tcp_valid_flags`: the flag combinations conntrack accepts at all
/// (PSH, ECE and CWR ignored). Anything else is invalid in every state.
pub fn valid_flags(flags: u8) -> bool {
    let f = flags & !(ECE | CWR | PSH);
    matches!(
        f,
        SYN | 0x22 /* SYN|URG */ | 0x12 /* SYN|ACK */ | RST | 0x14 /* RST|ACK */
            | 0x11 /* FIN|ACK */ | 0x31 /* FIN|ACK|URG */ | ACK | 0x30 /* ACK|URG */
    )
}

/// The row of the state table a packet selects (Linux `get_conntrack_index`).
fn index(flags: u8) -> usize {
    if flags & RST != 0 {
        4
    } else if flags & SYN != 0 {
        if flags & ACK != 0 {
            1
        } else {
            0
        }
    } else if flags & FIN != 0 {
        2
    } else if flags & ACK != 0 {
        3
    } else {
        5
    }
}

/// What a packet does to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Move to this state (it may be the same one).
    To(TcpState),
    /// Linux `sIG`: the packet passes but the state does not change.
    Ignore,
    /// Linux `sIV`: the packet is invalid.
    Invalid,
}

const SS: u8 = 1;
const SR: u8 = 2;
const ES: u8 = 3;
const FW: u8 = 4;
const CW: u8 = 5;
const LA: u8 = 6;
const TW: u8 = 7;
const CL: u8 = 8;
const S2: u8 = 9;
const IV: u8 = 10;
const IG: u8 = 11;

/// `tcp_conntracks[dir][index][state]` from current Linux.
#[rustfmt::skip]
static TABLE: [[[u8; 10]; 6]; 2] = [
    [
        // ORIGINAL  sNO sSS sSR sES sFW sCW sLA sTW sCL sS2
        /* syn    */ [SS, SS, IG, IG, IG, IG, IG, SS, SS, S2],
        /* synack */ [IV, IV, SR, IV, IV, IV, IV, IV, IV, SR],
        /* fin    */ [IV, IV, FW, FW, LA, LA, LA, TW, CL, IV],
        /* ack    */ [ES, IV, ES, ES, CW, CW, TW, TW, CL, IV],
        /* rst    */ [IV, CL, CL, CL, CL, CL, CL, CL, CL, CL],
        /* none   */ [IV, IV, IV, IV, IV, IV, IV, IV, IV, IV],
    ],
    [
        // REPLY     sNO sSS sSR sES sFW sCW sLA sTW sCL sS2
        /* syn    */ [IV, S2, IV, IV, IV, IV, IV, SS, IV, S2],
        /* synack */ [IV, SR, IG, IG, IG, IG, IG, IG, IG, SR],
        /* fin    */ [IV, IV, FW, FW, LA, LA, LA, TW, CL, IV],
        /* ack    */ [IV, IG, SR, ES, CW, CW, TW, TW, CL, IG],
        /* rst    */ [IV, CL, CL, CL, CL, CL, CL, CL, CL, CL],
        /* none   */ [IV, IV, IV, IV, IV, IV, IV, IV, IV, IV],
    ],
];

/// The transition a packet with `flags` makes from `state`, seen in the
/// original (`reply == false`) or reply direction.
pub fn transition(state: TcpState, reply: bool, flags: u8) -> Transition {
    if !valid_flags(flags) {
        return Transition::Invalid;
    }
    match TABLE[usize::from(reply)][index(flags)][state as usize] {
        IV => Transition::Invalid,
        IG => Transition::Ignore,
        s => Transition::To(TcpState::from_u8(s)),
    }
}

/// The state a new connection starts in, or `None` if its first packet is
/// invalid: SYN opens SYN_SENT, an ACK without SYN/FIN/RST opens ESTABLISHED
/// (loose pick-up); anything else is invalid.
pub fn open(flags: u8) -> Option<TcpState> {
    match transition(TcpState::None, false, flags) {
        Transition::To(s) if s != TcpState::None => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::TcpState::*;
    use super::*;

    #[test]
    fn opening() {
        assert_eq!(open(SYN), Some(SynSent));
        assert_eq!(open(SYN | ECE | CWR), Some(SynSent));
        assert_eq!(open(ACK), Some(Established));
        assert_eq!(open(ACK | PSH), Some(Established));
        assert!(open(SYN | ACK).is_none());
        assert!(open(FIN | ACK).is_none());
        assert!(open(RST).is_none());
        assert!(open(RST | ACK).is_none());
        assert!(open(0).is_none());
        assert!(open(FIN).is_none());
        assert!(open(SYN | FIN).is_none());
    }

    #[test]
    fn three_way_handshake_and_close() {
        let mut s = SynSent;
        let step = |s: TcpState, reply, flags| match transition(s, reply, flags) {
            Transition::To(n) => n,
            t => panic!("{t:?} from {s:?}"),
        };
        s = step(s, true, SYN | ACK);
        assert_eq!(s, SynRecv);
        s = step(s, false, ACK);
        assert_eq!(s, Established);
        s = step(s, false, FIN | ACK);
        assert_eq!(s, FinWait);
        s = step(s, true, ACK);
        assert_eq!(s, CloseWait);
        s = step(s, true, FIN | ACK);
        assert_eq!(s, LastAck);
        s = step(s, false, ACK);
        assert_eq!(s, TimeWait);
    }

    #[test]
    fn invalid_and_ignored() {
        // The client can't send SYN and then SYN/ACK.
        assert_eq!(transition(SynSent, false, SYN | ACK), Transition::Invalid);
        // ACK before the SYN/ACK was seen.
        assert_eq!(transition(SynSent, false, ACK), Transition::Invalid);
        // A reply ACK in SYN_SENT might be a half-open connection.
        assert_eq!(transition(SynSent, true, ACK), Transition::Ignore);
        // A SYN inside an established connection.
        assert_eq!(transition(Established, false, SYN), Transition::Ignore);
        assert_eq!(transition(Established, true, SYN), Transition::Invalid);
        // Simultaneous open.
        assert_eq!(transition(SynSent, true, SYN), Transition::To(SynSent2));
        // RST closes from anywhere after the first packet.
        for s in [
            SynSent,
            SynRecv,
            Established,
            FinWait,
            CloseWait,
            LastAck,
            TimeWait,
            Close,
            SynSent2,
        ] {
            assert_eq!(transition(s, true, RST), Transition::To(Close));
            assert_eq!(transition(s, false, RST | ACK), Transition::To(Close));
        }
        // Flag combinations Linux never accepts.
        assert_eq!(
            transition(Established, false, SYN | FIN),
            Transition::Invalid
        );
        assert_eq!(transition(Established, false, FIN), Transition::Invalid);
        assert_eq!(transition(Established, false, 0), Transition::Invalid);
        // Reopening from TIME_WAIT.
        assert_eq!(transition(TimeWait, false, SYN), Transition::To(SynSent));
    }
}
