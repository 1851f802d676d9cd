//! Command dispatcher: delivers stored commands to connected agents and re-sends them when
//! their lease runs out or the agent reconnects, until a result arrives.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::domain::{Command, Millis, now_ms};
use crate::error::Result;
use crate::store::Store;
use crate::writer::{CommandsSent, Writer};

/// Also wakes up this often, so expired leases are noticed without a nudge.
const TICK: Duration = Duration::from_secs(1);
/// Most commands sent per round.
const ROUND: u64 = 1000;

/// Where commands go: the live agent streams (implemented by `service::sessions::Sessions`).
pub trait Delivery: Send + Sync {
    /// Whether any agent is connected at all.
    fn any_connected(&self) -> bool;
    /// Whether `source_id` has a live stream.
    fn is_connected(&self, source_id: &str) -> bool;
    /// Sources that connected since the last call.
    fn take_fresh(&self) -> HashSet<String>;
    /// Sends `c` (leased until `lease_until`) to its source's stream; false if it is gone.
    fn send_command(&self, c: &Command, lease_until: Millis) -> bool;
}

pub struct Dispatcher {
    pub store: Store,
    pub writer: Writer,
    pub delivery: Arc<dyn Delivery>,
    pub lease: Duration,
    /// This replica: it delivers to the agents whose streams it holds.
    pub replica: Arc<str>,
}

impl Dispatcher {
    pub async fn run(self, wake: Arc<Notify>, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(TICK) => {}
                () = stop.cancelled() => return,
            }
            if let Err(e) = self.dispatch().await {
                tracing::warn!(error = %e, "command dispatch failed; retrying");
            }
        }
    }

    /// One round: every due command of a connected agent is leased, then sent.
    pub async fn dispatch(&self) -> Result<usize> {
        let fresh: Vec<String> = self.delivery.take_fresh().into_iter().collect();
        if !self.delivery.any_connected() {
            return Ok(0);
        }
        let now = now_ms();
        let due: Vec<Command> = self
            .store
            .due_commands(now, &fresh, ROUND, &self.replica)
            .await?
            .into_iter()
            .filter(|c| self.delivery.is_connected(&c.source_id))
            .collect();
        if due.is_empty() {
            return Ok(0);
        }
        // Claim the lease before delivering: a result that arrives at once then finds the command
        // leased, never pending; a delivery that fails is retried when the lease runs out.
        let lease_until = now + Millis::try_from(self.lease.as_millis()).unwrap_or(60_000);
        self.writer
            .submit(CommandsSent { ids: due.iter().map(|c| c.command_id.clone()).collect(), lease_until })
            .await?;
        for c in &due {
            if !self.delivery.send_command(c, lease_until) {
                tracing::debug!(command_id = c.command_id, "agent went away before delivery; the lease will expire");
            }
        }
        tracing::debug!(count = due.len(), "commands sent");
        Ok(due.len())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use edgebackup_testkit::db::{Db, TestDb};
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::domain::{Capability, CommandArgs};
    use crate::watch::Hub;
    use crate::writer::{CreateCommand, Hello, HelloInfo, NewCommand, RegisterSource};

    /// Delivery to the sources in `online`, recording what was sent.
    struct Fake {
        online: HashSet<String>,
        sent: Mutex<Vec<String>>,
    }

    impl Delivery for Fake {
        fn any_connected(&self) -> bool {
            !self.online.is_empty()
        }
        fn is_connected(&self, source_id: &str) -> bool {
            self.online.contains(source_id)
        }
        fn take_fresh(&self) -> HashSet<String> {
            HashSet::new()
        }
        fn send_command(&self, c: &Command, _: Millis) -> bool {
            self.sent.lock().unwrap().push(c.command_id.clone());
            true
        }
    }

    async fn commands_for_offline_sources_do_not_starve_an_online_one(kind: Db) {
        let db = TestDb::new(kind).await;
        let store = Store::connect(&db.url, 4).await.unwrap();
        store.migrate().await.unwrap();
        let stop = CancellationToken::new();
        let settings = crate::writer::Settings::batch(512);
        let me = settings.cluster.replica.clone();
        let (writer, task) = Writer::spawn(
            store.db().clone(),
            crate::writer::Publish::Hub(Hub::new(16)),
            Arc::new(Notify::new()),
            settings,
            stop.clone(),
        );
        // Another replica on the same database, holding another agent's stream.
        let (other, other_task) = Writer::spawn(
            store.db().clone(),
            crate::writer::Publish::Hub(Hub::new(16)),
            Arc::new(Notify::new()),
            crate::writer::Settings::batch(512),
            stop.clone(),
        );
        let pause = |source: &str| {
            CreateCommand(NewCommand {
                source_id: source.into(),
                package_id: String::new(),
                args: CommandArgs::Pause,
                actor: "test".into(),
            })
        };
        // 2,000 older commands for 200 sources that are not connected...
        for s in 0..200 {
            let source = format!("offline-{s:03}");
            writer
                .submit(RegisterSource { source_id: source.clone(), label: String::new(), actor: "test".into() })
                .await
                .unwrap();
            let queued = (0..10).map(|_| writer.enqueue(pause(&source)));
            for pending in futures::future::join_all(queued).await {
                pending.unwrap().await.unwrap();
            }
        }
        let hello = |id: &str| HelloInfo {
            source_id: id.into(),
            label: String::new(),
            hostname: "h".into(),
            os: "linux".into(),
            agent_version: "t".into(),
            capabilities: vec![Capability::Backup],
        };
        // ...1,500 for an agent connected to the other replica...
        other.submit(Hello(hello("elsewhere"))).await.unwrap();
        let queued = (0..1500).map(|_| writer.enqueue(pause("elsewhere")));
        for pending in futures::future::join_all(queued).await {
            pending.unwrap().await.unwrap();
        }
        // ...and one for an agent connected here.
        writer.submit(Hello(hello("online"))).await.unwrap();
        let wanted = writer.submit(pause("online")).await.unwrap();
        // Even a delivery that would take both: the other replica's agent is filtered in SQL.
        let online = HashSet::from(["online".to_owned(), "elsewhere".to_owned()]);
        let fake = Arc::new(Fake { online, sent: Mutex::new(Vec::new()) });
        let d = Dispatcher {
            store: store.clone(),
            writer: writer.clone(),
            delivery: fake.clone(),
            lease: Duration::from_secs(60),
            replica: me,
        };
        assert_eq!(d.dispatch().await.unwrap(), 1);
        assert_eq!(*fake.sent.lock().unwrap(), vec![wanted.command_id.clone()]);
        // leased now: the next round has nothing due
        assert_eq!(d.dispatch().await.unwrap(), 0);
        stop.cancel();
        task.await.unwrap();
        other_task.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_commands_for_offline_sources_do_not_starve_an_online_one() {
        commands_for_offline_sources_do_not_starve_an_online_one(Db::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_commands_for_offline_sources_do_not_starve_an_online_one() {
        commands_for_offline_sources_do_not_starve_an_online_one(Db::Postgres).await;
    }
}
