use super::*;

fn default_record(line: &str) -> Entry<'_> {
    Format::default_v2().parse(line.as_bytes())
}

#[test]
fn a_default_record_is_read() {
    let e = default_record(
        "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK",
    );
    let Entry::Record(r) = e else { panic!("{e:?}") };
    assert_eq!(r.interface, Some(&b"eni-1235b8ca123456789"[..]));
    assert_eq!(r.src, "172.31.16.139".parse::<IpAddr>().unwrap());
    assert_eq!(r.dst, "172.31.16.21".parse::<IpAddr>().unwrap());
    assert_eq!(
        (r.proto, r.sport, r.dport),
        (IpProto::TCP, Some(20641), Some(22))
    );
    assert_eq!(r.start, Some(1418530010));
    assert_eq!(r.action, Action::Accept);
    assert_eq!(r.direction, None);
}

#[test]
fn nodata_and_skipdata_are_entries_of_their_own() {
    let nodata =
        "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA";
    assert_eq!(default_record(nodata), Entry::NoData);
    let skip =
        "2 123456789010 eni-11111111111111111 - - - - - - - 1431280876 1431280934 - SKIPDATA";
    assert_eq!(default_record(skip), Entry::SkipData);
}

/// Found by the `flowlog` fuzz target: a log-status of "-" (no value) was
/// read as a record, as if the format had no log-status at all.
#[test]
fn a_log_status_without_a_value_is_malformed() {
    let e = default_record(
        "2 123456789010 eni-1 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT -",
    );
    assert!(matches!(e, Entry::Malformed(_)), "{e:?}");
    // A format without the field still has records.
    let f = Format::from_log_format(
        "version interface-id srcaddr dstaddr srcport dstport protocol action",
    )
    .unwrap();
    let e = f.parse(b"2 eni-1 172.31.16.139 172.31.16.21 20641 22 6 ACCEPT");
    assert!(matches!(e, Entry::Record(_)), "{e:?}");
}

#[test]
fn icmp_has_no_ports() {
    let e = default_record(
        "2 123456789010 eni-1 203.0.113.12 172.31.16.139 0 0 1 4 336 1432917027 1432917142 REJECT OK",
    );
    let Entry::Record(r) = e else { panic!("{e:?}") };
    assert_eq!((r.proto, r.sport, r.dport), (IpProto::ICMP, None, None));
    assert_eq!(r.action, Action::Reject);
}

#[test]
fn a_custom_header_gives_the_order_and_pkt_addresses_win() {
    let header = b"${vpc-id} interface-id pkt-dstaddr action dstaddr srcaddr protocol pkt-srcaddr srcport dstport flow-direction tcp-flags";
    let f = Format::recognise(header).unwrap().unwrap();
    assert!(f.header);
    let line = b"vpc-1 eni-9 10.0.1.99 ACCEPT 10.0.1.5 10.0.2.5 6 10.0.2.77 40000 443 ingress 2";
    let Entry::Record(r) = f.parse(line) else {
        panic!()
    };
    assert_eq!(r.src, "10.0.2.77".parse::<IpAddr>().unwrap());
    assert_eq!(r.dst, "10.0.1.99".parse::<IpAddr>().unwrap());
    assert_eq!(r.direction, Some(FlowDirection::Ingress));
    assert_eq!(r.interface, Some(&b"eni-9"[..]));
    // `-` in pkt-srcaddr falls back to srcaddr.
    let line = b"vpc-1 eni-9 - ACCEPT 10.0.1.5 10.0.2.5 6 - 40000 443 egress 2";
    let Entry::Record(r) = f.parse(line) else {
        panic!()
    };
    assert_eq!(r.src, "10.0.2.5".parse::<IpAddr>().unwrap());
    assert_eq!(r.direction, Some(FlowDirection::Egress));
}

