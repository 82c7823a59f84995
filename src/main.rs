//! The `sgplane` command line.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use sgplane::policy::{self, Flow, IpProto, Policy, Verdict};
use signal_hook::consts::{SIGINT, SIGTERM};

/// sgplane enforces cloud security-group semantics (AWS, Alibaba Cloud, Azure,
/// OpenStack) on real traffic and tells you, flow by flow, which rule allowed or
/// blocked it.
///
/// Without -c it uses the policy built into the binary (config/default.toml).
#[derive(Parser, Debug)]
#[command(
    name = "sgplane",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(after_help = "Examples:\n  \
    sgplane check -c config/aws-default-sg.toml\n  \
    sgplane explain --src 10.0.1.10 --dst 10.0.2.20 --proto tcp --dport 80\n  \
    sgplane explain -c my-policy.toml --src 10.0.0.5 --dst 10.0.1.9 --proto icmp --json\n\n\
    Exit codes: 0 success (explain: allowed), 1 explain: denied, 2 bad usage, bad policy or unreadable input.\n\
    Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=sgplane=debug) or pass -v, -vv, -vvv.")]
struct Cli {
    /// Policy file (TOML, see the README), or a cloud's JSON (a file or a
    /// directory, imported on the fly); default: the built-in
    /// config/default.toml. `replay` takes a second -c as `--compare NEW`.
    #[arg(short, long, global = true, value_name = "FILE", action = clap::ArgAction::Append)]
    config: Vec<PathBuf>,

    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate the policy, print a summary and warnings (shadowed rules, SG
    /// references to unattached groups, ports = "0", interfaces without SGs,
    /// allow and deny overlapping at one priority).
    Check(CheckArgs),
    /// Say which verdict a new flow gets and why: the deciding rule, or for a
    /// deny every blocking interface and direction with the nearest misses.
    /// Exit 0 when allowed, 1 when denied.
    Explain(ExplainArgs),
    /// Replay a pcap or pcapng capture through the security groups: a verdict
    /// and reason for every packet, with connection tracking on capture time.
    /// Prints a summary; exit 2 if the capture is unreadable or ends early
    /// (after summarising what was read).
    Replay(ReplayArgs),
    /// Run inline as a bump in the wire: frames entering one side leave the
    /// other if the security groups allow them, in both directions. Needs root.
    Run(RunArgs),
    /// Run as a Gateway Load Balancer appliance: receive GENEVE on UDP 6081,
    /// judge the inner packets, return the allowed ones to the GWLB. Needs root.
    Gwlb(GwlbArgs),
    /// Print the policy in another system's terms.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Read a cloud's own JSON (AWS CLI `describe-…` outputs, Batfish and
    /// CloudMapper snapshots, recorded API responses, `terraform show
    /// -json`) and write it as a policy file. Files are recognised by their
    /// content; directories are read whole. What cannot be represented is
    /// listed on stderr.
    Import(ImportArgs),
    /// Whole-path reachability (SPEC §8): can a new flow from X reach Y
    /// through security groups, network ACLs (both ways), routes, load
    /// balancers and PrivateLink? Every hop with its verdict and rule; for
    /// a blocked path the first blocking hop with Reachability Analyzer's
    /// code, the nearest misses and fixes checked by running the analysis
    /// again. Exit 0 reachable, 1 not reachable, 2 bad input.
    Path(PathArgs),
}

#[derive(Args, Debug)]
struct PathArgs {
    /// Source: instance id, ENI id, Name tag, IP address (an address of no
    /// VPC is the internet), or a load balancer (its node).
    #[arg(long, value_name = "X", required_unless_present = "all")]
    from: Option<String>,
    /// Destination: instance id, ENI id, Name tag, IP address, load
    /// balancer (name, ARN, DNS name) or VPC endpoint (id, DNS name).
    #[arg(long, value_name = "Y", required_unless_present = "all")]
    to: Option<String>,
    /// Protocol: tcp, udp, icmp, icmpv6 or a number 0-255.
    #[arg(long, value_name = "P", default_value = "tcp")]
    proto: IpProto,
    /// Destination port (tcp/udp).
    #[arg(long, value_name = "N")]
    dport: Option<u16>,
    /// The client's port, which the reply's network ACLs judge; default:
    /// all of 1024-65535 must pass.
    #[arg(long, value_name = "N")]
    sport: Option<u16>,
    /// ICMP type; default 8 (echo request) for icmp, 128 for icmpv6.
    #[arg(long, value_name = "T")]
    icmp_type: Option<u8>,
    /// ICMP code; default 0.
    #[arg(long, value_name = "C")]
    icmp_code: Option<u8>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also draw the path as a standalone SVG in FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "all")]
    svg: Option<PathBuf>,
    /// Every instance interface (kind `interface`: not load balancer
    /// nodes, endpoints or NAT gateways) to every other: a CSV matrix,
    /// rows sources, columns destinations, each cell `reachable` or the
    /// blocking code; no fixes are searched. Exit 0.
    #[arg(long, conflicts_with_all = ["from", "to", "json"])]
    all: bool,
    /// With --all: write the matrix to FILE (the summary goes to stdout);
    /// default: the matrix on stdout, the summary on stderr.
    #[arg(long, value_name = "FILE", requires = "all")]
    csv: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ImportArgs {
    /// The cloud: aws, alibaba or azure.
    #[arg(value_name = "PROVIDER")]
    provider: String,
    /// Files or directories to read.
    #[arg(value_name = "PATH", required = true)]
    paths: Vec<PathBuf>,
    /// Write the policy here instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Fail (exit 2) when anything in the input cannot be represented.
    #[arg(long)]
    strict: bool,
}

