//! Progress reports of running commands: validated, at most one per command every
//! `MIN_INTERVAL` (a change of phase goes at once) and `MAX_PER_SECOND` in all per session,
//! handed to the writer without waiting for the commit (they are not events: nothing is
//! acknowledged, a lost one is replaced by the next).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use edgebackup_proto::v1 as pb;

use crate::domain::{CommandPhase, CommandProgress};
use crate::error::{Error, Result};
use crate::service::{Shared, validate as v};
use crate::writer::CommandsProgressed;

/// The newest report of a command is written at most this often.
const MIN_INTERVAL: Duration = Duration::from_millis(500);
/// Commands one session tracks; an agent runs a handful at once.
const MAX_TRACKED: usize = 64;
/// Reports one session may have written per second, whatever their commands.
const MAX_PER_SECOND: u32 = 8;

/// Per session: when each command's progress was last written, and in which phase.
#[derive(Default)]
pub struct Limiter {
    last: HashMap<String, (Instant, CommandPhase)>,
    /// The current second's start and the reports written in it.
    window: Option<(Instant, u32)>,
}

impl Limiter {
    /// Validates `reports` (an invalid one is dropped, with a warning naming the field) and
    /// queues the newest per command that is due.
    pub async fn submit(&mut self, state: &Shared, source_id: &str, reports: Vec<pb::CommandProgress>) -> Result<()> {
        if reports.is_empty() {
            return Ok(());
        }
        let due = self.admit(Instant::now(), source_id, reports);
        if due.is_empty() {
            return Ok(());
        }
        // The answer (how many were for no open command of this source) is not waited for.
        drop(state.writer.enqueue(CommandsProgressed { source_id: source_id.to_owned(), reports: due }).await?);
        Ok(())
    }

    /// The reports to write now: valid, the newest per command, paced.
    fn admit(
        &mut self,
        now: Instant,
        source_id: &str,
        reports: Vec<pb::CommandProgress>,
    ) -> Vec<(String, CommandProgress)> {
        let mut due: Vec<(String, CommandProgress)> = Vec::new();
        for r in reports {
            match progress_in(r) {
                Ok((id, p)) => match due.iter_mut().find(|(d, _)| *d == id) {
                    Some(slot) => slot.1 = p,
                    None => due.push((id, p)),
                },
                Err(e) => tracing::warn!(source_id, error = %e, "command progress dropped"),
            }
        }
        due.retain(|(id, p)| {
            self.last.get(id).is_none_or(|(t, phase)| *phase != p.phase || now.duration_since(*t) >= MIN_INTERVAL)
        });
        let (start, written) = match self.window {
            Some((start, n)) if now.duration_since(start) < Duration::from_secs(1) => (start, n),
            _ => (now, 0),
        };
        due.truncate(MAX_PER_SECOND.saturating_sub(written) as usize);
        self.window = Some((start, written + due.len() as u32));
        if self.last.len() + due.len() > MAX_TRACKED {
            self.last.retain(|_, (t, _)| now.duration_since(*t) < MIN_INTERVAL);
        }
        for (id, p) in &due {
            self.last.insert(id.clone(), (now, p.phase));
        }
        due
    }
}

pub(super) fn progress_in(r: pb::CommandProgress) -> Result<(String, CommandProgress)> {
    let id = v::id("command_progress.command_id", &r.command_id)?;
    let phase = match pb::CommandPhase::try_from(r.phase) {
        Ok(pb::CommandPhase::Planning) => CommandPhase::Planning,
        Ok(pb::CommandPhase::Transferring) => CommandPhase::Transferring,
        Ok(pb::CommandPhase::Finishing) => CommandPhase::Finishing,
        _ => return Err(Error::invalid("command_progress.phase", format!("unknown phase {}", r.phase))),
    };
    if r.files_done > r.files_total {
        return Err(Error::invalid("command_progress.files_done", "more than files_total"));
    }
    if r.bytes_done > r.bytes_total {
        return Err(Error::invalid("command_progress.bytes_done", "more than bytes_total"));
    }
    let p = CommandProgress {
        phase,
        files_done: r.files_done,
        files_total: r.files_total,
        bytes_done: r.bytes_done,
        bytes_total: r.bytes_total,
        at: 0,
    };
    Ok((id, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(id: &str, phase: pb::CommandPhase, files_done: u64) -> pb::CommandProgress {
        pb::CommandProgress {
            command_id: id.into(),
            phase: phase as i32,
            files_done,
            files_total: 10,
            ..Default::default()
        }
    }

    #[test]
    fn the_newest_report_per_command_is_paced_phase_changes_pass_and_a_session_is_capped() {
        use pb::CommandPhase::{Finishing, Transferring};
        let mut l = Limiter::default();
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let due = l.admit(t0, "s", vec![report("a", Transferring, 1), report("a", Transferring, 2)]);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].1.files_done, 2, "the newest of a batch");
        assert!(l.admit(ms(100), "s", vec![report("a", Transferring, 3)]).is_empty(), "too soon");
        assert_eq!(l.admit(ms(200), "s", vec![report("a", Finishing, 10)]).len(), 1, "a new phase goes at once");
        assert_eq!(l.admit(ms(800), "s", vec![report("a", Finishing, 10)]).len(), 1, "due again");
        let bad = pb::CommandProgress { files_done: 11, ..report("b", Transferring, 0) };
        assert!(l.admit(ms(900), "s", vec![bad]).is_empty(), "more done than in all");
        assert!(
            l.admit(ms(900), "s", vec![pb::CommandProgress { phase: 0, ..report("b", Transferring, 1) }]).is_empty()
        );
        // Many commands at once: at most MAX_PER_SECOND reports a second for the session.
        let many: Vec<_> = (0..20).map(|i| report(&format!("c{i}"), Transferring, 1)).collect();
        assert_eq!(l.admit(ms(1_500), "s", many.clone()).len(), MAX_PER_SECOND as usize);
        assert!(l.admit(ms(1_600), "s", many.clone()).is_empty(), "the second's budget is spent");
        assert!(!l.admit(ms(2_600), "s", many).is_empty(), "a new second");
        assert!(l.last.len() <= MAX_TRACKED);
    }
}