#[test]
fn a_header_missing_what_judging_needs_is_refused() {
    let r = Format::recognise(b"version interface-id srcaddr dstaddr action");
    assert_eq!(r, Some(Err(FormatError::Missing("protocol"))));
}

#[test]
fn other_first_lines_are_not_flow_logs() {
    assert_eq!(Format::recognise(b"hello world"), None);
    assert_eq!(Format::recognise(b"3 a b c d e f g h i j k l OK"), None);
    assert_eq!(Format::recognise(&[0xd4, 0xc3, 0xb2, 0xa1]), None);
}

#[test]
fn malformed_lines_say_why() {
    let f = Format::default_v2();
    assert_eq!(
        f.parse(b"2 1 eni-1 10.0.0.1"),
        Entry::Malformed(Malformed::FieldCount {
            expected: 14,
            got: 4
        })
    );
    let bad = |line: &str, field| {
        assert_eq!(
            f.parse(line.as_bytes()),
            Entry::Malformed(Malformed::Field { field }),
            "{line}"
        )
    };
    bad(
        "2 1 eni-1 10.0.0.300 10.0.0.2 1 2 6 1 1 1 1 ACCEPT OK",
        "srcaddr",
    );
    bad(
        "2 1 eni-1 10.0.0.1 10.0.0.2 1 70000 6 1 1 1 1 ACCEPT OK",
        "dstport",
    );
    bad(
        "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 tcp 1 1 1 1 ACCEPT OK",
        "protocol",
    );
    bad(
        "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1 1 ALLOW OK",
        "action",
    );
    bad(
        "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1 1 ACCEPT WHAT",
        "log-status",
    );
    bad(
        "2 1 eni-1 10.0.0.1 10.0.0.2 - - 6 1 1 1 1 ACCEPT OK",
        "srcport/dstport",
    );
    assert_eq!(f.parse(&[0xff, 0xfe]), Entry::Malformed(Malformed::NotText));
}

#[test]
fn every_truncation_of_a_record_is_malformed_or_a_record_never_a_panic() {
    let line = "2 123456789010 eni-1 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK";
    let f = Format::default_v2();
    for n in 0..line.len() {
        assert!(
            matches!(f.parse(&line.as_bytes()[..n]), Entry::Malformed(_)),
            "{n}"
        );
    }
}

fn read_all(input: impl Read + Send + 'static) -> (Format, Vec<(u64, String)>) {
    let Sniffed::FlowLog(mut r) = sniff(input).unwrap() else {
        panic!("not recognised")
    };
    let mut out = Vec::new();
    while let Some((n, e)) = r.next_entry().unwrap() {
        out.push((n, format!("{e:?}")));
    }
    (r.format().clone(), out)
}

#[test]
fn sniffing_reads_text_and_gzip_alike_with_line_numbers() {
    let text = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
                2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1 1 ACCEPT OK\n\n\
                2 1 eni-1 - - - - - - - 1 1 - NODATA\n";
    let (f, plain) = read_all(io::Cursor::new(text.as_bytes().to_vec()));
    assert!(f.header);
    assert_eq!(plain.len(), 2);
    assert_eq!(plain[0].0, 2);
    assert_eq!(plain[1], (4, "NoData".to_string()));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
    let (_, zipped) = read_all(io::Cursor::new(gz.finish().unwrap()));
    assert_eq!(zipped, plain);
}

#[test]
fn a_headerless_default_file_starts_at_its_first_record() {
    let text = "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1 1 ACCEPT OK\n2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1 1 REJECT OK";
    let (f, entries) = read_all(io::Cursor::new(text.as_bytes().to_vec()));
    assert!(!f.header);
    assert_eq!(entries.len(), 2);
    assert_eq!((entries[0].0, entries[1].0), (1, 2));
}

