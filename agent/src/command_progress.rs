//! Progress of running commands on its way to the catcher: the restore tells the board how far
//! it is (from any thread), at most once per `EVERY` per command (phase changes at once); the
//! stream sends what is on the board when told it changed. Not durable and not sequenced: the
//! command's result is the event that counts, and a report lost with a connection is replaced.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edgebackup_proto::v1 as pb;
use tokio::sync::Notify;

use crate::restore::state::{OnProgress, Phase, Progress};

/// The newest report per command is published at most this often.
pub const EVERY: Duration = Duration::from_secs(1);

/// The newest unsent report of each running command.
#[derive(Default)]
pub struct Board {
    latest: Mutex<HashMap<String, pb::CommandProgress>>,
    changed: Notify,
}

impl Board {
    fn publish(&self, p: pb::CommandProgress) {
        self.latest.lock().expect("progress board").insert(p.command_id.clone(), p);
        self.changed.notify_one();
    }

    /// Waits until something was published since the last `take`.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// What was published and not sent yet.
    pub fn take(&self) -> Vec<pb::CommandProgress> {
        self.latest.lock().expect("progress board").drain().map(|(_, p)| p).collect()
    }

    /// A command is over: its result says the rest.
    pub fn forget(&self, command_id: &str) {
        self.latest.lock().expect("progress board").remove(command_id);
    }

    /// A progress callback for command `command_id` that publishes here, paced.
    pub fn reporter(self: &Arc<Self>, command_id: &str) -> OnProgress {
        let board = self.clone();
        let id = command_id.to_owned();
        let last: Mutex<Option<(Instant, Phase)>> = Mutex::new(None);
        board.publish(wire(&id, Progress::default()));
        Arc::new(move |p: Progress| {
            let now = Instant::now();
            {
                let mut last = last.lock().expect("progress pacing");
                let due = last.is_none_or(|(at, phase)| phase != p.phase || now.duration_since(at) >= EVERY);
                if !due {
                    return;
                }
                *last = Some((now, p.phase));
            }
            board.publish(wire(&id, p));
        })
    }
}

fn wire(command_id: &str, p: Progress) -> pb::CommandProgress {
    pb::CommandProgress {
        command_id: command_id.to_owned(),
        phase: match p.phase {
            Phase::Planning => pb::CommandPhase::Planning,
            Phase::Transferring => pb::CommandPhase::Transferring,
            Phase::Finishing => pb::CommandPhase::Finishing,
        } as i32,
        files_done: p.files,
        files_total: p.total_files,
        bytes_done: p.bytes,
        bytes_total: p.total_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_paced_but_phase_changes_go_at_once() {
        let board = Arc::new(Board::default());
        let on = board.reporter("c1");
        assert_eq!(board.take()[0].phase, pb::CommandPhase::Planning as i32, "planning is shown at once");
        let step = |bytes, phase| Progress { bytes, total_bytes: 100, files: 0, total_files: 2, phase };
        on(step(10, Phase::Transferring));
        on(step(20, Phase::Transferring));
        let sent = board.take();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].bytes_done, 10, "the second report within a second waits");
        on(step(100, Phase::Finishing));
        let sent = board.take();
        assert_eq!((sent[0].bytes_done, sent[0].phase), (100, pb::CommandPhase::Finishing as i32));
        on(step(100, Phase::Finishing));
        board.forget("c1");
        assert!(board.take().is_empty());
    }
}
