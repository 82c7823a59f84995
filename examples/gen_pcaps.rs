//! Writes the project's own captures and their golden verdicts into `pcaps/`:
//! `cargo run --example gen_pcaps`.
//!
//! Every capture tells the story of one policy in `config/` with real packet
//! exchanges (TCP sessions, refused connections with their retransmissions,
//! DNS, ping, ICMP errors, fragments, link-layer chatter). Next to each packet
//! the generator writes what sgplane must say about it, worked out from what
//! the packet *is* in the story and SPEC §2 — a new flow's first packet decided
//! by a named rule, a reply that conntrack passes, a SYN-ACK nobody asked for —
//! never by running sgplane. `tests/replay_scenarios.rs` replays every capture
//! and compares, so the goldens check the engine instead of recording it.
//!
//! The output is byte-for-byte reproducible: fixed timestamps from
//! 1700000000.000000, sequence numbers hashed from the flow's addresses, no
//! clock and no randomness.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};
use sgplane::wire::build;

/// Capture time in microseconds since the Unix epoch.
type Micros = u64;
const T0: Micros = 1_700_000_000_000_000;
const MS: Micros = 1_000;
const SEC: Micros = 1_000_000;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("a literal address")
}

// ------------------------------------------------------------------ expectations

/// What sgplane must report for one packet under one policy.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expect {
    verdict: &'static str,
    reason: &'static str,
    /// The deciding rule; empty for reasons other than `rule`.
    rule: &'static str,
}

const fn expect(verdict: &'static str, reason: &'static str) -> Expect {
    Expect {
        verdict,
        reason,
        rule: "",
    }
}

const ESTABLISHED: Expect = expect("allow", "established");
const RELATED: Expect = expect("allow", "related");
const ARP: Expect = expect("allow", "arp");
const NEIGHBOR_DISCOVERY: Expect = expect("allow", "neighbor-discovery");
const NO_RULE: Expect = expect("deny", "no-rule");
const INVALID: Expect = expect("deny", "invalid");
const NOT_IP: Expect = expect("deny", "not-ip");
const MALFORMED: Expect = expect("deny", "malformed");
const UNKNOWN_ADDRESS: Expect = expect("deny", "unknown-address");

/// Denied by an explicit deny rule (the first denier; egress is checked first).
const fn denied_by(rule: &'static str) -> Expect {
    Expect {
        verdict: "deny",
        reason: "rule",
        rule,
    }
}

/// The fate of one flow under one policy: what its packets get.
#[derive(Debug, Clone)]
enum Fate {
    /// The first packet is allowed by this rule (the ingress rule when both
    /// ends allow) and opens an entry: every later packet is `established`
    /// (the stories keep every flow well within its conntrack timeout).
    Allowed(&'static str),
    /// Nothing is ever opened, so every packet is a new flow: the client's
    /// are judged as `to_server`, the server's as `to_client` (None: the
    /// server never answers). TCP packets that cannot open a flow (SYN-ACK,
    /// FIN, RST) are `invalid` before any rule is looked at.
    Denied {
        to_server: Expect,
        to_client: Option<Expect>,
    },
}

impl Fate {
    /// A flow whose server never answers (refused connections, dropped queries).
    fn denied(to_server: Expect) -> Fate {
        Fate::Denied {
            to_server,
            to_client: None,
        }
    }

    /// A flow both of whose ends keep talking although each packet is denied.
    fn denied_both_ways(to_server: Expect, to_client: Expect) -> Fate {
        assert_eq!(
            to_client.verdict, "deny",
            "a reply allowed as a new flow would open an entry"
        );
        Fate::Denied {
            to_server,
            to_client: Some(to_client),
        }
    }

    /// The `nth` packet of the flow (0-based), sent by the client or the server.
    fn judge(&self, nth: usize, from_client: bool, tcp_flags: Option<u8>) -> Expect {
        match self {
            Fate::Allowed(rule) if nth == 0 => {
                assert!(from_client, "the client speaks first");
                Expect {
                    verdict: "allow",
                    reason: "rule",
                    rule,
                }
            }
            Fate::Allowed(_) => ESTABLISHED,
            Fate::Denied {
                to_server,
                to_client,
            } => {
                // Only a SYN or a bare ACK (loose pick-up) may start a TCP flow.
                if tcp_flags.is_some_and(|f| !matches!(f & !PSH, SYN | ACK)) {
                    return INVALID;
                }
                if from_client {
                    to_server.clone()
                } else {
                    to_client
                        .clone()
                        .expect("the story says this server never answers")
                }
            }
        }
    }
}

// ------------------------------------------------------------------ captures

/// A policy a capture is replayed against, and its golden file.
struct Replay {
    /// `config/<name>.toml`; None for the built-in policy.
    config: Option<&'static str>,
    golden: &'static str,
}

struct Packet {
    ts: Micros,
    /// The whole frame as it was on the wire (no snap-length cuts).
    frame: Vec<u8>,
    /// One expectation per [`Replay`] of the capture.
    expect: Vec<Expect>,
}

/// A capture being generated: packets in any order, sorted by time when written.
struct Capture {
    name: &'static str,
    replays: Vec<Replay>,
    packets: Vec<Packet>,
}

impl Capture {
    fn new(name: &'static str, replays: Vec<Replay>) -> Capture {
        Capture {
            name,
            replays,
            packets: Vec::new(),
        }
    }

    fn push(&mut self, ts: Micros, frame: Vec<u8>, expect: Vec<Expect>) {
        assert_eq!(
            expect.len(),
            self.replays.len(),
            "one expectation per policy"
        );
        self.packets.push(Packet { ts, frame, expect });
    }

    /// A packet every policy of the capture judges alike (link-layer frames,
    /// malformed frames, unknown addresses).
    fn single(&mut self, ts: Micros, frame: Vec<u8>, e: Expect) {
        let n = self.replays.len();
        self.push(ts, frame, vec![e; n]);
    }

    /// A conversation whose fate is `fates[i]` under the i-th policy.
    fn conv(&mut self, fates: &[Fate]) -> Conv<'_> {
        assert_eq!(fates.len(), self.replays.len(), "one fate per policy");
        Conv {
            cap: self,
            fates: fates.to_vec(),
            sent: 0,
        }
    }

    /// Sorts by time (stable: packets of one instant keep their order) and
    /// writes the pcap and one golden file per policy.
    fn write(mut self, dir: &Path) -> usize {
        self.packets.sort_by_key(|p| p.ts);
        let header = PcapHeader {
            version_major: 2,
            version_minor: 4,
            ts_correction: 0,
            ts_accuracy: 0,
            snaplen: 65535,
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::MicroSecond,
            endianness: Endianness::Little,
        };
        let mut w = PcapWriter::with_header(Vec::new(), header).expect("writing to a Vec");
        for p in &self.packets {
            let pkt = PcapPacket::new(Duration::from_micros(p.ts), p.frame.len() as u32, &p.frame);
            w.write_packet(&pkt)
                .expect("a frame within the snap length");
        }
        write_file(&dir.join(format!("{}.pcap", self.name)), &w.into_writer());
        for (i, r) in self.replays.iter().enumerate() {
            let mut csv = String::from("index,verdict,reason,rule\n");
            for (n, p) in self.packets.iter().enumerate() {
                let e = &p.expect[i];
                let _ = writeln!(csv, "{n},{},{},{}", e.verdict, e.reason, e.rule);
            }
            write_file(&dir.join(r.golden), csv.as_bytes());
        }
        self.packets.len()
    }
}

fn write_file(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// The packets of one flow, each with the expectation its fate gives it.
struct Conv<'a> {
    cap: &'a mut Capture,
    fates: Vec<Fate>,
    sent: usize,
}