#[test]
fn captures_are_handed_back_whole() {
    let pcap = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    let Sniffed::Other(mut r) = sniff(io::Cursor::new(pcap.clone())).unwrap() else {
        panic!()
    };
    let mut back = Vec::new();
    r.read_to_end(&mut back).unwrap();
    assert_eq!(back, pcap);
    let pcapng = vec![0x0a, 0x0d, 0x0d, 0x0a];
    assert!(matches!(
        sniff(io::Cursor::new(pcapng)).unwrap(),
        Sniffed::Other(_)
    ));
}

#[test]
fn text_that_is_no_flow_log_is_handed_back_whole() {
    let text = b"\nthese are not the packets you are looking for\nmore\n".to_vec();
    let Sniffed::Other(mut r) = sniff(io::Cursor::new(text.clone())).unwrap() else {
        panic!()
    };
    let mut back = Vec::new();
    r.read_to_end(&mut back).unwrap();
    assert_eq!(back, text);
}

#[test]
fn quick_ipv4_parsing_agrees_with_std() {
    let cases = [
        "10.0.1.10",
        "0.0.0.0",
        "255.255.255.255",
        "256.1.1.1",
        "01.2.3.4",
        "1.2.3",
        "1.2.3.4.5",
        "1..3.4",
        "1.2.3.4 ",
        "+1.2.3.4",
        "1.2.3.-4",
        "::1",
        "2001:db8::7",
        "a.b.c.d",
        "",
        "1.2.3.0400",
        "1.2.3.04",
        "99.99.99.99",
        "1.2.3.4.",
        ".1.2.3.4",
        "1.2.3.4a",
        "1.2.3.",
        "255.255.255.2555",
        "100.200.250.255",
        "0.0.0.00",
        "1.2.3.400",
        "1.2.3.1000",
        "1.2.3.256",
        "1.2.3.260",
        "1.2.3.300",
        "1.02.3.4",
        "1.2.3:4",
    ];
    for c in cases {
        assert_eq!(super::parse_addr(c.as_bytes()), c.parse().ok(), "{c:?}");
    }
    let mut n = 1u32;
    for _ in 0..20_000 {
        n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let b = n.to_be_bytes();
        let s = format!("{}.{}.{}.{}", b[0], b[1] as u16 * 2, b[2], b[3]);
        assert_eq!(super::parse_addr(s.as_bytes()), s.parse().ok(), "{s:?}");
    }
    // Digits and dots in any order and number, up to past the longest.
    for _ in 0..100_000 {
        n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let len = (n >> 8) % 18;
        let s: String = (0..len)
            .map(|_| {
                n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                b"0123456789.....0125"[(n >> 16) as usize % 19] as char
            })
            .collect();
        assert_eq!(super::parse_addr(s.as_bytes()), s.parse().ok(), "{s:?}");
    }
}

#[test]
fn a_header_naming_a_field_twice_is_refused() {
    let r = Format::recognise(b"version log-status srcaddr dstaddr protocol action log-status");
    assert_eq!(r, Some(Err(FormatError::Duplicate("log-status".into()))));
}

#[test]
fn a_header_with_fields_not_known_is_read_past_them() {
    let header =
        b"version srcaddr next-year-field dstaddr protocol srcport dstport action log-status";
    let f = Format::recognise(header).unwrap().unwrap();
    assert_eq!(f.unknown_fields(), ["next-year-field"]);
    let Entry::Record(r) = f.parse(b"2 10.0.0.1 whatever 10.0.0.2 17 5353 53 REJECT OK") else {
        panic!()
    };
    assert_eq!(r.dst, "10.0.0.2".parse::<IpAddr>().unwrap());
    assert_eq!((r.sport, r.dport), (Some(5353), Some(53)));
    assert_eq!(r.action, Action::Reject);
    // Still all-known formats list nothing.
    let f = Format::recognise(b"srcaddr dstaddr protocol action")
        .unwrap()
        .unwrap();
    assert!(f.unknown_fields().is_empty());
}