#[derive(Subcommand, Debug)]
enum ExportCommand {
    /// An nftables ruleset (forward chain with conntrack, per-interface chains,
    /// sets for SG members and prefix lists) enforcing the same policy in the
    /// Linux kernel: `sgplane export nftables | nft -f -`.
    Nftables {
        /// The nftables table name.
        #[arg(long, default_value = "sgplane")]
        table: String,
    },
}

#[derive(Args, Debug)]
struct LiveArgs {
    /// Serve Prometheus metrics on ADDR:PORT (path /metrics).
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<std::net::SocketAddr>,
    /// Worker threads (default: the number of cores).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Reload the policy when its file changes (SIGHUP always reloads).
    #[arg(long)]
    watch: bool,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("sides").required(true).args(["tap", "iface"])))]
struct RunArgs {
    /// A TAP device (created if missing); give two.
    #[arg(long, value_name = "NAME", num_args = 1, action = clap::ArgAction::Append)]
    tap: Vec<String>,
    /// An existing interface (veth, physical), through AF_PACKET; give two.
    #[arg(long, value_name = "NAME", num_args = 1, action = clap::ArgAction::Append)]
    iface: Vec<String>,
    /// Write one verdict line per packet (JSON lines, or CSV if FILE ends in
    /// .csv, or Parquet if .parquet, complete once sgplane stops).
    #[arg(long, value_name = "FILE")]
    verdicts: Option<PathBuf>,
    /// Write VPC Flow Log lines: each aggregation window once the clock
    /// passes its end, the rest when stopping.
    #[arg(long, value_name = "FILE")]
    flow_log: Option<PathBuf>,
    /// Flow log aggregation interval: 60 or 600 seconds, as AWS allows.
    #[arg(long, value_name = "SECONDS", default_value = "600")]
    flow_log_interval: sgplane::output::AggregationInterval,
    /// The most flow log records held at once (what bounds its memory, about
    /// 200 bytes a record); the packets of flows past them are counted in a
    /// SKIPDATA record per window and interface, as AWS does past its capacity.
    #[arg(long, value_name = "N", default_value_t = sgplane::output::DEFAULT_MAX_RECORDS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    flow_log_max_records: usize,
    /// Read and write TAP devices one frame per system call instead of in
    /// bursts through io_uring (used anyway where io_uring is unavailable).
    #[arg(long)]
    no_io_uring: bool,
    /// How --iface sides are read and written: af-xdp (an XDP program hands
    /// frames to AF_XDP sockets; one thread), af-packet (rings and sendmmsg;
    /// --workers threads), or auto: AF_XDP where the kernel and driver allow
    /// it, else AF_PACKET, saying why.
    #[arg(long = "io", value_name = "auto|af-packet|af-xdp", default_value = "auto", value_parser = parse_iface_io)]
    iface_io: sgplane::live::inline::IfaceIo,
    /// AF_XDP: attach the XDP program natively or generically (default:
    /// native where the driver has it).
    #[arg(long, value_name = "native|generic", hide = true, value_parser = parse_xdp_attach)]
    xdp_attach: Option<sgplane::io::xdp::Attach>,
    /// AF_XDP: frames in the UMEM (a power of two, at least 64).
    #[arg(long, value_name = "N", hide = true, default_value_t = sgplane::io::xdp::DEFAULT_FRAMES)]
    xdp_frames: u32,
    #[command(flatten)]
    live: LiveArgs,
}

fn parse_iface_io(s: &str) -> std::result::Result<sgplane::live::inline::IfaceIo, String> {
    use sgplane::live::inline::IfaceIo;
    match s {
        "auto" => Ok(IfaceIo::Auto),
        "af-packet" => Ok(IfaceIo::AfPacket),
        "af-xdp" => Ok(IfaceIo::AfXdp),
        _ => Err("expected auto, af-packet or af-xdp".into()),
    }
}