impl Conv<'_> {
    fn send(&mut self, ts: Micros, from_client: bool, frame: Vec<u8>, tcp_flags: Option<u8>) {
        let expect = self
            .fates
            .iter()
            .map(|f| f.judge(self.sent, from_client, tcp_flags))
            .collect();
        self.cap.push(ts, frame, expect);
        self.sent += 1;
    }

    /// The fragments of one datagram: the first is judged as a packet of the
    /// flow, the later ones take its verdict with reason `fragment`.
    fn send_fragments(&mut self, ts: Micros, from_client: bool, fragments: Vec<Vec<u8>>) {
        let first: Vec<Expect> = self
            .fates
            .iter()
            .map(|f| f.judge(self.sent, from_client, None))
            .collect();
        for (i, frame) in fragments.into_iter().enumerate() {
            let expect = if i == 0 {
                first.clone()
            } else {
                first
                    .iter()
                    .map(|e| expect(e.verdict, "fragment"))
                    .collect()
            };
            // Back-to-back on a 10 Gb/s link: a few microseconds apart.
            self.cap.push(ts + 2 * i as Micros, frame, expect);
        }
        self.sent += 1;
    }

    /// An ICMP error quoting one of this flow's packets: `related` where the
    /// flow is tracked.
    fn send_icmp_error(&mut self, ts: Micros, frame: Vec<u8>) {
        let expect = self
            .fates
            .iter()
            .map(|f| match f {
                Fate::Allowed(_) if self.sent > 0 => RELATED,
                _ => unimplemented!(
                    "an ICMP error for an untracked flow is judged by the rules: say which"
                ),
            })
            .collect();
        self.cap.push(ts, frame, expect);
    }
}

// ------------------------------------------------------------------ conversations

