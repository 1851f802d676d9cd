//! The browser tests' process harness: the dashboard tests (web/e2e, in Node) start their catcher
//! and gateway through this, so the one harness in `edgebackup_testkit` runs every process.
//!
//! `edge-stack --dir DIR [--catcher-config FILE] [--catcher-env KEY=VALUE]...` starts a catcher
//! (SQLite in DIR) and a gateway in front of it, then prints one line per process and `ready`:
//!
//! ```text
//! catcher 127.0.0.1:PORT LOGFILE
//! gateway 127.0.0.1:PORT LOGFILE
//! admin TOKEN
//! ready
//! ```
//!
//! and answers commands on stdin, one line each: `kill catcher` (SIGKILL) → `ok`,
//! `restart catcher` (same address and database) → `ok catcher ADDR LOGFILE`,
//! `start agent CONFIG` (`agent --config CONFIG run`, the test writes the config with this
//! catcher's address) → `ok agent LOGFILE`, `token SOURCE [mover]` (`catcher enroll`) →
//! `ok token TOKEN CA_FINGERPRINT HTTPS_URL` for an agent config, `enroll SOURCE [mover]` (a
//! credential made as an agent makes it) → `ok enrolled DIR` holding `ca.crt`, `agent.crt`,
//! `agent.key`, `person NAME ROLE` (`catcher token create`) → `ok person TOKEN`,
//! `revoke-person NAME` (`catcher token revoke`) → `ok`, `stop`, end of input, SIGTERM or SIGINT → stops every process with SIGTERM and
//! exits.

use std::path::PathBuf;

use edgebackup_testkit::{Proc, Ready, Spec};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::signal::unix::{SignalKind, signal};

struct Args {
    dir: PathBuf,
    config: Option<String>,
    env: Vec<(String, String)>,
}

fn parse() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut dir, mut config, mut env) = (None, None, Vec::new());
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--dir" => dir = Some(PathBuf::from(value()?)),
            "--catcher-config" => config = Some(value()?),
            "--catcher-env" => {
                let kv = value()?;
                let (k, v) = kv.split_once('=').ok_or(format!("--catcher-env {kv}: expected KEY=VALUE"))?;
                env.push((k.to_owned(), v.to_owned()));
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args { dir: dir.ok_or("--dir is required")?, config, env })
}

fn line(name: &str, p: &Proc) -> String {
    format!("{name} {} {}", p.addr, p.log.display())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("edge-stack: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let db = format!("sqlite://{}?mode=rwc", args.dir.join("catcher.db").display());
    let mut spec = Spec::new("catcher", &args.dir)
        .args(["--listen", "127.0.0.1:0", "--database-url", &db])
        .envs(&[("CATCHER_SCHEDULER_INTERVAL_MS", "200"), ("CATCHER_LOG_LEVEL", "warn")]);
    if let Some(config) = &args.config {
        spec = spec.args(["--config", config]);
    }
    for (k, v) in &args.env {
        spec = spec.env(k, v);
    }
    // A signal stops them too: a harness killed politely must not leave its processes behind.
    // Handled from before anything starts, so a signal right after `ready` is never the default
    // (death without stopping the children).
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let mut catcher = spec.start().await;
    let url = catcher.url();
    let mut gateway = Proc::start("gateway", &["--listen", "127.0.0.1:0", "--catcher", &url], &[], &args.dir).await;
    // The first admin's token: the harness signs its pages in with it.
    println!("{}\n{}\nadmin {}\nready", line("catcher", &catcher), line("gateway", &gateway), catcher.admin_token());

    let mut agents: Vec<Proc> = Vec::new();
    let mut commands = BufReader::new(tokio::io::stdin()).lines();
    loop {
        let command = tokio::select! {
            line = commands.next_line() => match line {
                Ok(Some(line)) => line,
                _ => break,
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        match command.trim() {
            "kill catcher" => {
                catcher.kill().await;
                println!("ok");
            }
            "restart catcher" => {
                catcher.restart_same_port().await;
                println!("ok {}", line("catcher", &catcher));
            }
            "stop" => break,
            other if other.starts_with("start agent ") => {
                let config = other["start agent ".len()..].trim();
                let agent =
                    Spec::new("agent", &args.dir).args(["--config", config, "run"]).ready(Ready::Spawned).start().await;
                println!("ok agent {}", agent.log.display());
                agents.push(agent);
            }
            other if other.starts_with("person ") => {
                let mut words = other["person ".len()..].split_whitespace();
                let (name, role) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
                match catcher.person_token(name, role) {
                    Ok(token) => println!("ok person {token}"),
                    Err(err) => println!("error {}", err.replace('\n', " ")),
                }
            }
            other if other.starts_with("revoke-person ") => {
                let name = other["revoke-person ".len()..].trim();
                match catcher.cli(&["token", "revoke", name]) {
                    Ok(_) => println!("ok"),
                    Err(err) => println!("error {}", err.replace('\n', " ")),
                }
            }
            other if other.starts_with("token ") => {
                let (source, mover) = source_and_mover(&other["token ".len()..]);
                let e = catcher.enrollment(source, mover);
                println!("ok token {} {} {}", e.token, e.ca_fingerprint, e.url);
            }
            other if other.starts_with("enroll ") => {
                let (source, mover) = source_and_mover(&other["enroll ".len()..]);
                let e = catcher.enrollment(source, mover);
                let dir = args.dir.join("credentials").join(source);
                match edgebackup_common::client::enroll(&e.url, &e.token, Some(&e.ca_fingerprint)).await {
                    Ok((credential, _)) => match credential.save(&dir) {
                        Ok(()) => println!("ok enrolled {}", dir.display()),
                        Err(err) => println!("error {err}"),
                    },
                    Err(err) => println!("error {err}"),
                }
            }
            other => println!("error unknown command {other:?}"),
        }
    }
    for p in agents.iter_mut().chain([&mut gateway, &mut catcher]) {
        if p.pid().is_some() {
            p.terminate().await;
        }
    }
    // Exit now: returning would drop the runtime, which waits for the blocking thread still
    // reading stdin (tokio's stdin cannot be cancelled) when a signal ended the loop.
    std::process::exit(0)
}

/// `SOURCE [mover]`.
fn source_and_mover(rest: &str) -> (&str, bool) {
    let mut words = rest.split_whitespace();
    let source = words.next().unwrap_or_default();
    (source, words.next() == Some("mover"))
}