fn parse_xdp_attach(s: &str) -> std::result::Result<sgplane::io::xdp::Attach, String> {
    use sgplane::io::xdp::Attach;
    match s {
        "native" => Ok(Attach::Native),
        "generic" => Ok(Attach::Generic),
        _ => Err("expected native or generic".into()),
    }
}

#[derive(Args, Debug)]
struct GwlbArgs {
    /// Where GENEVE arrives.
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:6081")]
    listen: std::net::SocketAddr,
    /// Answer health checks on ADDR:PORT: HTTP 200 while serving, 503 while draining.
    #[arg(long, value_name = "ADDR:PORT")]
    health: Option<std::net::SocketAddr>,
    /// After SIGTERM, keep serving established flows this long, then exit 0.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    drain_seconds: u64,
    /// Send every return through the raw socket (no UDP GSO) instead of
    /// UDP sockets bound to the source ports GWLB sends from
    /// (slower; use it if those ports must stay free on this host).
    #[arg(long)]
    raw_returns: bool,
    /// Established TCP flows a policy sets no `tcp_established` for expire
    /// after this many idle seconds: the GWLB listener's
    /// `tcp.idle_timeout.seconds` (350 by default; 60-6000). Other flows
    /// get GWLB's 120 s unless the policy sets theirs.
    #[arg(long, value_name = "SECONDS", default_value_t = sgplane::policy::GWLB_TCP_IDLE,
          value_parser = clap::value_parser!(u32).range(60..=6000))]
    tcp_idle: u32,
    #[command(flatten)]
    live: LiveArgs,
}

#[derive(Args, Debug)]
struct ReplayArgs {
    /// pcap or pcapng file, or an AWS VPC Flow Log (text, gzip or Parquet:
    /// each record judged as a new flow), or - for standard input (Parquet
    /// from standard input is read into memory first: its index is at its end).
    #[arg(value_name = "INPUT")]
    input: PathBuf,
    /// Judge every packet in this VPC (for captures inside one VPC of a
    /// policy whose VPCs share addresses); GENEVE packets keep their zone.
    #[arg(long, value_name = "VPC")]
    vpc: Option<String>,
    /// A Traffic Mirroring session: its VXLAN VNI and the interface it
    /// mirrors, whose VPC its packets are judged in (repeatable).
    #[arg(long, value_name = "VNI=ENI")]
    mirror: Vec<sgplane::policy::MirrorSession>,
    /// Write one verdict line per packet (or flow-log record): JSON lines,
    /// CSV if FILE ends in .csv, Parquet (one row each, the same columns)
    /// if it ends in .parquet; - for stdout (JSON lines).
    #[arg(long, value_name = "FILE")]
    verdicts: Option<PathBuf>,
    /// Write the allowed packets to this capture (same format, link type and timestamps).
    #[arg(long, value_name = "FILE")]
    allowed: Option<PathBuf>,
    /// Write the denied packets to this capture.
    #[arg(long, value_name = "FILE")]
    denied: Option<PathBuf>,
    /// Write AWS VPC Flow Logs (version 2) lines, one per flow, interface and
    /// aggregation window, each window once capture time passes its end; - for stdout.
    #[arg(long, value_name = "FILE")]
    flow_log: Option<PathBuf>,
    /// Flow log aggregation interval: 60 or 600 seconds of capture time, as AWS allows.
    #[arg(long, value_name = "SECONDS", default_value = "600")]
    flow_log_interval: sgplane::output::AggregationInterval,
    /// The most flow log records held at once (what bounds its memory, about
    /// 200 bytes a record); the packets of flows past them are counted in a
    /// SKIPDATA record per window and interface, as AWS does past its capacity.
    #[arg(long, value_name = "N", default_value_t = sgplane::output::DEFAULT_MAX_RECORDS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    flow_log_max_records: usize,
    /// The account id written in flow log lines.
    #[arg(long, value_name = "ID", default_value = "123456789012")]
    account_id: String,
    /// Write every packet to this pcapng file with its verdict, reason, rule,
    /// interface and direction as a packet comment (Wireshark shows it:
    /// `frame.comment contains "deny"`).
    #[arg(long, value_name = "FILE")]
    annotate: Option<PathBuf>,
    /// Also judge every packet (or record) under the policy NEW (a file as
    /// for -c; --vpc and --mirror apply to it too) and list the flows whose
    /// verdict changes, newly denied first. Exit 1 when any packet the -c
    /// policy allows NEW would deny: a gate for a policy change in CI.
    #[arg(long, value_name = "NEW")]
    compare: Option<PathBuf>,
    /// Write a self-contained HTML report (verdicts over time by reason, top
    /// denied flows and rules, per-interface counts, the security-group
    /// reference graph); for a flow log, records agreeing and differing.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Read INPUT as a VPC flow log with these fields, as the flow log's
    /// LogFormat gives them (`${version} ${vpc-id} ${srcaddr} …`, or the
    /// names alone): for records without their header line, such as those
    /// kept in CloudWatch Logs. A first line that is this header is
    /// skipped. Parquet is read by its own column names.
    #[arg(long, value_name = "FORMAT", value_parser = log_format)]
    log_format: Option<sgplane::io::flowlog::Format>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Args, Debug)]