/// FNV-1a, for sequence numbers that look random but are fixed by the flow.
fn fnv(parts: &[&[u8]]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in parts.iter().flat_map(|p| p.iter()) {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

fn addr_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

/// A flow's endpoints (TCP or UDP) and the round-trip time seen from the tap.
#[derive(Debug, Clone, Copy)]
struct Flow {
    client: IpAddr,
    cport: u16,
    server: IpAddr,
    sport: u16,
    rtt: Micros,
}

fn flow(client: &str, cport: u16, server: &str, sport: u16, rtt: Micros) -> Flow {
    Flow {
        client: ip(client),
        cport,
        server: ip(server),
        sport,
        rtt,
    }
}

impl Flow {
    /// The initial sequence number of one side.
    fn isn(&self, of_client: bool) -> u32 {
        let (a, ap, b, bp) = if of_client {
            (self.client, self.cport, self.server, self.sport)
        } else {
            (self.server, self.sport, self.client, self.cport)
        };
        fnv(&[
            &addr_bytes(a),
            &ap.to_be_bytes(),
            &addr_bytes(b),
            &bp.to_be_bytes(),
        ])
    }
}

/// A TCP conversation with consistent sequence and acknowledgement numbers.
struct TcpConv<'a> {
    conv: Conv<'a>,
    c: Flow,
    /// The next sequence number each side sends.
    cseq: u32,
    sseq: u32,
}

impl<'a> TcpConv<'a> {
    fn new(cap: &'a mut Capture, fates: &[Fate], c: Flow) -> TcpConv<'a> {
        TcpConv {
            conv: cap.conv(fates),
            c,
            cseq: c.isn(true),
            sseq: c.isn(false),
        }
    }

    /// Sends a segment; returns its frame (for an ICMP error to quote).
    fn segment(&mut self, ts: Micros, from_client: bool, flags: u8, payload: &[u8]) -> Vec<u8> {
        let c = self.c;
        let (src, dst, sp, dp, seq, peer) = if from_client {
            (c.client, c.server, c.cport, c.sport, self.cseq, self.sseq)
        } else {
            (c.server, c.client, c.sport, c.cport, self.sseq, self.cseq)
        };
        let ack = if flags & ACK != 0 { peer } else { 0 };
        let frame = build::tcp(src, dst, sp, dp, flags, seq, ack, payload);
        let used = payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0);
        if from_client {
            self.cseq = self.cseq.wrapping_add(used);
        } else {
            self.sseq = self.sseq.wrapping_add(used);
        }
        self.conv.send(ts, from_client, frame.clone(), Some(flags));
        frame
    }

    fn client(&mut self, ts: Micros, flags: u8, payload: &[u8]) -> Vec<u8> {
        self.segment(ts, true, flags, payload)
    }

    fn server(&mut self, ts: Micros, flags: u8, payload: &[u8]) -> Vec<u8> {
        self.segment(ts, false, flags, payload)
    }
}

/// Time between a packet and the next one the same host sends at once.
const GAP: Micros = 40;

/// A whole connection: handshake, one request, its response 2 ms later, the
/// client closes, FIN/ACK both ways, last ACK.
fn tcp_session(
    cap: &mut Capture,
    fates: &[Fate],
    c: Flow,
    t: Micros,
    request: &[u8],
    response: &[u8],
) {
    tcp_session_think(cap, fates, c, t, request, response, 2 * MS);
}

/// [`tcp_session`] with a server that takes `think` to answer.
fn tcp_session_think(
    cap: &mut Capture,
    fates: &[Fate],
    c: Flow,
    t: Micros,
    request: &[u8],
    response: &[u8],
    think: Micros,
) {
    let mut s = TcpConv::new(cap, fates, c);
    let r = c.rtt;
    s.client(t, SYN, b"");
    s.server(t + r, SYN | ACK, b"");
    s.client(t + r + GAP, ACK, b"");
    s.client(t + r + 2 * GAP, PSH | ACK, request);
    let answered = t + 2 * r + 2 * GAP + think;
    s.server(answered, PSH | ACK, response);
    let close = answered + 300;
    s.client(close, FIN | ACK, b"");
    s.server(close + r, FIN | ACK, b"");
    s.client(close + r + GAP, ACK, b"");
}

/// A connection nobody answers: the SYN and its retransmissions 1 s and 3 s later.
fn tcp_unanswered(cap: &mut Capture, fates: &[Fate], c: Flow, t: Micros) {
    let syn = build::tcp(
        c.client,
        c.server,
        c.cport,
        c.sport,
        SYN,
        c.isn(true),
        0,
        b"",
    );
    let mut conv = cap.conv(fates);
    for after in [0, SEC, 3 * SEC] {
        conv.send(t + after, true, syn.clone(), Some(SYN));
    }
}

/// A connection opened before the capture started: the first packet seen is
/// the client's data (loose pick-up), then the response and the client's ACK.
fn tcp_midstream(
    cap: &mut Capture,
    fates: &[Fate],
    c: Flow,
    t: Micros,
    request: &[u8],
    response: &[u8],
) {
    let mut s = TcpConv::new(cap, fates, c);
    s.cseq = s.cseq.wrapping_add(48_213);
    s.sseq = s.sseq.wrapping_add(917_004);
    s.client(t, PSH | ACK, request);
    s.server(t + c.rtt + 600, PSH | ACK, response);
    s.client(t + c.rtt + 600 + c.rtt / 2, ACK, b"");
}

/// A UDP request and its response `rtt` later.
fn udp_exchange(
    cap: &mut Capture,
    fates: &[Fate],
    c: Flow,
    t: Micros,
    request: &[u8],
    response: &[u8],
) {
    let mut conv = cap.conv(fates);
    conv.send(
        t,
        true,
        build::udp(c.client, c.server, c.cport, c.sport, request),
        None,
    );
    conv.send(
        t + c.rtt,
        false,
        build::udp(c.server, c.client, c.sport, c.cport, response),
        None,
    );
}

/// `count` echo requests a second apart, each answered `rtt` later.
fn ping(
    cap: &mut Capture,
    fates: &[Fate],
    (client, server): (&str, &str),
    ident: u16,
    count: u16,
    t: Micros,
    rtt: Micros,
) {
    let (c, s) = (ip(client), ip(server));
    let mut conv = cap.conv(fates);
    for seq in 1..=count {
        let at = t + Micros::from(seq - 1) * SEC;
        conv.send(at, true, build::echo(c, s, true, ident, seq), None);
        conv.send(at + rtt, false, build::echo(s, c, false, ident, seq), None);
    }
}

// ------------------------------------------------------------------ payloads

/// Bytes that look like ciphertext, fixed by `seed`.
fn filler(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// A TLS 1.2-framed handshake record (ClientHello = 1, ServerHello = 2) of `len` bytes.
fn tls_handshake(msg: u8, len: usize) -> Vec<u8> {
    let body = len - 5;
    let mut v = vec![0x16, 0x03, 0x01, (body >> 8) as u8, body as u8, msg];
    let hs = body - 4;
    v.extend_from_slice(&[(hs >> 16) as u8, (hs >> 8) as u8, hs as u8, 0x03, 0x03]);
    v.extend(filler(len as u32 * 31 + u32::from(msg), len - v.len()));
    v
}

fn client_hello() -> Vec<u8> {
    tls_handshake(1, 517)
}

fn server_hello() -> Vec<u8> {
    tls_handshake(2, 1380)
}

fn http_get(host: &str, path: &str, agent: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {agent}\r\nAccept: */*\r\nConnection: close\r\n\r\n")
        .into_bytes()
}

fn http_response(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nDate: Tue, 14 Nov 2023 22:13:20 GMT\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn ssh_banner(version: &str) -> Vec<u8> {
    format!("SSH-2.0-{version}\r\n").into_bytes()
}

/// A PostgreSQL StartupMessage (protocol 3.0).
fn pg_startup(user: &str, database: &str, application: &str) -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec();
    for s in [
        "user",
        user,
        "database",
        database,
        "application_name",
        application,
    ] {
        body.extend_from_slice(s.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut v = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    v.extend(body);
    v
}

/// A PostgreSQL backend message: type byte, length, body.
fn pg_message(typ: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![typ];
    v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn pg_query(sql: &str) -> Vec<u8> {
    let mut q = sql.as_bytes().to_vec();
    q.push(0);
    pg_message(b'Q', &q)
}

const DNS_A: u16 = 1;
const DNS_DNSKEY: u16 = 48;

fn dns_name(name: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        v.push(label.len() as u8);
        v.extend_from_slice(label.as_bytes());
    }
    v.push(0);
    v
}

/// A recursive query, with an EDNS OPT record (4096-byte buffer, DO bit) if `edns`.
fn dns_query(id: u16, name: &str, qtype: u16, edns: bool) -> Vec<u8> {
    let mut v = id.to_be_bytes().to_vec();
    v.extend_from_slice(&[0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)]);
    v.extend(dns_name(name));
    v.extend_from_slice(&qtype.to_be_bytes());
    v.extend_from_slice(&1u16.to_be_bytes());
    if edns {
        v.extend_from_slice(&[0, 0, 41, 0x10, 0x00, 0, 0, 0x80, 0, 0, 0]);
    }
    v
}

/// The answer to `query` (built by [`dns_query`]) with one record per rdata.
fn dns_answer(query: &[u8], qtype: u16, rdatas: &[Vec<u8>]) -> Vec<u8> {
    let question_end = 12 + query[12..].iter().position(|&b| b == 0).expect("a name") + 1 + 4;
    let mut v = query[..2].to_vec();
    v.extend_from_slice(&[0x81, 0x80, 0, 1]);
    v.extend_from_slice(&(rdatas.len() as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0]);
    v.extend_from_slice(&query[12..question_end]);
    for rd in rdatas {
        v.extend_from_slice(&[0xc0, 0x0c]);
        v.extend_from_slice(&qtype.to_be_bytes());
        v.extend_from_slice(&[0, 1, 0, 0, 0x0e, 0x10]);
        v.extend_from_slice(&(rd.len() as u16).to_be_bytes());
        v.extend_from_slice(rd);
    }
    v
}

fn dns_a(query: &[u8], addrs: &[&str]) -> Vec<u8> {
    let rdatas: Vec<Vec<u8>> = addrs.iter().map(|a| addr_bytes(ip(a))).collect();
    dns_answer(query, DNS_A, &rdatas)
}

/// A dynamic update (RFC 2136) of `zone` adding a TXT record of about
/// `txt_len` bytes (split into 255-byte strings) at `name`.
fn dns_update(id: u16, zone: &str, name: &str, txt_len: usize) -> Vec<u8> {
    let mut v = id.to_be_bytes().to_vec();
    v.extend_from_slice(&[0x28, 0x00, 0, 1, 0, 0, 0, 1, 0, 0]);
    v.extend(dns_name(zone));
    v.extend_from_slice(&[0, 6, 0, 1]);
    v.extend(dns_name(name));
    v.extend_from_slice(&[0, 16, 0, 1, 0, 0, 0x01, 0x2c]);
    const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let text: Vec<u8> = filler(0xd41d, txt_len)
        .iter()
        .map(|b| BASE64[usize::from(b & 63)])
        .collect();
    let mut rdata = Vec::new();
    for chunk in text.chunks(255) {
        rdata.push(chunk.len() as u8);
        rdata.extend_from_slice(chunk);
    }
    v.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    v.extend(rdata);
    v
}

/// The server's NOERROR answer to a dynamic update: the header, the zone section.
fn dns_update_ok(update: &[u8]) -> Vec<u8> {
    let zone_end = 12 + update[12..].iter().position(|&b| b == 0).expect("a name") + 1 + 4;
    let mut v = update[..2].to_vec();
    v.extend_from_slice(&[0xa8, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    v.extend_from_slice(&update[12..zone_end]);
    v
}

/// An NTPv4 client request (mode 3) with a fixed transmit timestamp.
fn ntp_request() -> Vec<u8> {
    let mut v = vec![0u8; 48];
    v[0] = 0x23;
    v[2] = 6;
    v[3] = 0xec;
    v[40..48].copy_from_slice(&[0xe9, 0x0a, 0x1c, 0x00, 0x1f, 0xbe, 0x76, 0xc8]);
    v
}

/// A Dubbo 2 request or response frame around `body`.
fn dubbo(request: bool, id: u64, body: &[u8]) -> Vec<u8> {
    let mut v = vec![
        0xda,
        0xbb,
        if request { 0xc2 } else { 0x02 },
        if request { 0 } else { 20 },
    ];
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

// ------------------------------------------------------------------ link-layer frames

/// An ARP who-has request, broadcast.
fn arp_request(sender: &str, target: &str) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&build::SRC_MAC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&build::SRC_MAC);
    f.extend(addr_bytes(ip(sender)));
    f.extend_from_slice(&[0; 6]);
    f.extend(addr_bytes(ip(target)));
    f
}

/// An LLDP advertisement from the top-of-rack switch.
fn lldp(system: &str, port: &str) -> Vec<u8> {
    let mut f = vec![
        0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e, 0x02, 0x00, 0x00, 0x00, 0x00, 0xfe, 0x88, 0xcc,
    ];
    let mut tlv = |typ: u16, value: &[u8]| {
        f.extend_from_slice(&((typ << 9) | value.len() as u16).to_be_bytes());
        f.extend_from_slice(value);
    };
    tlv(1, &[4, 0x02, 0x00, 0x00, 0x00, 0x00, 0xfe]);
    tlv(2, &[&[5u8][..], port.as_bytes()].concat());
    tlv(3, &120u16.to_be_bytes());
    tlv(5, system.as_bytes());
    tlv(0, &[]);
    f.resize(f.len().max(60), 0);
    f
}

/// An IPv6 neighbour solicitation for `target`, to its solicited-node group.
fn neighbor_solicitation(src: &str, target: &str) -> Vec<u8> {
    let t = addr_bytes(ip(target));
    let group = format!("ff02::1:ff{:02x}:{:02x}{:02x}", t[13], t[14], t[15]);
    let mut body = t.clone();
    body.extend_from_slice(&[1, 1]);
    body.extend_from_slice(&build::SRC_MAC);
    let mut f = build::icmp(ip(src), ip(&group), 135, 0, [0; 4], &body);
    // 33:33 + the group's last 32 bits; hop limit 255 as RFC 4861 requires
    // (neither is covered by a checksum).
    f[..6].copy_from_slice(&[0x33, 0x33, 0xff, t[13], t[14], t[15]]);
    f[14 + 7] = 255;
    f
}

// ------------------------------------------------------------------ the captures

/// The built-in policy (config/default.toml): its 12 demo flows and every
/// other reason sgplane can give.
fn demo() -> Capture {
    let mut cap = Capture::new(
        "demo",
        vec![Replay {
            config: None,
            golden: "demo.expected.csv",
        }],
    );
    demo_tiers(&mut cap, T0);
    demo_ssh_and_ping(&mut cap, T0);
    demo_conntrack_corners(&mut cap, T0);
    demo_customers(&mut cap, T0 + SEC);
    demo_strays(&mut cap, T0);
    cap
}

fn allowed(rule: &'static str) -> [Fate; 1] {
    [Fate::Allowed(rule)]
}

/// Demo flows 1-4, 12 and 5: a customer's HTTPS request through every tier,
/// the name lookup on the way, and a web server pointed at the database.
fn demo_tiers(c: &mut Capture, t: Micros) {
    let customer = flow("203.0.113.50", 51544, "10.0.0.10", 443, 24 * MS);
    tcp_session(
        c,
        &allowed("sg-alb/ingress/0"),
        customer,
        t + 10 * MS,
        &client_hello(),
        &server_hello(),
    );
    let q = dns_query(0x5a17, "api.internal.example.", DNS_A, false);
    let dns = flow("10.0.10.11", 40512, "10.0.40.10", 53, 400);
    udp_exchange(
        c,
        &allowed("sg-resolver/ingress/0"),
        dns,
        t + 58 * MS,
        &q,
        &dns_a(&q, &["10.0.20.21"]),
    );
    let alb_web = flow("10.0.0.10", 39812, "10.0.10.11", 80, 400);
    let get = http_get("shop.example.com", "/api/orders/1042", "ELB-HTTP/2.0");
    let orders = http_response(
        "200 OK",
        "application/json",
        r#"{"order":1042,"status":"shipped"}"#,
    );
    tcp_session(
        c,
        &allowed("sg-web/ingress/0"),
        alb_web,
        t + 60 * MS,
        &get,
        &orders,
    );
    let web_app = flow("10.0.10.11", 48200, "10.0.20.21", 8080, 300);
    let api = http_get("api.internal.example", "/v1/orders/1042", "nginx/1.24");
    tcp_session(
        c,
        &allowed("sg-app/ingress/0"),
        web_app,
        t + 61 * MS,
        &api,
        &orders,
    );
    let app_db = flow("10.0.20.21", 53002, "10.0.30.31", 5432, 300);
    let (startup, auth) = (
        pg_startup("api", "shop", "orders-api"),
        pg_message(b'R', b"\0\0\0\x0aSCRAM-SHA-256\0\0"),
    );
    tcp_session(
        c,
        &allowed("sg-db/ingress/0"),
        app_db,
        t + 62 * MS,
        &startup,
        &auth,
    );
    // The common mistake: sg-db admits only sg-app.
    let web_db = flow("10.0.11.12", 45110, "10.0.30.31", 5432, 300);
    tcp_unanswered(c, &[Fate::denied(NO_RULE)], web_db, t + 200 * MS);
}

/// Demo flows 6-11: SSH from the internet (no rule), from the guest Wi-Fi
/// (explicit deny), from the office (allowed), onward from the bastion; ping
/// and ping6 from the office.
fn demo_ssh_and_ping(c: &mut Capture, t: Micros) {
    let internet = flow("203.0.113.50", 60222, "10.0.0.20", 22, 24 * MS);
    tcp_unanswered(c, &[Fate::denied(NO_RULE)], internet, t + 300 * MS);
    let guest = flow("198.51.100.230", 50110, "10.0.0.20", 22, 12 * MS);
    tcp_unanswered(
        c,
        &[Fate::denied(denied_by("sg-bastion/ingress/0"))],
        guest,
        t + 350 * MS,
    );
    let (client_banner, server_banner) = (ssh_banner("OpenSSH_9.6"), ssh_banner("OpenSSH_8.7"));
    let office = flow("198.51.100.25", 50512, "10.0.0.20", 22, 12 * MS);
    tcp_session(
        c,
        &allowed("sg-bastion/ingress/1"),
        office,
        t + 600 * MS,
        &client_banner,
        &server_banner,
    );
    let onward = flow("10.0.0.20", 41022, "10.0.10.11", 22, 300);
    tcp_session(
        c,
        &allowed("sg-web/ingress/1"),
        onward,
        t + 700 * MS,
        &client_banner,
        &server_banner,
    );
    ping(
        c,
        &allowed("sg-bastion/ingress/2"),
        ("198.51.100.25", "10.0.0.20"),
        0x1f2e,
        2,
        t + 500 * MS,
        12 * MS,
    );
    let ping6 = allowed("sg-bastion/ingress/3");
    ping(
        c,
        &ping6,
        ("2001:db8:ff00::25", "2001:db8:1234::20"),
        0x2c01,
        2,
        t + 520 * MS,
        12 * MS,
    );
}

/// Loose pick-up, ICMP errors with and without a flow, and fragments.
fn demo_conntrack_corners(c: &mut Capture, t: Micros) {
    // The API's connection pool to the database was open before the capture
    // started: its first packet is data (loose pick-up), judged by the rules.
    let pool = flow("10.0.20.21", 52870, "10.0.30.31", 5432, 300);
    let rows = [pg_message(b'C', b"SELECT 1\0"), pg_message(b'Z', b"I")].concat();
    tcp_midstream(
        c,
        &allowed("sg-db/ingress/0"),
        pool,
        t + 3 * MS,
        &pg_query("SELECT 1"),
        &rows,
    );

    // A port unreachable for a DNS query sent before the capture started: it
    // relates to no tracked flow, so the rules judge it as ICMP, and no rule
    // admits ICMP into the web tier.
    let (web, resolver) = (ip("10.0.10.11"), ip("10.0.40.10"));
    let q = dns_query(0x5a16, "api.internal.example.", DNS_A, false);
    let unreachable = build::icmp_error(
        resolver,
        web,
        3,
        3,
        &build::udp(web, resolver, 40001, 53, &q),
    );
    c.single(t + 1700, unreachable, NO_RULE);

    // NTP to the resolver while chrony restarts: the port unreachable quotes
    // an allowed flow, so it is related.
    let ntp = flow("10.0.10.11", 51823, "10.0.40.10", 123, 300);
    let query = build::udp(ntp.client, ntp.server, ntp.cport, ntp.sport, &ntp_request());
    let mut conv = c.conv(&allowed("sg-resolver/ingress/2"));
    conv.send(t + 900 * MS, true, query.clone(), None);
    conv.send_icmp_error(
        t + 900 * MS + 300,
        build::icmp_error(ntp.server, ntp.client, 3, 3, &query),
    );

    // A DNSSEC answer too big for one frame: the first fragment is the reply
    // of an allowed flow, the others follow it.
    let keys = dns_query(0x7c31, "example.com.", DNS_DNSKEY, true);
    let rdatas: Vec<Vec<u8>> = (0..13)
        .map(|i| [&[1, if i < 2 { 1 } else { 0 }, 3, 8][..], &filler(i, 260)].concat())
        .collect();
    let answer = dns_answer(&keys, DNS_DNSKEY, &rdatas);
    let dnssec = flow("10.0.0.20", 39001, "10.0.40.10", 53, 400);
    let mut conv = c.conv(&allowed("sg-resolver/ingress/0"));
    conv.send(
        t + 950 * MS,
        true,
        build::udp(
            dnssec.client,
            dnssec.server,
            dnssec.cport,
            dnssec.sport,
            &keys,
        ),
        None,
    );
    let big = build::udp(
        dnssec.server,
        dnssec.client,
        dnssec.sport,
        dnssec.cport,
        &answer,
    );
    conv.send_fragments(
        t + 950 * MS + 400,
        false,
        build::fragment_v4(&big, 1480, 0x3a5c),
    );

    // A dynamic DNS update publishing the web server's DKIM key, too big for
    // one frame: its first fragment opens the flow (judged on its ports), the
    // second follows it, the short answer is the flow's reply.
    let update = dns_update(
        0x0e5f,
        "internal.example.",
        "web-1a._domainkey.internal.example.",
        1650,
    );
    let nsupdate = flow("10.0.10.11", 35111, "10.0.40.10", 53, 400);
    let mut conv = c.conv(&allowed("sg-resolver/ingress/0"));
    let big = build::udp(
        nsupdate.client,
        nsupdate.server,
        nsupdate.cport,
        nsupdate.sport,
        &update,
    );
    conv.send_fragments(t + 970 * MS, true, build::fragment_v4(&big, 1480, 0x51f3));
    let ok = build::udp(
        nsupdate.server,
        nsupdate.client,
        nsupdate.sport,
        nsupdate.cport,
        &dns_update_ok(&update),
    );
    conv.send(t + 970 * MS + 1100, false, ok, None);
}

/// An IPv6 customer, a plain-HTTP one, and an ALB health check.
fn demo_customers(c: &mut Capture, t: Micros) {
    ipv6_customer_with_pmtud(c, t);
    let plain = flow("203.0.113.50", 51710, "10.0.1.10", 80, 24 * MS);
    let home = http_get("shop.example.com", "/", "curl/8.4.0");
    let redirect = http_response(
        "301 Moved Permanently",
        "text/html",
        "<a href=\"https://shop.example.com/\">moved</a>\n",
    );
    tcp_session(
        c,
        &allowed("sg-alb/ingress/1"),
        plain,
        t + 100 * MS,
        &home,
        &redirect,
    );
    let health = flow("10.0.1.10", 40230, "10.0.11.12", 80, 400);
    let (check, ok) = (
        http_get("10.0.11.12", "/health", "ELB-HealthChecker/2.0"),
        http_response("200 OK", "text/plain", "ok\n"),
    );
    tcp_session(
        c,
        &allowed("sg-web/ingress/0"),
        health,
        t + 150 * MS,
        &check,
        &ok,
    );
}

/// What is not a flow of the policy: link-layer chatter, a packet between two
/// addresses of no interface, a SYN-ACK backscatter of a spoofed SYN flood,
/// and a runt frame whose IPv4 total length runs past its end.
fn demo_strays(c: &mut Capture, t: Micros) {
    // A web server asks for its gateway and its IPv6 router before talking.
    c.single(t, arp_request("10.0.10.11", "10.0.10.1"), ARP);
    c.single(
        t + 900,
        neighbor_solicitation("fe80::11", "2001:db8:1234:10::1"),
        NEIGHBOR_DISCOVERY,
    );
    let stray = build::tcp(
        ip("203.0.113.50"),
        ip("192.0.2.77"),
        40404,
        80,
        SYN,
        0x1234_5678,
        0,
        b"",
    );
    c.single(t + 1212 * MS + 345, stray, UNKNOWN_ADDRESS);
    let synack = build::tcp(
        ip("203.0.113.99"),
        ip("10.0.0.10"),
        443,
        33012,
        SYN | ACK,
        0x0bad_cafe,
        0x1d2e_3f40,
        b"",
    );
    let mut conv = c.conv(&[Fate::denied_both_ways(NO_RULE, NO_RULE)]);
    conv.send(t + 1263 * MS + 101, false, synack, Some(SYN | ACK));
    c.single(
        t + 1318 * MS + 4,
        lldp("tor-use1-az1-07", "Ethernet1/12"),
        NOT_IP,
    );
    let mut runt = build::tcp(
        ip("203.0.113.50"),
        ip("10.0.0.10"),
        51999,
        443,
        SYN,
        0x0a0b_0c0d,
        0,
        b"",
    );
    runt.truncate(40);
    c.single(t + 1407 * MS + 250, runt, MALFORMED);
}

/// A customer on IPv6 behind a 1280-byte tunnel: the ALB's ServerHello is too
/// big, a router on the way says so (related: it quotes the flow), the ALB
/// sends it again in two segments.
fn ipv6_customer_with_pmtud(cap: &mut Capture, t: Micros) {
    let v6 = flow(
        "2001:db8:beef::50",
        51700,
        "2001:db8:1234::10",
        443,
        26 * MS,
    );
    let router = ip("2001:db8:beef:ff::1");
    let (r, hello) = (v6.rtt, server_hello());
    let mut s = TcpConv::new(cap, &allowed("sg-alb/ingress/0"), v6);
    s.client(t, SYN, b"");
    s.server(t + r, SYN | ACK, b"");
    s.client(t + r + GAP, ACK, b"");
    s.client(t + r + 2 * GAP, PSH | ACK, &client_hello());
    let answered = t + 2 * r + 2 * GAP + 2 * MS;
    let seq = s.sseq;
    let too_big = s.server(answered, PSH | ACK, &hello);
    // ICMPv6 Packet Too Big: the MTU, then as much of the packet as fits in 1280 bytes.
    let quoted = &too_big[14..14 + 1280 - 48];
    let ptb = build::icmp(router, v6.server, 2, 0, 1280u32.to_be_bytes(), quoted);
    let back = answered + 9 * MS;
    s.conv.send_icmp_error(back, ptb);
    s.sseq = seq;
    let mss = 1280 - 60;
    s.server(back + 80, ACK, &hello[..mss]);
    s.server(back + 80 + GAP, PSH | ACK, &hello[mss..]);
    let acked = back + 80 + r;
    s.client(acked, ACK, b"");
    s.client(acked + 300, FIN | ACK, b"");
    s.server(acked + 300 + r, FIN | ACK, b"");
    s.client(acked + 300 + r + GAP, ACK, b"");
}

/// config/aws-default-sg.toml (broken) and -fixed.toml: the same traffic,
/// recorded upstream of the filter across the fix, judged by both.
fn aws_default_sg() -> Capture {
    let mut cap = Capture::new(
        "aws-default-sg",
        vec![
            Replay {
                config: Some("aws-default-sg"),
                golden: "aws-default-sg.expected.csv",
            },
            Replay {
                config: Some("aws-default-sg-fixed"),
                golden: "aws-default-sg-fixed.expected.csv",
            },
        ],
    );
    let c = &mut cap;
    let t = T0;
    let https = [
        Fate::Allowed("sg-public/ingress/0"),
        Fate::Allowed("sg-public/ingress/0"),
    ];
    // Inside the VPC: no rule in the broken file, in either direction (the
    // reply as a new flow meets sg-public's "443 from the office" too);
    // sg-default/ingress/0 once every tier is a member of sg-default.
    let member = [
        Fate::denied_both_ways(NO_RULE, NO_RULE),
        Fate::Allowed("sg-default/ingress/0"),
    ];
    // The office straight to the instance: denied before and after.
    let bypass = [Fate::denied(NO_RULE), Fate::denied(NO_RULE)];
    let health = http_get("10.0.10.20", "/up", "ELB-HealthChecker/2.0");
    let up = http_response(
        "200 OK",
        "text/html",
        "<html><body style=\"background-color: green\"></body></html>",
    );

    // Before the fix: the office reaches the ALB; health checks from both ALB
    // nodes and Rails' connection to the database are never answered.
    tcp_session(
        c,
        &https,
        flow("198.51.100.7", 52000, "10.0.0.10", 443, 9 * MS),
        t,
        &client_hello(),
        &server_hello(),
    );
    tcp_unanswered(
        c,
        &member,
        flow("10.0.0.10", 41000, "10.0.10.20", 80, 400),
        t + 40 * MS,
    );
    tcp_unanswered(
        c,
        &member,
        flow("10.0.1.10", 41100, "10.0.10.20", 80, 500),
        t + 45 * MS,
    );
    tcp_unanswered(
        c,
        &member,
        flow("10.0.10.20", 50000, "10.0.20.30", 5432, 300),
        t + 300 * MS,
    );
    tcp_unanswered(
        c,
        &bypass,
        flow("198.51.100.7", 52010, "10.0.10.20", 80, 9 * MS),
        t + 1500 * MS,
    );

    // sg-default is attached at t+20 s; the same flows now complete.
    let t = T0 + 20 * SEC;
    tcp_session(
        c,
        &member,
        flow("10.0.0.10", 41200, "10.0.10.20", 80, 400),
        t,
        &health,
        &up,
    );
    tcp_session(
        c,
        &member,
        flow("10.0.1.10", 41210, "10.0.10.20", 80, 500),
        t + 5 * MS,
        &health,
        &up,
    );
    let startup = pg_startup("rails", "rails_production", "puma: cluster worker 0");
    let sasl = pg_message(b'R', b"\0\0\0\x0aSCRAM-SHA-256\0\0");
    tcp_session(
        c,
        &member,
        flow("10.0.10.20", 50010, "10.0.20.30", 5432, 300),
        t + 200 * MS,
        &startup,
        &sasl,
    );
    // A user's page: office -> ALB, then the ALB forwards it to the instance.
    let page = http_get("app.example.com", "/dashboard", "Mozilla/5.0");
    let html = http_response(
        "200 OK",
        "text/html; charset=utf-8",
        "<!DOCTYPE html><title>Dashboard</title>\n",
    );
    tcp_session(
        c,
        &https,
        flow("198.51.100.7", 52020, "10.0.0.10", 443, 9 * MS),
        t + 500 * MS,
        &client_hello(),
        &server_hello(),
    );
    tcp_session_think(
        c,
        &member,
        flow("10.0.0.10", 41300, "10.0.10.20", 80, 400),
        t + 520 * MS,
        &page,
        &html,
        35 * MS,
    );
    tcp_unanswered(
        c,
        &bypass,
        flow("198.51.100.7", 52030, "10.0.10.20", 80, 9 * MS),
        t + 2 * SEC,
    );
    cap
}

/// config/ack-cluster.toml: a basic-SG cluster and a least-privilege one.
fn ack_cluster() -> Capture {
    let mut cap = Capture::new(
        "ack-cluster",
        vec![Replay {
            config: Some("ack-cluster"),
            golden: "ack-cluster.expected.csv",
        }],
    );
    let c = &mut cap;
    let t = T0;

    // prod-basic: node -> node on anything, pods -> nodes, the internet pings.
    let n2n = flow("192.168.0.10", 43120, "192.168.0.11", 10250, 200);
    tcp_session(
        c,
        &allowed("sg-ack-basic/intra_group"),
        n2n,
        t,
        &client_hello(),
        &server_hello(),
    );
    let pod = flow("172.20.1.5", 38044, "192.168.0.11", 10250, 250);
    tcp_session(
        c,
        &allowed("sg-ack-basic/ingress/1"),
        pod,
        t + 30 * MS,
        &client_hello(),
        &server_hello(),
    );
    ping(
        c,
        &allowed("sg-ack-basic/ingress/0"),
        ("203.0.113.7", "192.168.0.10"),
        0x0d11,
        2,
        t + 100 * MS,
        31 * MS,
    );
    tcp_unanswered(
        c,
        &[Fate::denied(NO_RULE)],
        flow("203.0.113.7", 58122, "192.168.0.10", 22, 31 * MS),
        t + 150 * MS,
    );
    let q = dns_query(0x41c2, "registry-1.docker.io.", DNS_A, false);
    let google = flow("192.168.0.10", 45873, "8.8.8.8", 53, 3 * MS);
    udp_exchange(
        c,
        &allowed("sg-ack-basic/egress/0"),
        google,
        t + 200 * MS,
        &q,
        &dns_a(&q, &["54.236.113.205"]),
    );

    // prod-ent: only the listed ports, node -> node included.
    let ent = flow("192.168.2.10", 51200, "192.168.2.11", 10250, 200);
    tcp_session(
        c,
        &allowed("sg-ack-enterprise/ingress/3"),
        ent,
        t + 400 * MS,
        &client_hello(),
        &server_hello(),
    );
    let ssh = [Fate::denied(denied_by("sg-ack-enterprise/egress/5"))];
    tcp_unanswered(
        c,
        &ssh,
        flow("192.168.2.10", 51210, "192.168.2.11", 22, 200),
        t + 420 * MS,
    );
    let api_kubelet = flow("192.168.2.250", 60412, "192.168.2.11", 10250, 200);
    tcp_session(
        c,
        &allowed("sg-ack-enterprise/ingress/3"),
        api_kubelet,
        t + 450 * MS,
        &client_hello(),
        &server_hello(),
    );
    let node_api = flow("192.168.2.10", 51230, "192.168.2.250", 6443, 200);
    tcp_session(
        c,
        &allowed("sg-ack-enterprise/ingress/6"),
        node_api,
        t + 480 * MS,
        &client_hello(),
        &server_hello(),
    );
    ping(
        c,
        &allowed("sg-ack-enterprise/ingress/2"),
        ("192.168.2.10", "192.168.2.11"),
        0x0e21,
        1,
        t + 520 * MS,
        200,
    );
    let q = dns_query(
        0x1a2b,
        "kubernetes.default.svc.cluster.local.",
        DNS_A,
        false,
    );
    let coredns = flow("172.22.3.4", 42213, "192.168.2.11", 53, 250);
    udp_exchange(
        c,
        &allowed("sg-ack-enterprise/ingress/0"),
        coredns,
        t + 550 * MS,
        &q,
        &dns_a(&q, &["172.21.0.1"]),
    );
    let q = dns_query(
        0x2b3c,
        "registry-vpc.cn-hangzhou.aliyuncs.com.",
        DNS_A,
        false,
    );
    let vpc_dns = flow("192.168.2.10", 40871, "100.100.2.136", 53, 500);
    udp_exchange(
        c,
        &allowed("sg-ack-enterprise/egress/0"),
        vpc_dns,
        t + 560 * MS,
        &q,
        &dns_a(&q, &["100.103.7.102"]),
    );
    // A node's resolv.conf pointing at 8.8.8.8: the query and its retry 5 s
    // later hit the priority-100 deny.
    let q = dns_query(0x3c4d, "registry-1.docker.io.", DNS_A, false);
    let mut conv = c.conv(&[Fate::denied(denied_by("sg-ack-enterprise/egress/5"))]);
    for after in [0, 5 * SEC] {
        conv.send(
            t + 600 * MS + after,
            true,
            build::udp(ip("192.168.2.10"), ip("8.8.8.8"), 40888, 53, &q),
            None,
        );
    }
    // The other cluster's pod tries the enterprise kubelet.
    tcp_unanswered(
        c,
        &[Fate::denied(NO_RULE)],
        flow("172.20.1.5", 38050, "192.168.2.11", 10250, 250),
        t + 700 * MS,
    );
    cap
}

/// config/mse-gateway.toml: the gateway's authorised port 8080 works, the
/// redeployed service on 8081 does not, pod -> pod on 8081 does.
fn mse_gateway() -> Capture {
    let mut cap = Capture::new(
        "mse-gateway",
        vec![Replay {
            config: Some("mse-gateway"),
            golden: "mse-gateway.expected.csv",
        }],
    );
    let c = &mut cap;
    let t = T0;
    let client_tls = allowed("sg-mse-gw-managed/ingress/1");
    let order = http_get("order-service.prod.svc", "/api/orders?user=88", "envoy");
    let orders = http_response(
        "200 OK",
        "application/json",
        r#"{"orders":[{"id":7001,"total":"129.00"}]}"#,
    );

    // Before the redeploy: client -> gateway -> order-service pod on 8080.
    let client = flow("203.0.113.80", 61001, "192.168.100.11", 443, 28 * MS);
    tcp_session(c, &client_tls, client, t, &client_hello(), &server_hello());
    let gw_pod = flow("192.168.100.11", 42001, "192.168.64.21", 8080, 200);
    tcp_session(
        c,
        &allowed("sg-mse-auth/ingress/0"),
        gw_pod,
        t + 60 * MS,
        &order,
        &orders,
    );
    let http = flow("203.0.113.80", 61005, "192.168.100.11", 80, 28 * MS);
    let moved = http_response(
        "301 Moved Permanently",
        "text/plain",
        "https://shop.example.cn/\n",
    );
    tcp_session(
        c,
        &allowed("sg-mse-gw-managed/ingress/0"),
        http,
        t + 100 * MS,
        &http_get("shop.example.cn", "/", "curl/8.4.0"),
        &moved,
    );
    // Dubbo from the second gateway node to inventory-service.
    let dubbo_call = dubbo(
        true,
        1,
        b"\x052.0.2\x30\x2ecom.example.inventory.InventoryService\x051.0.0\x05stock",
    );
    let dubbo_ret = dubbo(false, 1, b"\x91\xe1\x03\x2a");
    let inv = flow("192.168.101.11", 43010, "192.168.64.31", 20880, 250);
    tcp_session(
        c,
        &allowed("sg-mse-auth/ingress/1"),
        inv,
        t + 150 * MS,
        &dubbo_call,
        &dubbo_ret,
    );

    // order-service now listens on 8081: a client's request reaches the
    // gateway, the gateway's connection to the pod is never answered (its 1 s
    // connect timeout ends the client's request with a 503), the SYN is
    // retransmitted by the kernel all the same.
    let t = T0 + 10 * SEC;
    let client = flow("203.0.113.80", 61020, "192.168.100.11", 443, 28 * MS);
    tcp_session_think(
        c,
        &client_tls,
        client,
        t,
        &client_hello(),
        &server_hello(),
        1005 * MS,
    );
    tcp_unanswered(
        c,
        &[Fate::denied(NO_RULE)],
        flow("192.168.100.11", 42020, "192.168.64.21", 8081, 200),
        t + 60 * MS,
    );
    // Debugging: the gateway can ping the pod (cluster SG: ICMP from anywhere)...
    ping(
        c,
        &allowed("sg-ack-prod/ingress/0"),
        ("192.168.100.11", "192.168.64.21"),
        0x4d3e,
        2,
        t + 5 * SEC,
        200,
    );
    // ...and inside the cluster 8081 works (intra_group), so the gateway is blamed.
    let pod_pod = flow("192.168.64.31", 47711, "192.168.64.21", 8081, 150);
    let order8081 = http_get(
        "order-service.prod.svc:8081",
        "/api/orders?user=88",
        "inventory-service/1.4",
    );
    tcp_session(
        c,
        &allowed("sg-ack-prod/intra_group"),
        pod_pod,
        t + 6 * SEC,
        &order8081,
        &orders,
    );
    // Someone tries SSH from a gateway node to the worker: no rule.
    tcp_unanswered(
        c,
        &[Fate::denied(NO_RULE)],
        flow("192.168.100.11", 42030, "192.168.1.20", 22, 200),
        t + 7 * SEC,
    );
    cap
}

/// config/privatelink-nlb.toml: consumer -> endpoint -> NLB -> targets, and
/// the three ways around it that the rules close.
fn privatelink_nlb() -> Capture {
    let mut cap = Capture::new(
        "privatelink-nlb",
        vec![Replay {
            config: Some("privatelink-nlb"),
            golden: "privatelink-nlb.expected.csv",
        }],
    );
    let c = &mut cap;
    let t = T0;
    let no_rule = [Fate::denied(NO_RULE)];
    let order = http_get("orders.internal", "/v2/orders/5521", "checkout/3.2");
    let body = http_response(
        "200 OK",
        "application/json",
        r#"{"id":5521,"state":"paid"}"#,
    );
    let health = http_get("10.30.10.21", "/healthz", "ELB-HealthChecker/2.0");
    let ok = http_response("200 OK", "text/plain", "ok\n");
    let to_targets = allowed("sg-orders-app/ingress/0");

    // NLB health checks of both targets from both NLB nodes.
    tcp_session(
        c,
        &to_targets,
        flow("10.30.1.50", 30101, "10.30.10.21", 80, 200),
        t,
        &health,
        &ok,
    );
    tcp_session(
        c,
        &to_targets,
        flow("10.30.1.50", 30102, "10.30.11.22", 80, 250),
        t + 3 * MS,
        &health,
        &ok,
    );
    tcp_session(
        c,
        &to_targets,
        flow("10.30.2.50", 30201, "10.30.10.21", 80, 300),
        t + 6 * MS,
        &health,
        &ok,
    );
    tcp_session(
        c,
        &to_targets,
        flow("10.30.2.50", 30202, "10.30.11.22", 80, 250),
        t + 9 * MS,
        &health,
        &ok,
    );

    // HTTPS through AZ a, hop by hop; the NLB's TLS listener forwards plain HTTP.
    let t = T0 + 100 * MS;
    let hop1 = flow("10.20.1.15", 49152, "10.20.1.100", 443, 150);
    tcp_session_think(
        c,
        &allowed("sg-vpce-orders/ingress/0"),
        hop1,
        t,
        &client_hello(),
        &server_hello(),
        4 * MS,
    );
    let hop2 = flow("10.20.1.100", 15001, "10.30.1.50", 443, 600);
    tcp_session_think(
        c,
        &allowed("sg-nlb-orders/ingress/0"),
        hop2,
        t + 400,
        &client_hello(),
        &server_hello(),
        2500,
    );
    let hop3 = flow("10.30.1.50", 30110, "10.30.10.21", 80, 200);
    tcp_session(c, &to_targets, hop3, t + 2 * MS, &order, &body);

    // HTTP through AZ b.
    let t = T0 + 300 * MS;
    let hop1 = flow("10.20.1.15", 49160, "10.20.3.100", 80, 900);
    tcp_session_think(
        c,
        &allowed("sg-vpce-orders/ingress/1"),
        hop1,
        t,
        &order,
        &body,
        5 * MS,
    );
    let hop2 = flow("10.20.3.100", 15002, "10.30.2.50", 80, 700);
    tcp_session_think(
        c,
        &allowed("sg-nlb-orders/ingress/1"),
        hop2,
        t + 1100,
        &order,
        &body,
        3 * MS,
    );
    let hop3 = flow("10.30.2.50", 30210, "10.30.11.22", 80, 250);
    tcp_session(c, &to_targets, hop3, t + 2 * MS, &order, &body);

    // Around the NLB: the consumer straight to a target (its own egress
    // blocks), the batch host to the endpoint (not in sg-consumer-app), and a
    // target group registered on 8080 (the NLB's egress allows only 80).
    tcp_unanswered(
        c,
        &no_rule,
        flow("10.20.1.15", 49170, "10.30.10.21", 80, 1000),
        T0 + 500 * MS,
    );
    tcp_unanswered(
        c,
        &no_rule,
        flow("10.20.2.40", 55001, "10.20.1.100", 443, 150),
        T0 + 600 * MS,
    );
    tcp_unanswered(
        c,
        &no_rule,
        flow("10.30.1.50", 30120, "10.30.10.21", 8080, 200),
        T0 + 700 * MS,
    );
    cap
}

// ------------------------------------------------------------------ main

const README_HEAD: &str = "# Captures

The project's own captures, with the verdict every packet must get. The
captures listed below (the files at the top of this directory) are all
synthetic: written by `examples/gen_pcaps.rs` from the stories in the
policies' header comments, with documentation and private address ranges.
None of them contains third-party data. (Subdirectories, if any, are not
generated and have their own provenance.)

Regenerate (byte-for-byte reproducible: fixed timestamps from
1700000000.000000, sequence numbers derived from the flow, no randomness):

    cargo run --example gen_pcaps

Check (replays every capture with sgplane and compares with the golden files):

    cargo test --test replay_scenarios

Each `NAME.expected.csv` has the columns `index,verdict,reason,rule`, one line
per packet. The generator writes each line next to the packet it builds, from
what the packet is in the story and SPEC §2 (a new flow's first packet and the
rule that decides it, a reply of a tracked flow, a SYN-ACK nobody asked for…),
never by running sgplane: a mismatch is a bug in the engine or in the story,
to be understood, not re-recorded. The files are pcap with microsecond
timestamps, little-endian, link type Ethernet.

Replay one yourself:

    sgplane replay pcaps/demo.pcap --verdicts -     # built-in policy, JSON lines on stdout
    sgplane -c config/ack-cluster.toml replay pcaps/ack-cluster.pcap --verdicts out.jsonl

";

struct Written {
    name: &'static str,
    packets: usize,
    replays: Vec<(Option<&'static str>, &'static str)>,
}

fn readme(written: &[Written]) -> String {
    let mut s = String::from(README_HEAD);
    s.push_str("| capture | packets | policy | golden |\n|---|---|---|---|\n");
    for w in written {
        for (config, golden) in &w.replays {
            let policy = config.map_or("built-in (`config/default.toml`)".to_string(), |c| {
                format!("`config/{c}.toml`")
            });
            let _ = writeln!(
                s,
                "| `{}.pcap` | {} | {policy} | `{golden}` |",
                w.name, w.packets
            );
        }
    }
    s.push_str(README_STORIES);
    s
}

const README_STORIES: &str = "
## What each capture shows

**demo.pcap** (built-in policy).

- The 12 demo flows of `config/default.toml`: a customer's HTTPS request
  through ALB -> web -> app -> database (full TCP sessions); the web server
  pointed straight at the database (SYN and two retransmissions, no-rule); SSH
  from the internet (no-rule), from the office guest Wi-Fi (denied by
  sg-bastion/ingress/0), from the office (allowed) and onward from the
  bastion; ping and ping6 from the office; a DNS query and its answer.
- More customers: one on IPv6 behind a 1280-byte tunnel (the ALB's
  ServerHello draws an ICMPv6 Packet Too Big, related, and is sent again in
  two segments) and one on plain HTTP, redirected; an ALB health check.
- Conntrack corner cases: a database pool connection already open when the
  capture starts (loose pick-up: its first packet is data, decided by
  sg-db/ingress/0); an NTP query answered by port unreachable (related); a
  DNSSEC answer in three IPv4 fragments (the first an established reply, the
  others fragment); a dynamic DNS update in two fragments (the first decided
  by sg-resolver/ingress/0, the second fragment); a SYN-ACK backscatter
  nobody asked for (invalid); a port unreachable quoting a query sent before
  the capture started (not related to anything: no rule admits it).
- Everything else: an ARP request (arp), an IPv6 neighbour solicitation
  (neighbor-discovery), the switch's LLDP (not-ip), a runt frame whose IPv4
  length runs past its end (malformed), a packet between two addresses of no
  interface (unknown-address).

**aws-default-sg.pcap** (`config/aws-default-sg.toml` and
`config/aws-default-sg-fixed.toml`). Recorded upstream of the filter, across
the fix. First 20 s: the office reaches the ALB on 443; the ALB's health checks
to the Rails instance and Rails' connection to RDS get no answer (SYN and
retransmissions); the office tries the instance directly. Then sg-default is
attached and the same flows complete: health checks, Rails -> PostgreSQL, a
user's page through the ALB. Against the broken policy every packet inside the
VPC is denied (no-rule, or invalid for SYN-ACKs and FINs: no flow is ever
opened); against the fixed one they are allowed by sg-default/ingress/0 and
their replies established. The office -> instance bypass is denied by both.

**ack-cluster.pcap** (`config/ack-cluster.toml`). Basic SG: node -> node
kubelet (intra_group), pod -> node (pod CIDR rule), ping from the internet,
SSH from the internet (no-rule), a node's DNS to 8.8.8.8. Enterprise SG:
node -> node kubelet (ingress/3), node -> node SSH (denied by the explicit
priority-100 egress deny), API server -> kubelet, node -> API server, node ->
node ping, pod -> CoreDNS, the Alibaba VPC resolver (egress/0), DNS to 8.8.8.8
and its retry (egress deny), and the other cluster's pod on the kubelet
(no-rule).

**mse-gateway.pcap** (`config/mse-gateway.toml`). Clients reach the gateway on
443 and 80; the gateway reaches order-service on 8080 (sg-mse-auth/ingress/0)
and inventory-service over Dubbo on 20880. After the redeploy to 8081 a client
request gets its 503 after a second while the gateway's SYNs to the pod go
unanswered (no-rule); the gateway can still ping the pod, and pod -> pod on
8081 works (sg-ack-prod/intra_group). SSH from the gateway to the node is
denied.

**privatelink-nlb.pcap** (`config/privatelink-nlb.toml`). NLB health checks of
both targets from both NLB nodes; an HTTPS request hop by hop through AZ a
(consumer -> endpoint ENI 443, endpoint -> NLB 443, NLB -> target 80) and an
HTTP one through AZ b; then the paths the rules close: the consumer straight
to a target, the batch host to the endpoint, the NLB to a target on 8080.
";

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pcaps");
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let mut written = Vec::new();
    for cap in [
        demo(),
        aws_default_sg(),
        ack_cluster(),
        mse_gateway(),
        privatelink_nlb(),
    ] {
        let name = cap.name;
        let replays = cap.replays.iter().map(|r| (r.config, r.golden)).collect();
        let packets = cap.write(&dir);
        println!("pcaps/{name}.pcap: {packets} packets");
        written.push(Written {
            name,
            packets,
            replays,
        });
    }
    write_file(&dir.join("README.md"), readme(&written).as_bytes());
}
