//! `sgplane path --all`: the matrix agrees, pair by pair, with the single
//! path analysis (`path --from X --to Y`), and the command writes it as CSV.

use std::path::Path;
use std::process::Command;

use sgplane::path::all::{all_pairs, instance_interfaces, Cell};
use sgplane::path::{self, Query};
use sgplane::policy::{IpProto, Policy};

fn query(proto: IpProto, dport: Option<u16>, sport: Option<u16>) -> Query {
    Query {
        from: String::new(),
        to: String::new(),
        proto,
        dport,
        sport,
        icmp: (proto == IpProto::ICMP).then_some((8, 0)),
    }
}

/// Every cell of the matrix is what `analyse` says of the pair.
fn agrees(config: &str, q: &Query) -> usize {
    let (model, _) = sgplane::import::load_model(Path::new(config)).unwrap();
    let p = Policy::compile(&model).unwrap();
    let ifaces = instance_interfaces(&p);
    let m = all_pairs(&p, q, &ifaces).unwrap();
    for (s, &a) in ifaces.iter().enumerate() {
        for (d, &b) in ifaces.iter().enumerate() {
            if s == d {
                assert_eq!(m.cell(s, d), Cell::Same);
                continue;
            }
            let mut one = q.clone();
            one.from = p.interface(a).name.clone();
            one.to = p.interface(b).name.clone();
            let t = path::analyse(&p, &one).unwrap();
            let want = match t.explanations.first() {
                None if t.reachable => Cell::Reachable,
                None => panic!("blocked without a code: {}", path::render::to_text(&t)),
                Some(e) => Cell::Blocked(e.code),
            };
            assert_eq!(
                m.cell(s, d),
                want,
                "{config} {} -> {}:\n{}",
                one.from,
                one.to,
                path::render::to_text(&t)
            );
        }
    }
    ifaces.len()
}

#[test]
fn the_matrix_is_the_single_path_answer_for_every_pair() {
    let configs = [
        "config/aws-default-sg.aws",
        "config/aws-default-sg-fixed.aws",
        "config/privatelink-story.aws",
        "config/privatelink-nlb.aws",
        "tests/data/path/nacl-reply.toml",
        "tests/data/path/peering.toml",
        "tests/data/path/tgw.toml",
        "tests/data/path/overlap.toml",
        "tests/data/path/ipv6.toml",
        "tests/data/path/internet.toml",
        "tests/data/path/azure-layers.toml",
        "tests/data/azure/demo",
    ];
    let queries = [
        query(IpProto::TCP, Some(80), None),
        query(IpProto::TCP, Some(443), None),
        query(IpProto::TCP, Some(5432), Some(40000)),
        query(IpProto::UDP, Some(53), None),
        query(IpProto::ICMP, None, None),
    ];
    let mut pairs = 0;
    for c in configs {
        for q in &queries {
            let n = agrees(c, q);
            pairs += n * n.saturating_sub(1);
        }
    }
    assert!(pairs > 100, "{pairs}");
}

#[test]
fn all_writes_a_csv_matrix_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("m.csv");
    let out = Command::new(env!("CARGO_BIN_EXE_sgplane"))
        .args(["-c", "tests/data/path/nacl-reply.toml", "path", "--all"])
        .args(["--dport", "5432", "--csv"])
        .arg(&csv)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("reachable"), "{summary}");
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    let n = rows.len() - 1;
    assert!(n >= 2);
    assert!(rows.iter().all(|r| r.len() == n + 1));
    assert_eq!(rows[0][0], "source\\destination");
    for (i, row) in rows.iter().enumerate().skip(1) {
        assert_eq!(
            row[0], rows[0][i],
            "rows and columns are the same interfaces"
        );
        assert_eq!(row[i], "-");
    }
    assert!(text.contains("SUBNET_ACL_RESTRICTION"), "{text}");
    // No --from/--to needed with --all; both are needed without it.
    let out = Command::new(env!("CARGO_BIN_EXE_sgplane"))
        .args([
            "-c",
            "tests/data/path/nacl-reply.toml",
            "path",
            "--dport",
            "80",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
