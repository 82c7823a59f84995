#!/usr/bin/env python3
"""Builds the seed corpora of sgplane's fuzz targets under fuzz/corpus/<target>/.

Frames come from the tcpdump test captures in pcaps/tcpdump-tests (or
shared/pcaps/tcpdump-tests); policies from config/*.toml. The corpus directory is not committed:
run this (via seed.sh) before fuzzing. Only the standard library is used.

Input layouts (see fuzz/src/invariants.rs and fuzz/src/scenario.rs):
  parse    link index, flags, orig_len - len (u16 LE), frame
  engine   mode byte, then per frame: link index, dt, len (u16 LE), extra (u16 LE), frame
  geneve   the UDP payload of packets to port 6081
  capture  whole capture files
  policy   policy files
  import_aws, import_alibaba, import_azure  JSON documents joined by NUL bytes
  import_terraform  one `terraform show -json` document
  flowlog  flow-log text (a header line or the default format)
  flowlog_parquet  8 bytes of edits (zero: none), then flow-log text to write as Parquet
  import_aws_structured, engine_nacl_tracking, tunnels, path, import_json_edits  bytes decoded
           with `arbitrary` (fuzz/src/*.rs): a few fixed pseudo-random strings
"""

import hashlib
import os
import struct
import sys

# pcap LINKTYPE -> index in invariants::LINK_TYPES
LINK_INDEX = {1: 0, 0: 1, 108: 2, 113: 3, 276: 4, 12: 5, 14: 5, 101: 5, 228: 6, 229: 7, 9: 8, 50: 8, 104: 9}