struct CheckArgs {
    /// Exit 1 when there are warnings.
    #[arg(long)]
    strict: bool,
    /// Print every warning (by default the first 50, then a count by kind).
    #[arg(long)]
    all: bool,
    /// Also warn where the cloud's quotas would reject the policy (aws:
    /// rules per group, groups per interface, rules per interface).
    #[arg(long, value_name = "CLOUD")]
    profile: Option<sgplane::policy::check::Profile>,
}

#[derive(Args, Debug)]
struct ExplainArgs {
    /// Source address of the flow's first packet.
    #[arg(long, value_name = "IP")]
    src: IpAddr,
    /// Destination address.
    #[arg(long, value_name = "IP")]
    dst: IpAddr,
    /// Protocol: tcp, udp, icmp, icmpv6 or a number 0-255.
    #[arg(long, value_name = "P", default_value = "tcp")]
    proto: IpProto,
    /// Source port (tcp/udp); when absent, only rules that allow every source port match.
    #[arg(long, value_name = "N")]
    sport: Option<u16>,
    /// Destination port (tcp/udp); when absent, only rules that allow every port match.
    #[arg(long, value_name = "N")]
    dport: Option<u16>,
    /// ICMP type (icmp/icmpv6); default 8 (echo request) for icmp, 128 for icmpv6.
    #[arg(long, value_name = "T")]
    icmp_type: Option<u8>,
    /// ICMP code; default 0.
    #[arg(long, value_name = "C")]
    icmp_code: Option<u8>,
    /// The GWLB endpoint the flow comes through (vpce-…), for zoned policies.
    #[arg(long, value_name = "VPCE", value_parser = policy::parse_zone)]
    zone: Option<u64>,
    /// The VPC the flow is in, where its addresses do not say (two VPCs
    /// with the same CIDR).
    #[arg(long, value_name = "VPC")]
    vpc: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(cli.verbose);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Rust ignores SIGPIPE, so `sgplane … | head` would panic on the closed pipe;
/// like other command-line tools, end quietly instead.
fn restore_sigpipe() {
    #[cfg(unix)]
    sgplane::io::sys::restore_default_sigpipe();
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The policy of `-c`: a policy file, or a cloud's JSON imported on the
/// fly (what the import skipped is listed on stderr); the built-in one
/// without `-c`.
fn load_policy(path: &Option<PathBuf>) -> Result<Policy> {
    match path {
        Some(p) => {
            let (policy, skipped) =
                sgplane::import::load_policy(p).map_err(|e| anyhow::anyhow!("{e}"))?;
            report_skipped(&skipped);
            tracing::info!(file = %p.display(), rules = policy.rules().len(), "policy loaded");
            Ok(policy)
        }
        None => Ok(Policy::builtin()),
    }
}

/// Lists on stderr what an import could not represent.
fn report_skipped(skipped: &[sgplane::import::Skipped]) {
    if skipped.is_empty() {
        return;
    }
    eprintln!(
        "{} item{} of the input cannot be represented:",
        skipped.len(),
        if skipped.len() == 1 { "" } else { "s" }
    );
    for s in skipped {
        eprintln!("  {s}");
    }
}

fn import(a: ImportArgs) -> Result<u8> {
    use sgplane::import::{self, Provider};
    let provider: Provider = a.provider.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let imported =
        import::import(provider, &a.paths, a.strict).map_err(|e| anyhow::anyhow!("{e}"))?;
    report_skipped(&imported.skipped);
    // What is written must load: compile it before writing.
    Policy::compile(&imported.model).map_err(|e| {
        anyhow::anyhow!("the imported policy does not compile (please report this): {e}")
    })?;
    let text = import::write::write(&imported.model);
    match &a.output {
        Some(path) => std::fs::write(path, &text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            use std::io::Write;
            std::io::stdout().write_all(text.as_bytes())?;
        }
    }
    let m = &imported.model;
    let rules: usize = m
        .security_groups
        .iter()
        .map(|g| g.ingress.len() + g.egress.len())
        .sum();
    eprintln!(
        "imported {} VPCs, {} subnets, {} security groups ({rules} rules), {} interfaces, {} network ACLs, {} route tables, {} load balancers, {} endpoints; {} skipped",
        m.vpcs.len(),
        m.subnets.len(),
        m.security_groups.len(),
        m.interfaces.len(),
        m.network_acls.len(),
        m.route_tables.len(),
        m.load_balancers.len(),
        m.endpoints.len(),
        imported.skipped.len()
    );
    Ok(0)
}

fn run(mut cli: Cli) -> Result<u8> {
    // A second -c is replay's policy to compare with; nothing else takes one.
    if cli.config.len() > 1 {
        let second = cli.config.remove(1);
        match &mut cli.command {
            Command::Replay(a) if cli.config.len() == 1 && a.compare.is_none() => {
                a.compare = Some(second);
            }
            Command::Replay(_) => bail!(
                "replay compares the -c policy with one other: give that one as a second -c or as --compare, once"
            ),
            _ => bail!("-c is given twice: only replay takes a second policy (to compare with)"),
        }
    }
    let config = cli.config.pop();
    match cli.command {
        Command::Check(a) => check(&config, a),
        Command::Explain(a) => explain(&config, a),
        Command::Replay(a) => replay(&config, a),
        Command::Run(a) => run_inline(&config, a),
        Command::Gwlb(a) => gwlb(&config, a),
        Command::Import(a) => import(a),
        Command::Path(a) => path(&config, a),
        Command::Export(ExportCommand::Nftables { table }) => {
            let policy = load_policy(&config)?;
            let text = sgplane::export::nftables::ruleset(&policy, &table)?;
            print!("{text}");
            Ok(0)
        }
    }
}

fn path(config: &Option<PathBuf>, a: PathArgs) -> Result<u8> {
    use sgplane::path;
    let model = match config {
        Some(p) => {
            let (model, skipped) =
                sgplane::import::load_model(p).map_err(|e| anyhow::anyhow!("{e}"))?;
            report_skipped(&skipped);
            model
        }
        None => policy::Model::from_toml(policy::DEFAULT_POLICY_TOML, policy::DEFAULT_POLICY_NAME)?,
    };
    let policy = Policy::compile(&model)?;
    let proto = a.proto;
    if !proto.has_ports() && (a.sport.is_some() || a.dport.is_some()) {
        bail!("--sport/--dport apply to tcp and udp, not {proto}");
    }
    if !proto.is_icmp() && (a.icmp_type.is_some() || a.icmp_code.is_some()) {
        bail!("--icmp-type/--icmp-code apply to icmp and icmpv6, not {proto}");
    }
    let icmp = proto.is_icmp().then(|| {
        let echo = if proto == IpProto::ICMP { 8 } else { 128 };
        (a.icmp_type.unwrap_or(echo), a.icmp_code.unwrap_or(0))
    });
    let q = path::Query {
        from: a.from.unwrap_or_default(),
        to: a.to.unwrap_or_default(),
        proto,
        dport: a.dport.filter(|_| proto.has_ports()),
        sport: a.sport.filter(|_| proto.has_ports()),
        icmp,
    };
    if a.all {
        let ifaces = path::all::instance_interfaces(&policy);
        let m = path::all::all_pairs(&policy, &q, &ifaces)?;
        let (reachable, codes) = m.summary();
        let n = ifaces.len();
        let mut summary = format!(
            "{n} interfaces, {} pairs, {}: {reachable} reachable",
            n * n.saturating_sub(1),
            path::describe_flow(&q)
        );
        for (code, count) in codes {
            summary.push_str(&format!(", {count} {code}"));
        }
        match &a.csv {
            Some(file) => {
                std::fs::write(file, m.to_csv())
                    .with_context(|| format!("writing {}", file.display()))?;
                println!("{summary}");
            }
            None => {
                print!("{}", m.to_csv());
                eprintln!("{summary}");
            }
        }
        return Ok(0);
    }
    let mut trace = path::analyse(&policy, &q)?;
    if !trace.reachable {
        trace.fixes = path::fix::search(&model, &q, &trace);
    }
    if let Some(file) = &a.svg {
        std::fs::write(file, path::render::to_svg(&trace))
            .with_context(|| format!("writing {}", file.display()))?;
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&path::render::to_json(&trace))
                .context("encoding JSON")?
        );
    } else {
        print!("{}", path::render::to_text(&trace));
    }
    Ok(if trace.reachable { 0 } else { 1 })
}

