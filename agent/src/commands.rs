//! Commands from the catcher, executed and answered with a CommandResult in the outbox.
//! A command the agent does not know is answered as unsupported, never ignored.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use edgebackup_proto::v1::command_args::Kind as Args;
use edgebackup_proto::v1::command_details::Kind as Details;
use edgebackup_proto::v1::{self as pb, CommandKind, agent_event::Kind};
use tokio_util::task::TaskTracker;

use crate::command_progress::Board;
use crate::engine::Engine;
use crate::restore::{self, Check};

impl Commands {
    /// Starts a pass now (tracked like a command; passes take turns).
    pub fn pass_now(&self) {
        let engine = self.engine.clone();
        self.tasks.spawn(async move {
            match engine.pass().await {
                Ok(r) => tracing::info!(completed = r.packages_completed, files = r.files_backed_up, "pass done"),
                Err(e) => tracing::error!(error = %e, "pass failed"),
            }
        });
    }
}

pub struct Commands {
    engine: Arc<Engine>,
    /// How far running commands are, for the stream to send.
    pub progress: Arc<Board>,
    /// Commands being executed; a re-sent copy of one of them is not started twice.
    running: Mutex<HashSet<String>>,
    /// Their tasks, awaited at shutdown.
    tasks: TaskTracker,
}

/// How a command ended.
struct Outcome {
    success: bool,
    unsupported: bool,
    message: String,
    details: Option<Details>,
}

impl Outcome {
    fn ok(message: impl Into<String>, details: Option<Details>) -> Self {
        Self { success: true, unsupported: false, message: message.into(), details }
    }

    fn failed(message: impl Into<String>, details: Option<Details>) -> Self {
        Self { success: false, unsupported: false, message: message.into(), details }
    }
}