#[test]
fn a_transit_gateway_header_is_a_flow_log_without_an_action() {
    let header = b"version resource-type account-id tgw-id tgw-attachment-id srcaddr dstaddr srcport dstport protocol packets bytes start end log-status type";
    assert_eq!(
        Format::recognise(header),
        Some(Err(FormatError::Missing("action")))
    );
}

#[test]
fn words_not_shaped_like_field_names_are_no_header() {
    // Capitals, or no addresses among the names: not a flow log's header.
    assert_eq!(
        Format::recognise(b"Version srcaddr dstaddr protocol action"),
        None
    );
    assert_eq!(Format::recognise(b"name address port"), None);
    assert_eq!(Format::recognise(b"srcaddr dstaddr x=1"), None);
}

#[test]
fn a_log_format_string_gives_the_fields_and_knows_its_header() {
    let f = Format::from_log_format("${srcaddr} ${dstaddr}  ${protocol} ${action} ${new-thing}")
        .unwrap();
    assert!(f.given && !f.header);
    assert_eq!(
        f.fields,
        ["srcaddr", "dstaddr", "protocol", "action", "new-thing"]
    );
    assert_eq!(f.unknown_fields(), ["new-thing"]);
    assert!(f.is_header(b"srcaddr dstaddr protocol action new-thing"));
    assert!(f.is_header(b"${srcaddr} ${dstaddr} ${protocol} ${action} ${new-thing}"));
    assert!(!f.is_header(b"dstaddr srcaddr protocol action new-thing"));
    assert!(!f.is_header(b"10.0.0.1 10.0.0.2 6 ACCEPT x"));
    assert_eq!(
        Format::from_log_format(" "),
        Err(FormatError::NotFieldNames)
    );
    assert_eq!(
        Format::from_log_format("${srcaddr} ${dstaddr} ${protocol}"),
        Err(FormatError::Missing("action"))
    );
}

#[test]
fn integers_read_as_str_parse_reads_them() {
    let cases = [
        "0",
        "7",
        "+7",
        "+",
        "",
        "-",
        "-0",
        "-7",
        "++7",
        "+-7",
        "007",
        "255",
        "256",
        "65535",
        "65536",
        "4294967296",
        "18446744073709551615",
        "18446744073709551616",
        "9999999999999999999",
        "+9999999999999999999",
        "00000000000000000001",
        "99999999999999999999999",
        "1a",
        "a1",
        " 1",
        "1 ",
        "1.0",
        "\u{663}",
    ];
    for c in cases {
        let b = c.as_bytes();
        let max8 = u64::from(u8::MAX);
        let max16 = u64::from(u16::MAX);
        assert_eq!(
            super::parse_uint(b, max8),
            c.parse::<u8>().ok().map(u64::from),
            "{c:?} u8"
        );
        assert_eq!(
            super::parse_uint(b, max16),
            c.parse::<u16>().ok().map(u64::from),
            "{c:?} u16"
        );
        assert_eq!(
            super::parse_uint(b, u64::MAX),
            c.parse::<u64>().ok(),
            "{c:?} u64"
        );
    }
    // Digits of every length to 21, one byte now and then not a digit (the
    // bytes next to the digits, and ones that carry), at every place of
    // the eight-digit chunks.
    for len in 1..=21usize {
        for at in 0..=len {
            for odd in [b'/', b':', b'?', b'@', 0x7f, 0xf9, 0xfa, 0xff, b'0' + 10] {
                let mut b: Vec<u8> = (0..len)
                    .map(|i| b"9876543210"[(i * 7 + len) % 10])
                    .collect();
                if at < len {
                    b[at] = odd;
                }
                let want = std::str::from_utf8(&b)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok());
                assert_eq!(super::parse_uint(&b, u64::MAX), want, "{b:?}");
            }
        }
    }
}

