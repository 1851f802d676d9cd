//! Commands: queued for an agent, leased when sent, closed by the agent's result.

use super::unit::Unit;
use super::{Op, lifecycle, packages, sources};
use crate::domain::*;
use crate::error::{Error, Result};
use crate::writer::events::CommandOutcome;

/// A command a person (or script) queues for a source's agent.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCommand {
    pub source_id: String,
    pub package_id: String,
    /// For a restore drill by tier, the catcher plans the targets (they must be empty here).
    pub args: CommandArgs,
    pub actor: String,
}

/// Queues a command; answered with the stored command.
#[derive(Debug)]
pub struct CreateCommand(pub NewCommand);

impl Op for CreateCommand {
    type Output = Command;

    async fn apply(self, u: &mut Unit<'_>) -> Result<Command> {
        let mut n = self.0;
        let s = u.source(&n.source_id).await?.ok_or_else(|| Error::not_found("source", &n.source_id))?;
        if !n.package_id.is_empty() {
            packages::owned_package(u, Some(&s.source_id), &n.package_id).await?;
        }
        if let CommandArgs::RestoreDrill(d) = &mut n.args {
            plan_drill(u, &s, d).await?;
        }
        let c = new_command(u, &n.source_id, &n.package_id, n.args);
        let mut entry = JournalEntry::new(EventType::CommandCreated, n.actor);
        entry.source_id = c.source_id.clone();
        entry.package_id = c.package_id.clone();
        entry.status_after = c.state.as_str().into();
        entry.details_json = serde_json::json!({"command_id": c.command_id, "kind": c.kind()}).to_string();
        u.journal(entry);
        u.put_command(c.clone());
        Ok(c)
    }
}

/// A pending command for `source_id`, made now.
pub(super) fn new_command(u: &Unit<'_>, source_id: &str, package_id: &str, args: CommandArgs) -> Command {
    Command {
        command_id: uuid::Uuid::now_v7().to_string(),
        source_id: source_id.to_owned(),
        package_id: package_id.to_owned(),
        args,
        state: CommandState::Pending,
        attempts: 0,
        lease_until: None,
        created_at: u.now,
        finished_at: None,
        result_message: String::new(),
        result: None,
        progress: None,
    }
}

/// A drill by tier is planned here: the catcher knows where every copy is. A drill of the
/// agent's own packages is planned by the agent.
async fn plan_drill(u: &mut Unit<'_>, s: &Source, d: &mut DrillArgs) -> Result<()> {
    if d.scope == DrillScope::Own {
        return Ok(());
    }
    if !s.capabilities.contains(&Capability::Mover) {
        return Err(Error::FailedPrecondition(format!(
            "source {} is not a mover; a drill by tier needs an agent with access to the stations",
            s.source_id
        )));
    }
    d.targets = lifecycle::drill_plan(u, d.scope.tier(), d.sample).await?;
    if d.targets.is_empty() {
        return Err(Error::FailedPrecondition("no package in that tier has a verified copy on a known station".into()));
    }
    Ok(())
}

/// The dispatcher sent these commands; they are re-sent after `lease_until` without a result.
#[derive(Debug)]
pub struct CommandsSent {
    pub ids: Vec<String>,
    pub lease_until: Millis,
}

impl Op for CommandsSent {
    type Output = ();

    fn weight(&self) -> usize {
        self.ids.len() / 16 + 1
    }

    async fn apply(self, u: &mut Unit<'_>) -> Result<()> {
        u.prefetch_commands(self.ids.iter().cloned()).await?;
        for id in self.ids {
            let Some(mut c) = u.command(&id).await? else { continue };
            if !matches!(c.state, CommandState::Pending | CommandState::Leased) {
                continue; // answered in the meantime
            }
            c.state = CommandState::Leased;
            c.lease_until = Some(self.lease_until);
            c.attempts += 1;
            u.put_command(c);
        }
        Ok(())
    }
}

/// An agent reported how far its running commands have got (the newest report per command).
/// Not an event: a report for a command that was not sent to this source, or is no longer
/// running (a late report must not outlive the result), is dropped; the count of those is the
/// answer.
#[derive(Debug)]
pub struct CommandsProgressed {
    pub source_id: String,
    pub reports: Vec<(String, CommandProgress)>,
}

impl Op for CommandsProgressed {
    type Output = usize;

    async fn apply(self, u: &mut Unit<'_>) -> Result<usize> {
        let mut dropped = 0;
        u.prefetch_commands(self.reports.iter().map(|(id, _)| id.clone())).await?;
        for (id, mut p) in self.reports {
            match u.command(&id).await? {
                Some(mut c) if c.source_id == self.source_id && c.state == CommandState::Leased => {
                    p.at = u.now;
                    c.progress = Some(p);
                    u.put_command(c);
                }
                _ => dropped += 1,
            }
        }
        Ok(dropped)
    }
}

/// An agent answered a command.
pub(super) async fn command_result(u: &mut Unit<'_>, source_id: &str, r: CommandOutcome) -> Result<()> {
    let mut c = u.command(&r.command_id).await?.ok_or_else(|| Error::not_found("command", &r.command_id))?;
    if c.source_id != source_id {
        return Err(Error::PermissionDenied(format!("command {} was sent to another source", c.command_id)));
    }
    if matches!(c.state, CommandState::Succeeded | CommandState::Failed) {
        return Ok(()); // an answer replayed after a reconnect
    }
    if let Some(d) = &r.details
        && d.kind() != c.kind()
    {
        return Err(Error::invalid(
            "command_result.details",
            format!("a {} result answers a {} command", d.kind(), c.kind()),
        ));
    }
    if r.success && c.kind() == CommandKind::Move && !matches!(r.details, Some(CommandDetails::Move(_))) {
        return Err(Error::invalid("command_result.details.move", "required when a move succeeded"));
    }
    c.state = if r.success { CommandState::Succeeded } else { CommandState::Failed };
    c.finished_at = Some(u.now);
    c.result_message = if r.unsupported { format!("unsupported by the agent: {}", r.message) } else { r.message };
    c.result = r.details;
    u.put_command(c.clone());
    match c.kind() {
        CommandKind::Move | CommandKind::Expire => lifecycle::on_result(u, &c, r.success).await?,
        CommandKind::RestoreDrill => lifecycle::on_drill_result(u, &c, r.success).await?,
        CommandKind::Verify => {
            if let Some(CommandDetails::Verify(checks)) = &c.result {
                super::damage::on_checks(u, source_id, checks, "verify").await?;
            }
        }
        CommandKind::Resume if r.success => {
            if let Some(mut s) = u.source(source_id).await? {
                s.safety_state = SafetyState::Ok;
                s.safety_reason.clear();
                u.put_source(s);
                let mut e = JournalEntry::new(EventType::SourceResumed, sources::actor_of(source_id));
                e.source_id = source_id.to_owned();
                e.status_before = SafetyState::StoppedForSafety.as_str().into();
                e.status_after = SafetyState::Ok.as_str().into();
                u.journal(e);
            }
        }
        _ => {}
    }
    let mut e = JournalEntry::new(EventType::CommandFinished, sources::actor_of(source_id));
    e.source_id = source_id.to_owned();
    e.package_id = c.package_id.clone();
    e.status_after = c.state.as_str().into();
    if !r.success {
        e.error = c.result_message.clone();
    }
    e.details_json = serde_json::json!({"command_id": c.command_id, "kind": c.kind()}).to_string();
    u.journal(e);
    Ok(())
}