impl Commands {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine, progress: Arc::default(), running: Mutex::new(HashSet::new()), tasks: TaskTracker::new() }
    }

    /// Starts executing `c` in the background (tracked: `finish` waits for it).
    pub fn dispatch(self: &Arc<Self>, c: pb::Command) {
        if !self.running.lock().expect("running").insert(c.command_id.clone()) {
            return;
        }
        let this = self.clone();
        self.tasks.spawn(async move {
            let id = c.command_id.clone();
            let kind = CommandKind::try_from(c.kind).unwrap_or(CommandKind::Unspecified);
            tracing::info!(command = %id, kind = kind.as_str_name(), "command received");
            let outcome = this.execute(c).await;
            let result = pb::CommandResult {
                command_id: id.clone(),
                success: outcome.success,
                unsupported: outcome.unsupported,
                message: outcome.message,
                details: outcome.details.map(|d| pb::CommandDetails { kind: Some(d) }),
            };
            this.progress.forget(&id);
            let resumed = kind == CommandKind::Resume && result.success;
            if let Err(e) = this.engine.state.push(Kind::CommandResult(result)) {
                tracing::error!(command = %id, error = %e, "cannot record a command result");
            }
            this.running.lock().expect("running").remove(&id);
            // After the result is queued: a trip in this pass reaches the catcher after the
            // resume, never before it (which the resume would then wrongly clear).
            if resumed {
                match this.engine.pass().await {
                    Ok(r) => {
                        tracing::info!(completed = r.packages_completed, held = ?r.held, "pass after the resume done")
                    }
                    Err(e) => tracing::error!(error = %e, "pass after the resume failed"),
                }
            }
        });
    }

    /// Waits for the commands being executed, at most `deadline`; their results are in the
    /// outbox once this returns (those still running after it are answered after a restart,
    /// when the catcher re-sends them).
    pub async fn finish(&self, deadline: std::time::Duration) {
        self.tasks.close();
        if tokio::time::timeout(deadline, self.tasks.wait()).await.is_err() {
            tracing::warn!(
                ?deadline,
                running = self.tasks.len(),
                "commands still running at shutdown; the catcher re-sends them"
            );
        }
    }

    async fn execute(&self, c: pb::Command) -> Outcome {
        let kind = CommandKind::try_from(c.kind).unwrap_or(CommandKind::Unspecified);
        let arm = c.args.and_then(|a| a.kind);
        // The arguments must be of the command's kind: never guess what a malformed command meant.
        if kind == CommandKind::Unspecified {
            return unsupported(c.kind);
        }
        let Some(arm) = arm else {
            return Outcome::failed(format!("args: required for {}", kind.as_str_name()), None);
        };
        if arm_kind(&arm) != kind {
            return Outcome::failed(
                format!("args: {} arguments for {}", arm_kind(&arm).as_str_name(), kind.as_str_name()),
                None,
            );
        }
        if let Err(e) = confined(&c.package_id, &arm) {
            return Outcome::failed(e, None);
        }
        match arm {
            Args::BackupNow(_) => match self.engine.pass().await {
                Ok(r) => {
                    let done = format!("{} package(s), {} file(s) backed up", r.packages_completed, r.files_backed_up);
                    pass_outcome(r, done, Details::BackupNow)
                }
                Err(e) => Outcome::failed(e.to_string(), None),
            },
            Args::Pause(_) => match self.engine.pause() {
                Ok(()) => Outcome::ok("uploads paused", None),
                Err(e) => Outcome::failed(e.to_string(), None),
            },
            Args::Resume(_) => match self.engine.resume() {
                Ok(recreated) => {
                    tracing::info!(canaries_recreated = recreated.len(), "resumed by the operator; a pass follows");
                    let mut message = "resumed; a backup pass follows".to_owned();
                    if !recreated.is_empty() {
                        let paths: Vec<String> = recreated.iter().map(|p| p.display().to_string()).collect();
                        message.push_str(&format!("; canary recreated: {}", paths.join(", ")));
                    }
                    Outcome::ok(message, None)
                }
                Err(e) => Outcome::failed(e.to_string(), None),
            },
            Args::Verify(_) if c.package_id.is_empty() => Outcome::failed("package_id: required for a verify", None),
            Args::Verify(_) => {
                let checks = restore::verify_package(&self.engine, &c.package_id).await;
                checks_outcome(&c.package_id, checks, Details::Verify)
            }
            Args::RestoreDrill(args) => match restore::drill(&self.engine, &args).await {
                Ok(checks) => checks_outcome("drill", checks, Details::RestoreDrill),
                Err(e) => Outcome::failed(e, None),
            },
            Args::Move(_) | Args::Expire(_) if !self.engine.config.mover => unsupported(c.kind),
            Args::Move(args) => match restore::move_copy(&self.engine, &c.command_id, &c.package_id, &args).await {
                Ok(result) => {
                    Outcome::ok(format!("copied to {} and verified", args.to_station_id), Some(Details::Move(result)))
                }
                Err(e) => Outcome::failed(e, None),
            },
            Args::Expire(args) => match restore::delete_copy(&self.engine, &c.package_id, &args).await {
                Ok(()) => Outcome::ok(format!("deleted from {}", args.station_id), None),
                Err(e) => Outcome::failed(e, None),
            },
            Args::Compact(args) => match self.engine.compact(&args.folder, &args.paths).await {
                Ok((r, left)) => {
                    let done = format!(
                        "{} file(s) packaged again in {} package(s); {left} changed or gone since (the next pass's)",
                        r.files_backed_up, r.packages_completed
                    );
                    pass_outcome(r, done, Details::Compact)
                }
                Err(e) => Outcome::failed(e.to_string(), None),
            },
            Args::Restore(args) => {
                match restore::command::run(&self.engine.config, args, self.progress.reporter(&c.command_id)).await {
                    Ok((summary, target)) => {
                        let details = Some(Details::Restore(restore::command::details(&summary)));
                        let report = summary.report(&target);
                        if summary.skipped.is_empty() {
                            Outcome::ok(report, details)
                        } else {
                            Outcome::failed(report, details)
                        }
                    }
                    Err(e) => Outcome::failed(e, None),
                }
            }
        }
    }
}

/// What a command names that becomes a path here stays where it belongs: a package id is a UUID
/// (it names files on stations and scratch directories) and a compaction's paths stay inside
/// their folder. Stations are named by id and looked up in this agent's own configuration; a
/// restore's target is checked against `restore_roots` where it runs.
fn confined(package_id: &str, arm: &Args) -> Result<(), String> {
    if !package_id.is_empty() && uuid::Uuid::parse_str(package_id).is_err() {
        return Err(format!("package_id: {package_id:?} is not a package id"));
    }
    if let Args::Compact(a) = arm {
        for (i, p) in a.paths.iter().enumerate() {
            let path = std::path::Path::new(p);
            let inside = !p.is_empty() && path.components().all(|c| matches!(c, std::path::Component::Normal(_)));
            if !inside {
                return Err(format!("args.compact.paths[{i}]: {p:?} is not a path inside the folder"));
            }
        }
    }
    Ok(())
}

/// A pass's (or compaction's) outcome: failed when uploads were held or a package failed.
fn pass_outcome(r: crate::engine::PassReport, done: String, arm: fn(pb::BackupNowResult) -> Details) -> Outcome {
    let details = Some(arm(pb::BackupNowResult {
        packages_completed: r.packages_completed,
        packages_failed: r.packages_failed,
        files: u64::from(r.files_backed_up),
        held: r.held.clone().unwrap_or_default(),
    }));
    match r.held {
        Some(why) => Outcome::failed(format!("uploads are held: {why}"), details),
        None if r.packages_failed > 0 => Outcome::failed(format!("{} package(s) failed", r.packages_failed), details),
        None => Outcome::ok(done, details),
    }
}