/// Lines with tabs, other control bytes, DEL and non-ASCII words are split
/// as `split_ascii_whitespace` splits them, whichever way the reader takes.
#[test]
fn lines_split_as_split_ascii_whitespace_does() {
    let f = Format::default_v2();
    let base = "2 123456789010 eni-web 10.0.0.1 10.0.1.10 40000 443 6 3 180 1700000000 1700000060 ACCEPT OK";
    let words: Vec<&str> = base.split(' ').collect();
    let seps = [
        " ", "  ", "\t", " \t ", "\r", "\x0c", "\x0b", "\x00", "\x7f",
    ];
    let mut n = 5u32;
    for _ in 0..4000 {
        n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let mut line = String::new();
        for (k, w) in words.iter().enumerate() {
            if k > 0 {
                line.push_str(seps[(n as usize >> (k % 16)) % seps.len()]);
            }
            // Now and then a word of another shape in a field read past.
            match (k, (n >> 20) % 7) {
                (1, 0) => line.push_str("12345é"),
                (9, 1) => line.push_str("1\x7f8"),
                (11, 2) => line.push_str("17000000600000000"),
                _ => line.push_str(w),
            }
        }
        let got = f.parse(line.as_bytes());
        let split: Vec<&str> = line.split_ascii_whitespace().collect();
        if split.len() == 14 {
            let Entry::Record(r) = got else {
                panic!("{line:?}: {got:?}")
            };
            assert_eq!(r.src, "10.0.0.1".parse::<std::net::IpAddr>().unwrap());
            assert_eq!(r.dport, Some(443));
        } else {
            assert_eq!(
                got,
                Entry::Malformed(Malformed::FieldCount {
                    expected: 14,
                    got: split.len()
                }),
                "{line:?}"
            );
        }
    }
    assert!(matches!(
        f.parse(b"2 12\xff 3"),
        Entry::Malformed(Malformed::NotText)
    ));
}

/// The eight-bytes-at-a-time split gives the words `split_ascii_whitespace`
/// gives, wherever they start and end in the eight-byte chunks: words of
/// every length, runs of spaces, spaces first and last, and lines of other
/// bytes refused (for the byte-wise split).
#[test]
fn spaced_words_split_at_any_place_in_a_chunk() {
    let names = [
        "interface-id",
        "srcaddr",
        "dstaddr",
        "pkt-srcaddr",
        "pkt-dstaddr",
        "srcport",
        "dstport",
        "protocol",
        "start",
        "action",
        "log-status",
        "flow-direction",
    ];
    let f = Format::from_names(names.iter().copied()).unwrap();
    let chars = b"abc-.:019XZ~!\x7f";
    let mut n = 11u64;
    let mut next = |m: u64| {
        n = n
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (n >> 33) % m
    };
    for _ in 0..20_000 {
        let mut line = Vec::new();
        let words = next(14);
        for _ in 0..words {
            line.extend(std::iter::repeat_n(b' ', next(4) as usize));
            for _ in 0..1 + next(19) {
                line.push(chars[next(chars.len() as u64) as usize]);
            }
        }
        line.extend(std::iter::repeat_n(b' ', next(3) as usize));
        let other = next(8) == 0 && !line.is_empty();
        if other {
            let at = next(line.len() as u64) as usize;
            line[at] = [b'\t', 0, 0x80, b'\r', 0x1f, 0xff][next(6) as usize];
        }
        let mut raw = Fields::default();
        let got = f.split_spaced(&line, &mut raw);
        if other {
            assert_eq!(got, None, "{line:?}");
            continue;
        }
        let want: Vec<&[u8]> = line
            .split(|&b| b == b' ')
            .filter(|w| !w.is_empty())
            .collect();
        assert_eq!(got, Some(want.len()), "{line:?}");
        for (i, w) in want.iter().enumerate().take(names.len()) {
            let c = Column::of(names[i]);
            let expect = if *w == b"-" && c != Column::LogStatus {
                Value::Absent
            } else {
                Value::Text(w)
            };
            assert_eq!(raw.0[c as usize], expect, "{line:?} word {i}");
        }
    }
}
