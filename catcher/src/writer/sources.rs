//! Sources: agents saying hello and goodbye, heartbeats, registrations, the panic brake.

use super::Op;
use super::unit::Unit;
use crate::domain::*;
use crate::error::Result;

/// What an agent says about itself in Hello.
#[derive(Debug, Clone, PartialEq)]
pub struct HelloInfo {
    pub source_id: String,
    pub label: String,
    pub hostname: String,
    pub os: String,
    pub agent_version: String,
    pub capabilities: Vec<Capability>,
}

/// An agent opened its stream; answered with the source and its cursor.
#[derive(Debug)]
pub struct Hello(pub HelloInfo);

impl Op for Hello {
    type Output = (Source, u64);

    async fn apply(self, u: &mut Unit<'_>) -> Result<(Source, u64)> {
        hello(u, self.0).await
    }
}

/// A session ended. Only the source's current session marks the source disconnected.
#[derive(Debug)]
pub struct Disconnected {
    pub source_id: String,
    pub session_id: String,
    pub reason: String,
    pub superseded: bool,
}

impl Op for Disconnected {
    type Output = ();

    async fn apply(self, u: &mut Unit<'_>) -> Result<()> {
        if self.superseded {
            return Ok(());
        }
        // The agent's stream moved to another replica: that one holds it now.
        if let Some(s) = u.source(&self.source_id).await?
            && s.replica.as_deref().is_some_and(|r| *r != *u.replica)
        {
            return Ok(());
        }
        disconnected(u, &self.source_id, &self.reason).await
    }
}

/// Heartbeats gathered by the sessions registry: `(source_id, heard at)`. Sources unknown here
/// are skipped by the UPDATE itself.
#[derive(Debug)]
pub struct Touch(pub Vec<(String, Millis)>);

impl Op for Touch {
    type Output = ();

    fn weight(&self) -> usize {
        self.0.len() / 16 + 1
    }

    async fn apply(self, u: &mut Unit<'_>) -> Result<()> {
        for (id, at) in self.0 {
            u.touch(&id, at);
        }
        Ok(())
    }
}

/// A person registers a source ahead of its agent, or relabels it.
#[derive(Debug)]
pub struct RegisterSource {
    pub source_id: String,
    pub label: String,
    pub actor: String,
}

impl Op for RegisterSource {
    type Output = Source;

    async fn apply(self, u: &mut Unit<'_>) -> Result<Source> {
        let mut s = u.source_or_new(&self.source_id, &self.actor).await?;
        if !self.label.is_empty() {
            s.label = self.label;
        }
        u.put_source(s.clone());
        Ok(s)
    }
}

/// The journal's actor for what an agent did.
pub(super) fn actor_of(source_id: &str) -> String {
    format!("agent:{source_id}")
}

async fn hello(u: &mut Unit<'_>, h: HelloInfo) -> Result<(Source, u64)> {
    let actor = actor_of(&h.source_id);
    let mut s = u.source_or_new(&h.source_id, &actor).await?;
    if !h.label.is_empty() {
        s.label = h.label;
    }
    s.hostname = h.hostname;
    s.os = h.os;
    s.agent_version = h.agent_version;
    s.capabilities = h.capabilities;
    s.connected = true;
    s.replica = Some(u.replica.to_string());
    s.last_seen_at = u.now;
    u.journal(JournalEntry {
        source_id: s.source_id.clone(),
        details_json: serde_json::json!({"agent_version": s.agent_version, "hostname": s.hostname}).to_string(),
        ..JournalEntry::new(EventType::SourceConnected, actor)
    });
    u.put_source(s.clone());
    let cursor = u.cursor(&s.source_id).await?;
    Ok((s, cursor))
}

pub(super) async fn disconnected(u: &mut Unit<'_>, id: &str, why: &str) -> Result<()> {
    if let Some(mut s) = u.source(id).await? {
        s.connected = false;
        s.replica = None;
        s.last_seen_at = u.now;
        u.put_source(s);
        u.journal(JournalEntry {
            source_id: id.to_owned(),
            details_json: serde_json::json!({"reason": why}).to_string(),
            ..JournalEntry::new(EventType::SourceDisconnected, actor_of(id))
        });
    }
    Ok(())
}

pub(super) async fn safety_alert(
    u: &mut Unit<'_>,
    source_id: &str,
    reason: String,
    details_json: String,
) -> Result<()> {
    let mut s = u.source_or_new(source_id, &actor_of(source_id)).await?;
    let before = s.safety_state;
    s.safety_state = SafetyState::StoppedForSafety;
    s.safety_reason = reason.clone();
    u.put_source(s);
    u.journal(JournalEntry {
        source_id: source_id.to_owned(),
        status_before: before.as_str().into(),
        status_after: SafetyState::StoppedForSafety.as_str().into(),
        error: reason,
        details_json,
        ..JournalEntry::new(EventType::SourceStoppedForSafety, actor_of(source_id))
    });
    Ok(())
}
