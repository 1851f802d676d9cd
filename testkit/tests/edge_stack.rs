//! `edge-stack`, the browser tests' process harness, keeps the protocol web/e2e relies on: one
//! line per process, `ready`, then `kill catcher`, `restart catcher` and `stop` on stdin.
//! (Also the reason cargo builds the binary before the gateway's browser test runs.)

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

fn reachable(addr: &str) -> bool {
    TcpStream::connect(addr).is_ok()
}

/// edge-stack on a fresh directory, with its stdin and stdout piped.
fn spawn(dir: &tempfile::TempDir) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_edge-stack"))
        .args(["--dir", dir.path().to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start edge-stack")
}

#[test]
fn starts_kills_restarts_and_stops_the_stack() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn(&dir);
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines().map(|l| l.expect("read edge-stack"));
    let mut next = move || lines.next().expect("edge-stack ended early");

    let catcher = next();
    let gateway = next();
    let admin = next();
    assert!(admin.starts_with("admin ebk_token_"), "{admin}");
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

    writeln!(stdin, "person vic viewer").unwrap();
    let person = next();
    assert!(person.starts_with("ok person ebk_token_"), "{person}");
    writeln!(stdin, "revoke-person vic").unwrap();
    assert_eq!(next(), "ok");
    writeln!(stdin, "revoke-person nobody").unwrap();
    assert!(next().starts_with("error "), "revoking an unknown name is an error");

    writeln!(stdin, "stop").unwrap();
    assert!(child.wait().unwrap().success());
    assert!(!reachable(&catcher_addr) && !reachable(&gateway_addr));
}

#[test]
fn a_signal_to_the_stack_stops_its_processes_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn(&dir);
    let _stdin = child.stdin.take().unwrap();
    let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap()).lines().map(|l| l.unwrap()).take(4).collect();
    assert_eq!(lines[3], "ready");
    let addrs: Vec<String> = lines[..2].iter().map(|l| l.split(' ').nth(1).unwrap().to_owned()).collect();
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    assert!(child.wait().unwrap().success());
    assert!(addrs.iter().all(|a| !reachable(a)), "left running: {addrs:?}");
}