fn check(config: &Option<PathBuf>, args: CheckArgs) -> Result<u8> {
    let policy = load_policy(config)?;
    println!("{}", policy.summary());
    let started = std::time::Instant::now();
    let fast = sgplane::classify::sg::SgClassifier::build(&policy);
    println!(
        "  fast path:       {} lookup tables, {} address intervals, {} KiB, built in {:.1} ms",
        fast.tables(),
        fast.intervals(),
        fast.memory_bytes().div_ceil(1024),
        started.elapsed().as_secs_f64() * 1e3
    );
    let mut warnings = policy.warnings();
    if let Some(profile) = args.profile {
        warnings.extend(policy.quota_warnings(profile));
    }
    if warnings.is_empty() {
        println!("no warnings");
        return Ok(0);
    }
    println!(
        "{} warning{}:",
        warnings.len(),
        if warnings.len() == 1 { "" } else { "s" }
    );
    const SHOWN: usize = 50;
    let shown = if args.all {
        warnings.len()
    } else {
        SHOWN.min(warnings.len())
    };
    for w in &warnings[..shown] {
        if w.line > 0 {
            println!(
                "  {}:{}: warning[{}]: {}",
                policy.source(),
                w.line,
                w.kind,
                w.message
            );
        } else {
            println!("  {}: warning[{}]: {}", policy.source(), w.kind, w.message);
        }
    }
    if shown < warnings.len() {
        let mut by_kind = std::collections::BTreeMap::new();
        for w in &warnings[shown..] {
            *by_kind.entry(w.kind).or_insert(0usize) += 1;
        }
        let kinds: Vec<String> = by_kind.iter().map(|(k, n)| format!("{n} {k}")).collect();
        println!(
            "  … and {} more ({}); --all prints them",
            warnings.len() - shown,
            kinds.join(", ")
        );
    }
    Ok(if args.strict { 1 } else { 0 })
}

