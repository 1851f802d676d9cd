//! Commands from the catcher, executed and answered with a CommandResult in the outbox.
//! A command the agent does not know is answered as unsupported, never ignored.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use edgebackup_proto::v1::{self as pb, CommandKind, agent_event::Kind};

use crate::engine::Engine;
use crate::restore::{self, Check};

pub struct Commands {
    engine: Arc<Engine>,
    /// Commands being executed; a re-sent copy of one of them is not started twice.
    running: Mutex<HashSet<String>>,
}

/// How a command ended.
struct Outcome {
    success: bool,
    unsupported: bool,
    message: String,
    details: serde_json::Value,
}

impl Outcome {
    fn ok(message: impl Into<String>, details: serde_json::Value) -> Self {
        Self { success: true, unsupported: false, message: message.into(), details }
    }

    fn failed(message: impl Into<String>, details: serde_json::Value) -> Self {
        Self { success: false, unsupported: false, message: message.into(), details }
    }
}

impl Commands {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine, running: Mutex::new(HashSet::new()) }
    }

    /// Starts executing `c` in the background.
    pub fn dispatch(self: &Arc<Self>, c: pb::Command) {
        if !self.running.lock().expect("running").insert(c.command_id.clone()) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let id = c.command_id.clone();
            let kind = c.kind;
            tracing::info!(command = %id, kind = ?CommandKind::try_from(kind).unwrap_or(CommandKind::Unspecified), "command received");
            let outcome = this.execute(c).await;
            let result = pb::CommandResult {
                command_id: id.clone(),
                success: outcome.success,
                unsupported: outcome.unsupported,
                message: outcome.message,
                details_json: outcome.details.to_string(),
            };
            if let Err(e) = this.engine.state.push(Kind::CommandResult(result)) {
                tracing::error!(command = %id, error = %e, "cannot record a command result");
            }
            this.running.lock().expect("running").remove(&id);
        });
    }

    async fn execute(&self, c: pb::Command) -> Outcome {
        // The catcher takes details as a JSON object.
        let none = serde_json::json!({});
        match CommandKind::try_from(c.kind).unwrap_or(CommandKind::Unspecified) {
            CommandKind::BackupNow => match self.engine.pass().await {
                Ok(r) => {
                    let details = serde_json::json!({
                        "packages_completed": r.packages_completed,
                        "packages_failed": r.packages_failed,
                        "files": r.files_backed_up,
                        "held": r.held,
                    });
                    match r.held {
                        Some(why) => Outcome::failed(format!("uploads are held: {why}"), details),
                        None if r.packages_failed > 0 => {
                            Outcome::failed(format!("{} package(s) failed", r.packages_failed), details)
                        }
                        None => Outcome::ok(
                            format!("{} package(s), {} file(s) backed up", r.packages_completed, r.files_backed_up),
                            details,
                        ),
                    }
                }
                Err(e) => Outcome::failed(e.to_string(), none),
            },
            CommandKind::Pause => match self.engine.pause() {
                Ok(()) => Outcome::ok("uploads paused", none),
                Err(e) => Outcome::failed(e.to_string(), none),
            },
            CommandKind::Resume => match self.engine.resume() {
                Ok(()) => {
                    tracing::info!("resumed by the operator; uploads continue");
                    Outcome::ok("resumed; uploads continue", none)
                }
                Err(e) => Outcome::failed(e.to_string(), none),
            },
            CommandKind::Verify => {
                let checks = restore::verify_package(&self.engine, &c.package_id).await;
                checks_outcome(&c.package_id, checks)
            }
            CommandKind::RestoreDrill => {
                let args = serde_json::from_str::<serde_json::Value>(&c.args_json).unwrap_or_default();
                match restore::drill(&self.engine, &args).await {
                    Ok(checks) => checks_outcome("drill", checks),
                    Err(e) => Outcome::failed(e, none),
                }
            }
            CommandKind::Move if self.engine.config.mover => match restore::move_copy(&self.engine, &c).await {
                Ok(details) => Outcome::ok(format!("copied to {} and verified", c.to_station_id), details),
                Err(e) => Outcome::failed(e, none),
            },
            CommandKind::Expire if self.engine.config.mover => match restore::delete_copy(&self.engine, &c).await {
                Ok(()) => Outcome::ok(format!("deleted from {}", c.from_station_id), none),
                Err(e) => Outcome::failed(e, none),
            },
            other => Outcome {
                success: false,
                unsupported: true,
                message: format!("this agent does not support {}", other.as_str_name()),
                details: none,
            },
        }
    }
}

fn checks_outcome(what: &str, checks: Vec<Check>) -> Outcome {
    let details = serde_json::json!({ "checks": checks });
    let bad: Vec<String> = checks.iter().filter(|c| !c.ok).map(|c| c.summary()).collect();
    if checks.is_empty() {
        Outcome::failed(format!("{what}: nothing to check"), details)
    } else if bad.is_empty() {
        Outcome::ok(format!("{what}: {} copy(ies) verified", checks.len()), details)
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
        for kind in [CommandKind::Move as i32, CommandKind::Expire as i32, 99] {
            let c = pb::Command { command_id: "c".into(), kind, ..Default::default() };
            let o = commands.execute(c).await;
            assert!(o.unsupported && !o.success, "kind {kind}: {}", o.message);
            assert!(o.message.contains("does not support"), "{}", o.message);
        }
    }
}
