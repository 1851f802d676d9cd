//! `edge-stack`, the browser tests' process harness, keeps the protocol web/e2e relies on: one
//! line per process, `ready`, then `kill catcher`, `restart catcher` and `stop` on stdin.
//! (Also the reason cargo builds the binary before the gateway's browser test runs.)

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

fn reachable(addr: &str) -> bool {
    TcpStream::connect(addr).is_ok()
}

#[test]
fn starts_kills_restarts_and_stops_the_stack() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_edge-stack"))
        .args(["--dir", dir.path().to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start edge-stack");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines().map(|l| l.expect("read edge-stack"));
    let mut next = move || lines.next().expect("edge-stack ended early");

    let catcher = next();
    let gateway = next();
    assert_eq!(next(), "ready");
    let field = |l: &str, i: usize| l.split(' ').nth(i).unwrap_or_default().to_owned();
    assert_eq!(field(&catcher, 0), "catcher", "{catcher}");
    assert_eq!(field(&gateway, 0), "gateway", "{gateway}");
    let (catcher_addr, gateway_addr) = (field(&catcher, 1), field(&gateway, 1));
    assert!(std::path::Path::new(&field(&catcher, 2)).exists(), "catcher log: {catcher}");
    assert!(reachable(&catcher_addr) && reachable(&gateway_addr));

    writeln!(stdin, "kill catcher").unwrap();
    assert_eq!(next(), "ok");
    assert!(!reachable(&catcher_addr), "the catcher still answers after kill");
    assert!(reachable(&gateway_addr), "the gateway went down with the catcher");

    writeln!(stdin, "restart catcher").unwrap();
    let restarted = next();
    assert_eq!(field(&restarted, 0), "ok", "{restarted}");
    assert_eq!(field(&restarted, 2), catcher_addr, "the catcher came back elsewhere: {restarted}");
    assert!(reachable(&catcher_addr));

    writeln!(stdin, "stop").unwrap();
    assert!(child.wait().unwrap().success());
    assert!(!reachable(&catcher_addr) && !reachable(&gateway_addr));
}