fn explain(config: &Option<PathBuf>, a: ExplainArgs) -> Result<u8> {
    let mut policy = load_policy(config)?;
    if let Some(v) = &a.vpc {
        policy.judge_in_vpc(v)?;
    }
    if a.src.is_ipv4() != a.dst.is_ipv4() {
        bail!(
            "--src {} and --dst {} are of different IP versions",
            a.src,
            a.dst
        );
    }
    let proto = a.proto;
    if proto == IpProto::ICMP && a.src.is_ipv6() {
        bail!("--proto icmp is ICMP for IPv4; for IPv6 addresses use --proto icmpv6");
    }
    if proto == IpProto::ICMPV6 && a.src.is_ipv4() {
        bail!("--proto icmpv6 is for IPv6; for IPv4 addresses use --proto icmp");
    }
    if !proto.has_ports() && (a.sport.is_some() || a.dport.is_some()) {
        bail!("--sport/--dport apply to tcp and udp, not {proto}");
    }
    if !proto.is_icmp() && (a.icmp_type.is_some() || a.icmp_code.is_some()) {
        bail!("--icmp-type/--icmp-code apply to icmp and icmpv6, not {proto}");
    }
    let mut flow = Flow::other(a.src, a.dst, proto);
    if proto.has_ports() {
        flow.sport = a.sport;
        flow.dport = a.dport;
    }
    if proto.is_icmp() {
        let echo = if proto == IpProto::ICMP { 8 } else { 128 };
        flow.icmp = Some((a.icmp_type.unwrap_or(echo), a.icmp_code.unwrap_or(0)));
    }
    flow.zone = policy.zone_of(a.zone, a.src, a.dst);
    let ex = policy.explain(&flow);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&ex).context("encoding JSON")?
        );
    } else {
        print!("{}", ex.to_text());
    }
    Ok(if ex.verdict == Verdict::Allow { 0 } else { 1 })
}

