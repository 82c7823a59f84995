//! Helpers the integration tests share: whether they can build their network
//! labs here. Each test crate uses what it needs.
#![allow(dead_code)]

use std::process::Command;

/// Whether the tests run with an effective uid of 0 (network namespaces, TAP
/// devices and raw sockets need it).
pub fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

/// Whether `tool` is on the `PATH`.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `ip ARGS`, failing the test with its error output if it fails.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `cmd` inside network namespace `ns`.
pub fn in_ns(ns: &str, cmd: &[&str]) -> std::process::Output {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(cmd)
        .output()
        .expect("ip netns exec")
}

/// Runs the sgplane binary with `-c policy` (when given) and `args`,
/// `stdin` written to its standard input (a closed pipe is fine: sgplane
/// may exit before reading it all), and returns what it did.
pub fn sgplane_with_stdin(
    policy: Option<&std::path::Path>,
    args: &[&str],
    stdin: &[u8],
) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sgplane"));
    if let Some(p) = policy {
        cmd.arg("-c").arg(p);
    }
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sgplane");
    let mut input = child.stdin.take().expect("a piped stdin");
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().expect("sgplane's output")
}