fn arm_kind(arm: &Args) -> CommandKind {
    match arm {
        Args::BackupNow(_) => CommandKind::BackupNow,
        Args::Verify(_) => CommandKind::Verify,
        Args::RestoreDrill(_) => CommandKind::RestoreDrill,
        Args::Pause(_) => CommandKind::Pause,
        Args::Resume(_) => CommandKind::Resume,
        Args::Move(_) => CommandKind::Move,
        Args::Expire(_) => CommandKind::Expire,
        Args::Restore(_) => CommandKind::Restore,
        Args::Compact(_) => CommandKind::Compact,
    }
}

fn unsupported(kind: i32) -> Outcome {
    let name =
        CommandKind::try_from(kind).map_or_else(|_| format!("command kind {kind}"), |k| k.as_str_name().to_owned());
    Outcome { success: false, unsupported: true, message: format!("this agent does not support {name}"), details: None }
}

fn checks_outcome(what: &str, checks: Vec<Check>, arm: fn(pb::CopyChecks) -> Details) -> Outcome {
    let bad: Vec<String> = checks.iter().filter(|c| !c.ok).map(|c| c.summary()).collect();
    let count = checks.len();
    let details = Some(arm(pb::CopyChecks { checks: checks.iter().map(Check::to_wire).collect() }));
    if count == 0 {
        Outcome::failed(format!("{what}: nothing to check"), details)
    } else if bad.is_empty() {
        Outcome::ok(format!("{what}: {count} copy(ies) verified"), details)
    } else {
        Outcome::failed(bad.join("; "), details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::state::State;

    #[tokio::test]
    async fn unknown_commands_are_answered_as_unsupported() {
        let dir = tempfile::tempdir().unwrap();
        let config = Arc::new(Config { state_dir: dir.path().to_owned(), ..Config::default() });
        let state = State::open(dir.path()).unwrap();
        let engine = Arc::new(Engine::new(config, state, Arc::new(Vec::new())));
        let commands = Commands::new(engine);
        let mv = Args::Move(pb::MoveArgs::default());
        let expire = Args::Expire(pb::ExpireArgs::default());
        for (kind, args) in
            [(CommandKind::Move as i32, Some(mv)), (CommandKind::Expire as i32, Some(expire)), (99, None)]
        {
            let args = args.map(|kind| pb::CommandArgs { kind: Some(kind) });
            let c = pb::Command { command_id: "c".into(), kind, args, ..Default::default() };
            let o = commands.execute(c).await;
            assert!(o.unsupported && !o.success, "kind {kind}: {}", o.message);
            assert!(o.message.contains("does not support"), "{}", o.message);
        }
    }

    #[tokio::test]
    async fn malformed_commands_are_refused_not_guessed() {
        let dir = tempfile::tempdir().unwrap();
        let config = Arc::new(Config { state_dir: dir.path().to_owned(), ..Config::default() });
        let state = State::open(dir.path()).unwrap();
        let engine = Arc::new(Engine::new(config, state, Arc::new(Vec::new())));
        let commands = Commands::new(engine);
        let pause = Some(pb::CommandArgs { kind: Some(Args::Pause(pb::PauseArgs {})) });
        let verify = Some(pb::CommandArgs { kind: Some(Args::Verify(pb::VerifyArgs {})) });
        let compact = |path: &str| {
            let args = pb::CompactArgs {
                folder: "/data".into(),
                paths: vec!["ok.txt".into(), path.into()],
                ..Default::default()
            };
            Some(pb::CommandArgs { kind: Some(Args::Compact(args)) })
        };
        for (kind, args, package_id, says) in [
            (CommandKind::RestoreDrill, None, "", "args: required"),
            (CommandKind::Resume, pause, "", "args: COMMAND_KIND_PAUSE arguments for COMMAND_KIND_RESUME"),
            (CommandKind::Verify, verify, "../../etc", "package_id: \"../../etc\" is not a package id"),
            (CommandKind::Compact, compact("../secret"), "", "args.compact.paths[1]: \"../secret\" is not a path"),
            (CommandKind::Compact, compact("/etc/shadow"), "", "args.compact.paths[1]: \"/etc/shadow\" is not a path"),
            (CommandKind::Compact, compact("a/../../b"), "", "args.compact.paths[1]: \"a/../../b\" is not a path"),
        ] {
            let c = pb::Command {
                command_id: "c".into(),
                kind: kind as i32,
                args,
                package_id: package_id.into(),
                ..Default::default()
            };
            let o = commands.execute(c).await;
            assert!(!o.success && !o.unsupported && o.message.starts_with(says), "{kind:?}: {}", o.message);
        }
    }
}