fn replay(config: &Option<PathBuf>, a: ReplayArgs) -> Result<u8> {
    use sgplane::engine::Engine;
    use sgplane::replay::{self, Outputs};
    use std::io::IsTerminal;

    let mut policy = load_policy(config)?;
    if let Some(w) = policy.no_interfaces_warning() {
        eprintln!("{}: warning[{}]: {}", policy.source(), w.kind, w.message);
    }
    if let Some(v) = &a.vpc {
        policy.judge_in_vpc(v)?;
    }
    for m in &a.mirror {
        policy.mirror(m.vni, &m.interface)?;
    }
    let mut engine = Engine::with_policy(policy);
    let compare = compare_with(&a)?;
    let stdin = a.input.as_os_str() == "-";
    let name = if stdin {
        "stdin".to_string()
    } else {
        a.input.display().to_string()
    };
    if !stdin {
        if let Some(r) = replay::recognise_parquet_file(&a.input, &name)? {
            return replay_flow_log(&engine, r, &name, a, compare);
        }
    }
    let (input, size): (Box<dyn std::io::Read + Send>, Option<u64>) = if stdin {
        (Box::new(std::io::stdin()), None)
    } else {
        let f = std::fs::File::open(&a.input).with_context(|| format!("cannot open {name}"))?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(f), size)
    };
    if let Some(format) = a.log_format.clone() {
        let r = replay::open_flow_log_as(input, &name, format)?;
        return replay_flow_log(&engine, r, &name, a, compare);
    }
    let input = match replay::recognise(input, &name)? {
        replay::Recognised::Capture(c) => c,
        replay::Recognised::FlowLog(r) => return replay_flow_log(&engine, r, &name, a, compare),
    };
    let to_stdout = [&a.verdicts, &a.flow_log]
        .iter()
        .any(|p| p.as_ref().is_some_and(|p| p.as_os_str() == "-"));
    let outputs = Outputs {
        verdicts: a.verdicts,
        allowed: a.allowed,
        denied: a.denied,
        flow_log: a.flow_log,
        flow_log_interval: a.flow_log_interval,
        flow_log_max_records: Some(a.flow_log_max_records),
        account_id: a.account_id,
        annotate: a.annotate,
        compare,
        report: a.report,
    };
    let bar = (!a.no_progress && std::io::stderr().is_terminal()).then(|| progress_bar(size));
    let mut tick = |bytes: u64, packets: u64| {
        if let Some(b) = &bar {
            if size.is_some() {
                b.set_position(bytes);
            } else {
                b.set_position(packets);
            }
        }
    };
    // SIGINT or SIGTERM ends the replay at a packet boundary with every
    // output complete; a second one ends the process at once.
    let interrupt = Arc::new(AtomicUsize::new(0));
    let asked = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, asked.clone())
            .and_then(|_| signal_hook::flag::register(sig, asked.clone()))
            .and_then(|_| signal_hook::flag::register_usize(sig, interrupt.clone(), sig as usize))
            .context("cannot install the signal handlers")?;
    }
    let report = replay::replay(
        &mut engine,
        input,
        &name,
        &outputs,
        bar.is_some().then_some(&mut tick as _),
        Some(&interrupt),
    )?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let text = if a.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        report.to_text()
    };
    if to_stdout {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
    if let Some(i) = &report.interrupted {
        eprintln!(
            "sgplane: replay interrupted by {} at packet {}",
            i.signal, i.at_packet
        );
        return Ok(130);
    }
    if let Some(st) = &report.stopped {
        eprintln!("error: {name} {}", st.error);
        return Ok(2);
    }
    Ok(compare_exit(report.compare.as_ref()))
}

/// `--log-format`: a flow log's fields, as its LogFormat writes them.
fn log_format(text: &str) -> std::result::Result<sgplane::io::flowlog::Format, String> {
    sgplane::io::flowlog::Format::from_log_format(text).map_err(|e| e.to_string())
}

/// The policy of `--compare`, loaded as `-c` is and prepared alike
/// (`--vpc`, `--mirror`).
fn compare_with(a: &ReplayArgs) -> Result<Option<sgplane::replay::CompareWith>> {
    let Some(path) = &a.compare else {
        return Ok(None);
    };
    let what = || format!("--compare {}", path.display());
    let mut policy = load_policy(&Some(path.clone())).with_context(what)?;
    if let Some(v) = &a.vpc {
        policy.judge_in_vpc(v).with_context(what)?;
    }
    for m in &a.mirror {
        policy.mirror(m.vni, &m.interface).with_context(what)?;
    }
    let name = path.display().to_string();
    Ok(Some(sgplane::replay::CompareWith::new(policy, name)))
}

/// 1 when the `--compare` policy denies what the `-c` one allows, else 0.
fn compare_exit(c: Option<&sgplane::replay::Compared>) -> u8 {
    match c {
        Some(c) if c.breaks_anything() => {
            eprintln!(
                "sgplane: {} would deny {} {} of {} flows that {} allows",
                c.policy,
                c.newly_denied_packets,
                c.unit_name(),
                c.newly_denied_flows,
                c.compared_with
            );
            1
        }
        _ => 0,
    }
}