def read_capture(path):
    """Yields (linktype, orig_len, data) for each packet; stops quietly at anything odd."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 24:
        return
    magic = buf[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        linktype = struct.unpack(e + "I", buf[20:24])[0] & 0x0FFFFFFF
        off = 24
        while off + 16 <= len(buf):
            _, _, incl, orig = struct.unpack(e + "IIII", buf[off : off + 16])
            data = buf[off + 16 : off + 16 + incl]
            if len(data) < incl:
                return
            yield linktype, max(orig, incl), data
            off += 16 + incl
    elif magic == b"\x0a\x0d\x0d\x0a":
        e = "<"
        links = []
        off = 0
        while off + 12 <= len(buf):
            if buf[off : off + 4] == b"\x0a\x0d\x0d\x0a":
                e = ">" if buf[off + 8 : off + 12] == b"\x1a\x2b\x3c\x4d" else "<"
                links = []
            btype, blen = struct.unpack(e + "II", buf[off : off + 8])
            if blen < 12 or off + blen > len(buf):
                return
            body = buf[off : off + blen]
            if btype == 1 and blen >= 20:
                links.append(struct.unpack(e + "H", body[8:10])[0])
            elif btype == 6 and blen >= 32:
                iface, _, _, cap, orig = struct.unpack(e + "IIIII", body[8:28])
                if iface < len(links):
                    yield links[iface], max(orig, cap), body[28 : 28 + cap]
            elif btype == 3 and blen >= 16 and links:
                orig = struct.unpack(e + "I", body[8:12])[0]
                cap = min(orig, blen - 16)
                yield links[0], max(orig, cap), body[12 : 12 + cap]
            off += blen


def udp_payload_to(frame, linktype, port):
    """The UDP payload of an Ethernet/raw IPv4 or IPv6 frame to `port`, if it is one."""
    off = 0
    if linktype == 1:
        if len(frame) < 14:
            return None
        et, off = struct.unpack(">H", frame[12:14])[0], 14
        while et in (0x8100, 0x88A8) and len(frame) >= off + 4:
            et, off = struct.unpack(">H", frame[off + 2 : off + 4])[0], off + 4
    elif linktype not in (12, 14, 101):
        return None
    ip = frame[off:]
    if len(ip) >= 20 and ip[0] >> 4 == 4:
        hl, proto = (ip[0] & 15) * 4, ip[9]
    elif len(ip) >= 40 and ip[0] >> 4 == 6:
        hl, proto = 40, ip[6]
    else:
        return None
    udp = ip[hl:]
    if proto != 17 or len(udp) < 8 or struct.unpack(">H", udp[2:4])[0] != port:
        return None
    return udp[8:]


def write(directory, data):
    name = hashlib.sha1(data).hexdigest()
    path = os.path.join(directory, name)
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)
        return 1
    return 0


def main():
    fuzz = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(fuzz)
    shared = os.environ.get("SGPLANE_SHARED") or next(
        (d for d in (os.path.join(os.path.dirname(root), "shared"), "/work/shared") if os.path.isdir(d)), None
    )
    corpus = os.path.join(fuzz, "corpus")
    dirs = {
        t: os.path.join(corpus, t)
        for t in (
            "parse", "engine", "geneve", "capture", "policy", "policy_structured",
            "import_aws", "import_alibaba", "import_azure",
            "import_terraform", "flowlog", "flowlog_parquet", "import_aws_structured",
            "engine_nacl_tracking", "tunnels", "path", "import_json_edits",
        )
    }
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)
    counts = dict.fromkeys(dirs, 0)

    # policy: the config files; policy_structured: one empty edit per seed policy.
    configs = os.path.join(root, "config")
    for name in sorted(os.listdir(configs)):
        if name.endswith(".toml"):
            with open(os.path.join(configs, name), "rb") as f:
                counts["policy"] += write(dirs["policy"], f.read())
    for i in range(7):
        counts["policy_structured"] += write(dirs["policy_structured"], bytes([i]))

    # import_aws: each AWS JSON file of the snapshots and twins alone, and
    # each snapshot's files joined by NUL bytes (the target's layout).
    for base in ("examples/aws", "config", "tests/data/aws", "tests/data/terraform"):
        top = os.path.join(root, base)
        for dirpath, _, names in sorted(os.walk(top)):
            if base == "config" and ".aws" not in dirpath:
                continue
            docs = []
            for name in sorted(names):
                if name.endswith(".json"):
                    with open(os.path.join(dirpath, name), "rb") as f:
                        docs.append(f.read())
            for d in docs:
                counts["import_aws"] += write(dirs["import_aws"], d)
            if len(docs) > 1:
                counts["import_aws"] += write(dirs["import_aws"], b"\0".join(docs))

    # import_alibaba, import_azure: the twins and test data, alone and joined.
    for target, bases in (
        ("import_alibaba", ("config/ack-cluster.alibaba", "config/mse-gateway.alibaba")),
        ("import_azure", ("tests/data/azure/demo",)),
    ):
        for base in bases:
            top = os.path.join(root, base)
            docs = []
            for name in sorted(os.listdir(top)):
                if name.endswith(".json"):
                    with open(os.path.join(top, name), "rb") as f:
                        docs.append(f.read())
            for d in docs:
                counts[target] += write(dirs[target], d)
            if len(docs) > 1:
                counts[target] += write(dirs[target], b"\0".join(docs))

    # import_terraform: every `terraform show -json` document of the tree.
    for base in ("tests/data/terraform", "examples", "config"):
        for dirpath, _, names in sorted(os.walk(os.path.join(root, base))):
            for name in sorted(names):
                if name.endswith(".json"):
                    with open(os.path.join(dirpath, name), "rb") as f:
                        data = f.read()
                    if b'"format_version"' in data:
                        counts["import_terraform"] += write(dirs["import_terraform"], data)

    # ... and a small state with a module, and a plan that deletes a group.
    state = (
        b'{"format_version":"1.0","values":{"root_module":{"resources":[{"address":"aws_security_group.a",'
        b'"mode":"managed","type":"aws_security_group","name":"a","values":{"id":"sg-0a","vpc_id":"vpc-01",'
        b'"ingress":[{"protocol":"tcp","from_port":443,"to_port":443,"cidr_blocks":["0.0.0.0/0"],'
        b'"ipv6_cidr_blocks":[],"prefix_list_ids":[],"security_groups":["sg-0b"],"self":true}],"egress":[]}}],'
        b'"child_modules":[{"address":"module.net","resources":[{"address":"module.net.aws_vpc.v","mode":"managed",'
        b'"type":"aws_vpc","name":"v","values":{"id":"vpc-01","cidr_block":"10.0.0.0/16"}},'
        b'{"address":"module.net.aws_security_group_rule.r","mode":"managed","type":"aws_security_group_rule",'
        b'"name":"r","values":{"security_group_id":"sg-0a","type":"egress","protocol":"-1","from_port":0,'
        b'"to_port":0,"cidr_blocks":["10.0.0.0/8"]}}]}]}}}'
    )
    counts["import_terraform"] += write(dirs["import_terraform"], state)
    plan = (
        b'{"format_version":"1.2","planned_values":{"root_module":{"resources":[{"address":"aws_network_interface.e",'
        b'"mode":"managed","type":"aws_network_interface","name":"e","values":{"subnet_id":"subnet-01",'
        b'"private_ips":["10.0.1.10"],"security_groups":["sg-0a"]}}]}},"resource_changes":[{"address":'
        b'"aws_security_group.old","change":{"actions":["delete"],"after_unknown":{}}},{"address":'
        b'"aws_network_interface.e","change":{"actions":["create"],"after_unknown":{"id":true}}}]}'
    )
    counts["import_terraform"] += write(dirs["import_terraform"], plan)

    # flowlog: the fixtures, and each of their lines alone after its header.
    logs = os.path.join(root, "tests", "data", "flowlogs")
    for name in sorted(os.listdir(logs)):
        if name.endswith(".log"):
            with open(os.path.join(logs, name), "rb") as f:
                data = f.read()
            counts["flowlog"] += write(dirs["flowlog"], data)
            lines = data.splitlines(keepends=True)
            for line in lines[1:]:
                counts["flowlog"] += write(dirs["flowlog"], lines[0] + line)
    for extra in (
        b"2 123456789010 eni-web - - - - - - - 1700000000 1700000060 - NODATA\n",
        b"2 123456789010 eni-web - - - - - - - 1700000000 1700000060 - SKIPDATA\n",
        b"version srcaddr dstaddr srcport dstport protocol action log-status\n2 10.0.1.10 2001:db8::1 1 2 6 ACCEPT OK\n\n2 10.0.9.9 10.0.2.20 - - 47 REJECT OK\n",
        # A --log-format line, then records in it (with their header, then without).
        b"${version} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${action} ${log-status} ${flow-direction}\nversion interface-id srcaddr dstaddr srcport dstport protocol action log-status flow-direction\n5 eni-web 203.0.113.5 10.0.1.10 51000 443 6 ACCEPT OK ingress\n",
        b"${srcaddr} ${dstaddr} ${protocol} ${action} ${later-field}\n10.0.2.20 10.0.1.10 6 REJECT x\n10.0.1.10 10.0.2.20 17 ACCEPT -\n",
    ):
        counts["flowlog"] += write(dirs["flowlog"], extra)

    # flowlog_parquet: the fixtures' rows (a line of too few fields cannot
    # be a row), no edits, and the well-formed extras.
    for name in sorted(os.listdir(logs)):
        if name.endswith(".log"):
            with open(os.path.join(logs, name), "rb") as f:
                rows = [l for l in f.read().splitlines(keepends=True) if l.strip() != b"this line is not a record"]
            counts["flowlog_parquet"] += write(dirs["flowlog_parquet"], bytes(8) + b"".join(rows))
            counts["flowlog_parquet"] += write(dirs["flowlog_parquet"], bytes(8) + b"".join(rows[:2]))
    counts["flowlog_parquet"] += write(
        dirs["flowlog_parquet"],
        bytes(8) + b"version srcaddr dstaddr srcport dstport protocol action log-status\n2 10.0.1.10 2001:db8::1 1 2 6 ACCEPT OK\n\n2 10.0.9.9 10.0.2.20 - - 47 REJECT OK\n",
    )

    # import_json_edits: every snapshot unedited, then pseudo-random edits below.
    for snapshot in range(9):
        counts["import_json_edits"] += write(dirs["import_json_edits"], bytes([snapshot, 0]))

    # The structured targets: fixed pseudo-random strings of a few lengths.
    for target in ("import_aws_structured", "engine_nacl_tracking", "tunnels", "path", "import_json_edits"):
        for i, n in enumerate((16, 64, 256, 1024, 4096)):
            data = hashlib.sha256(f"{target}-{i}".encode()).digest() * (n // 32 + 1)
            counts[target] += write(dirs[target], data[:n])

    # geneve: a GWLB header with the three AWS options, and one without options.
    aws = b"".join(
        [
            b"\x01\x08\x01\x02" + struct.pack(">Q", 0x0123456789ABCDEF),
            b"\x01\x08\x02\x02" + struct.pack(">Q", 7),
            b"\x01\x08\x03\x01" + struct.pack(">I", 0xC00C1E),
        ]
    )
    inner = bytes.fromhex("450000140000000040060000c0a80001c0a80002")
    counts["geneve"] += write(dirs["geneve"], bytes([len(aws) // 4, 0, 0x08, 0x00, 0, 0, 0, 0]) + aws + inner)
    counts["geneve"] += write(dirs["geneve"], bytes([0, 0, 0x65, 0x58, 0, 0, 1, 0]) + b"\x00" * 14)

    # The project's own copy of the tcpdump captures, else shared/'s.
    candidates = [os.path.join(root, "pcaps", "tcpdump-tests")]
    if shared:
        candidates.append(os.path.join(shared, "pcaps", "tcpdump-tests"))
    pcaps = next((c for c in candidates if os.path.isdir(c)), None)
    if not pcaps or not os.path.isdir(pcaps):
        print("seed.py: no pcaps/tcpdump-tests; only policy and GENEVE seeds written", file=sys.stderr)
    else:
        files = sorted(f for f in os.listdir(pcaps) if f.endswith((".pcap", ".pcapng", ".cap")))
        sized = sorted(files, key=lambda f: os.path.getsize(os.path.join(pcaps, f)))
        # capture: the smallest files, which keep executions fast, and every pcapng among the small.
        for f in sized[:40] + [f for f in sized[:300] if f.endswith(".pcapng")][:20]:
            with open(os.path.join(pcaps, f), "rb") as fh:
                counts["capture"] += write(dirs["capture"], fh.read())
        per_file = {}
        for f in files:
            try:
                per_file[f] = [(lt, o, d) for lt, o, d in read_capture(os.path.join(pcaps, f)) if lt in LINK_INDEX]
            except (struct.error, OSError):
                continue
        # parse: round-robin over files, so every link type and protocol gets in; GENEVE files whole.
        parse_budget = 600
        for rnd in range(8):
            for f in files:
                pkts = per_file.get(f, [])
                if rnd < len(pkts) and counts["parse"] < parse_budget:
                    lt, orig, data = pkts[rnd]
                    head = bytes([LINK_INDEX[lt], 0]) + struct.pack("<H", min(orig - len(data), 0xFFFF))
                    counts["parse"] += write(dirs["parse"], head + data)
        for f in files:
            if "geneve" in f:
                for lt, orig, data in per_file.get(f, [])[:50]:
                    head = bytes([LINK_INDEX[lt], 0]) + struct.pack("<H", min(orig - len(data), 0xFFFF))
                    counts["parse"] += write(dirs["parse"], head + data)
                    payload = udp_payload_to(data, lt, 6081)
                    if payload:
                        counts["geneve"] += write(dirs["geneve"], payload)
        # engine: the first frames of a file as one sequence, 1 ms apart.
        for f in files:
            pkts = per_file.get(f, [])[:24]
            if not pkts or counts["engine"] >= 300:
                continue
            seq = bytearray([0])
            for lt, orig, data in pkts:
                data = data[:0xFFFF]
                seq += bytes([LINK_INDEX[lt], 1]) + struct.pack("<HH", len(data), min(orig - len(data), 0xFFFF)) + data
            counts["engine"] += write(dirs["engine"], bytes(seq))

    print("seed.py: " + ", ".join(f"{t} {n}" for t, n in counts.items()) + f" new seed files in {corpus}")


if __name__ == "__main__":
    main()