/// `replay` of a VPC Flow Log: records judged as new flows, compared with
/// their recorded action (SPEC §10).
fn replay_flow_log(
    engine: &sgplane::engine::Engine,
    reader: sgplane::io::flowlog::Reader,
    name: &str,
    a: ReplayArgs,
    compare: Option<sgplane::replay::CompareWith>,
) -> Result<u8> {
    use sgplane::replay::{self, Outputs};
    for (given, flag) in [
        (a.allowed.is_some(), "--allowed"),
        (a.denied.is_some(), "--denied"),
        (a.flow_log.is_some(), "--flow-log"),
        (a.annotate.is_some(), "--annotate"),
    ] {
        if given {
            bail!("{flag} writes packets: {name} is a VPC flow log, whose records are not packets");
        }
    }
    let to_stdout = a.verdicts.as_ref().is_some_and(|p| p.as_os_str() == "-");
    let outputs = Outputs {
        verdicts: a.verdicts,
        compare,
        report: a.report,
        ..Outputs::default()
    };
    let interrupt = Arc::new(AtomicUsize::new(0));
    let asked = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, asked.clone())
            .and_then(|_| signal_hook::flag::register(sig, asked.clone()))
            .and_then(|_| signal_hook::flag::register_usize(sig, interrupt.clone(), sig as usize))
            .context("cannot install the signal handlers")?;
    }
    let report = replay::replay_flow_log(engine.rules(), reader, name, &outputs, Some(&interrupt))?;
    let text = if a.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        report.to_text()
    };
    if to_stdout {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
    if let Some(sig) = report.interrupted {
        eprintln!(
            "sgplane: replay interrupted by signal {sig} at record {}",
            report.records
        );
        return Ok(130);
    }
    if let Some(st) = &report.stopped {
        eprintln!("error: {name} after line {}: {}", st.line, st.error);
        return Ok(2);
    }
    Ok(compare_exit(report.compare.as_ref()))
}

fn progress_bar(size: Option<u64>) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressStyle};
    match size {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {pos} packets {per_sec}")
                .expect("valid template"),
        ),
    }
}

fn workers(n: Option<usize>) -> Result<usize> {
    match n {
        Some(0) => bail!("--workers must be at least 1"),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

fn live_control(
    config: &Option<PathBuf>,
) -> Result<std::sync::Arc<sgplane::live::control::Control>> {
    let policy = load_policy(config)?;
    Ok(sgplane::live::control::Control::new(policy, config.clone()))
}

fn run_inline(config: &Option<PathBuf>, a: RunArgs) -> Result<u8> {
    use sgplane::live::control::OnTerm;
    use sgplane::live::inline::{self, InlineOptions, Port};
    let ports: Vec<Port> = if !a.tap.is_empty() {
        a.tap.iter().cloned().map(Port::Tap).collect()
    } else {
        a.iface.iter().cloned().map(Port::Iface).collect()
    };
    if !a.tap.is_empty() && !a.iface.is_empty() {
        bail!("give two --tap or two --iface, not a mix");
    }
    let Ok(ports) = <[Port; 2]>::try_from(ports) else {
        bail!("give exactly two sides: --tap A --tap B, or --iface A --iface B");
    };
    if ports[0] == ports[1] {
        bail!("the two sides must be different devices");
    }
    if !a.tap.is_empty() && a.iface_io == inline::IfaceIo::AfXdp {
        bail!("--io af-xdp is for --iface sides, not TAP devices");
    }
    let control = live_control(config)?;
    control
        .spawn_signal_thread(OnTerm::Stop)
        .context("installing signal handlers")?;
    let opts = InlineOptions {
        ports,
        workers: workers(a.live.workers)?,
        metrics: a.live.metrics,
        watch: a.live.watch,
        verdicts: a.verdicts,
        flow_log: a.flow_log,
        flow_log_interval: a.flow_log_interval,
        flow_log_max_records: a.flow_log_max_records,
        io_uring: !a.no_io_uring,
        iface_io: a.iface_io,
        xdp: sgplane::io::xdp::XdpOptions {
            attach: a.xdp_attach,
            frames: a.xdp_frames,
        },
    };
    let summary = inline::run(control, opts)?;
    print!("{summary}");
    Ok(0)
}

fn gwlb(config: &Option<PathBuf>, a: GwlbArgs) -> Result<u8> {
    use sgplane::live::control::OnTerm;
    use sgplane::live::gwlb::{self, GwlbOptions};
    let control = live_control(config)?;
    control.gwlb_mode(a.tcp_idle);
    let drain = std::time::Duration::from_secs(a.drain_seconds);
    control
        .spawn_signal_thread(OnTerm::Drain(drain))
        .context("installing signal handlers")?;
    let opts = GwlbOptions {
        listen: a.listen,
        health: a.health,
        metrics: a.live.metrics,
        workers: workers(a.live.workers)?,
        drain,
        watch: a.live.watch,
    };
    let tuning = gwlb::Tuning {
        udp_returns: !a.raw_returns,
        ..gwlb::Tuning::default()
    };
    let summary = gwlb::run_tuned(control, opts, &tuning)?;
    print!("{summary}");
    Ok(0)
}
