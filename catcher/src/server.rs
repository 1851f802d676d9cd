//! Assembles the catcher: store, writer, workers, gRPC services, health and reflection.
//! `serve` takes a bound listener and a shutdown future, so tests can run it on port 0.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use edgebackup_proto::v1::{
    self as pb, access_service_server::AccessServiceServer, agent_service_server::AgentServiceServer,
    alert_service_server::AlertServiceServer, catalog_service_server::CatalogServiceServer,
    enroll_service_server::EnrollServiceServer, journal_service_server::JournalServiceServer,
    package_service_server::PackageServiceServer, policy_service_server::PolicyServiceServer,
    source_service_server::SourceServiceServer, status_service_server::StatusServiceServer,
};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::domain::{Station, now_ms};
use crate::service::sessions::Sessions;
use crate::service::{self, State};
use crate::store::Store;
use crate::stream::Agents;
use crate::watch::Hub;
use crate::workers::Workers;
use crate::workers::dispatch::Dispatcher;
use crate::workers::scheduler;
use crate::writer::{Bootstrap, Publish, SyncStations, Writer};

/// How long shutdown waits for the background workers.
const WORKERS_DEADLINE: Duration = Duration::from_secs(10);

/// Connects, migrates and bootstraps the database.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database_url, config.database_max_connections).await?;
    store.migrate().await?;
    Ok(store)
}

/// How the writer works: group commit size, the protection delay, and who it is among the
/// replicas sharing its database (a fresh replica id per process).
pub fn writer_settings(config: &Config) -> crate::writer::Settings {
    let secs = |s: u64| i64::try_from(s).unwrap_or(i64::MAX / 1000).saturating_mul(1000);
    let cluster = crate::writer::ClusterSettings {
        replica: uuid::Uuid::now_v7().to_string().into(),
        replica_timeout_ms: secs(config.replica_timeout_secs),
    };
    crate::writer::Settings {
        max_batch: config.batch_max_ops,
        protection_ms: secs(config.protection_delay_secs),
        cluster,
    }
}

/// Where committed changes go: straight to the hub on SQLite (one catcher per file), through
/// the changes feed on PostgreSQL (any number of replicas may share it, now or later).
pub fn publish_mode(store: &Store, hub: Hub, committed: crate::watch::Committed) -> Publish {
    match store.backend() {
        sea_orm::DatabaseBackend::Postgres => Publish::Feed(committed),
        _ => Publish::Hub(hub),
    }
}

/// HTTP/2 connection-level flow-control window (bytes).
const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// Runs the catcher on `listener` until `shutdown` resolves, then drains and returns.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let stop_workers = CancellationToken::new();
    let stop_writer = CancellationToken::new();
    let hub = Hub::new(config.watch_buffer);
    let status_dirty = Arc::new(Notify::new());
    let settings = writer_settings(&config);
    let replica = settings.cluster.replica.clone();
    let committed = crate::watch::Committed::default();
    let publish = publish_mode(&store, hub.clone(), committed.clone());
    let feed_mode = matches!(publish, Publish::Feed(_));
    // The writer's own pool: readers (Watch snapshots, the feed, status) never make a commit —
    // or a lease renewal — wait for a connection, and its connections live on its own runtime.
    let writer_store = Store::connect(&config.database_url, 2).await?;
    let (writer, writer_task) =
        Writer::spawn(writer_store.db().clone(), publish, status_dirty.clone(), settings, stop_writer.clone());

    writer.submit(Bootstrap { preset: config.initial_preset.clone() }).await?;
    let stations = config
        .stations
        .iter()
        .map(|s| Station { station_id: s.id.clone(), tier: s.tier, kind: s.kind, uri: s.uri.clone() })
        .collect();
    writer.submit(SyncStations(stations)).await?;

    let tls_stop = CancellationToken::new();
    let authority = Arc::new(crate::auth::ca::Authority::load_or_create(&config.data_dir.join("ca"))?);
    let cert_files = match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(cert), Some(key)) => crate::auth::tls::CertFiles { cert: cert.clone(), key: key.clone() },
        _ => crate::auth::tls::ensure_loopback_cert(&config.data_dir.join("tls"), &authority)?,
    };
    let tls = crate::auth::tls::ServerTls::new(cert_files, &authority, tls_stop.clone())?;
    if config.protection_delay_secs == 0 {
        tracing::warn!("protection_delay_secs = 0: rule changes and deletions that remove data sooner apply at once");
    }
    if config.allow_plaintext {
        tracing::warn!("allow_plaintext: plaintext is accepted from any peer; TLS must end in front of the catcher");
    }
    let identities = Arc::new(crate::auth::Identities::new(store.clone()));

    let started_at = now_ms();
    let rpo_tally = Arc::new(crate::domain::RpoTally::default());
    let channels =
        Arc::new(crate::notify::Channels::open(&config.channels).map_err(|e| anyhow::anyhow!("channels: {e}"))?);
    let routes: Vec<crate::writer::Route> =
        channels.iter().map(|c| crate::writer::Route { channel: c.name.clone(), kinds: c.kinds.clone() }).collect();
    let deliver = Arc::new(Notify::new());
    writer.metrics().channels(channels.iter().map(|c| c.name.as_str()));
    let state = Arc::new(State {
        config: config.clone(),
        store: store.clone(),
        writer: writer.clone(),
        hub: hub.clone(),
        sessions: Arc::new(Sessions::default()),
        commands_due: Arc::new(Notify::new()),
        pending_due: Arc::new(Notify::new()),
        started_at,
        shutdown: stop_workers.clone(),
        status_cache: crate::status::StatusCache::new(
            Duration::from_secs(1),
            Duration::from_secs(5),
            rpo_tally.clone(),
        ),
        channels: channels.clone(),
        catcher_name: crate::notify::catcher_name(),
        authority: authority.clone(),
        identities: identities.clone(),
        redaction_key: crate::auth::secret::redaction_key(&config.data_dir.join("redaction.key"))?,
        replica: replica.clone(),
        admission: Arc::new(crate::service::admission::Admission::new(
            config.hello_rate_per_sec,
            config.enroll_rate_per_sec,
        )),
        subscribers: Arc::new(crate::service::subscribers::Subscribers::new(
            config.watch_subscriber_bytes,
            config.watch_total_bytes,
            config.watch_streams_per_credential,
        )),
    });
    {
        let sessions = state.sessions.clone();
        let close = move |source: &str| {
            sessions.close(source, pb::StatusCode::Unauthenticated, "the agent's credential was revoked");
        };
        tokio::spawn(identities.clone().watch_revocations(close, tls_stop.clone()));
    }

    // A worker that dies takes the catcher down with it (see `workers`).
    let worker_died = CancellationToken::new();
    let mut workers = Workers::new(stop_workers.clone(), worker_died.clone());
    let died = worker_died.clone();
    let stop = workers.stop_token();

    // Replicas: this one beats, and holds the singleton lease when nobody else does (alone on
    // its database, at once).
    let address = listener.local_addr()?.to_string();
    let (beats, lead) = crate::workers::lease::Beats::start(
        writer.clone(),
        address,
        started_at,
        Duration::from_secs(config.lease_ttl_secs),
        Duration::from_secs(config.changes_keep_secs),
    )
    .await?;
    let mut beats = beats;
    let sessions = state.sessions.clone();
    beats.on_forgotten = Box::new(move || {
        let n = sessions.close_all(pb::StatusCode::Unavailable, "this catcher replica was presumed dead; reconnect");
        tracing::warn!(closed = n, "agent streams closed: the lease holder marked them disconnected");
    });
    tracing::info!(%replica, leader = lead.term().is_some(), "catcher replica started");
    workers.spawn("replica heartbeat", beats.run(stop.clone()));
    if feed_mode {
        let sessions = state.sessions.clone();
        let moved = state.sessions.clone();
        let w = writer.clone();
        let feed = crate::feed::Feed {
            store: store.clone(),
            hub: hub.clone(),
            committed,
            replica: replica.clone(),
            hooks: crate::feed::Hooks {
                status_dirty: status_dirty.clone(),
                commands_due: state.commands_due.clone(),
                pending_due: state.pending_due.clone(),
                foreign_commit: Box::new(move || w.views_changed()),
                rules_changed: Box::new(move |rules| crate::service::policy::broadcast_rules(&sessions, rules)),
                source_moved: Box::new(move |v| {
                    // The agent's stream is on another replica now: a session here is stale.
                    if moved.close(
                        &v.source.source_id,
                        pb::StatusCode::Aborted,
                        "the agent connected to another catcher replica",
                    ) {
                        tracing::info!(source_id = %v.source.source_id, "stream moved to another replica; closed here");
                    }
                }),
            },
        };
        workers.spawn("changes feed", feed.run(stop.clone()));
    }
    {
        let store = store.clone();
        let stop = stop.clone();
        workers.spawn("checkpoints", async move { store.checkpoints(Duration::from_millis(250), stop).await });
    }
    workers.spawn(
        "status publisher",
        crate::status::publisher(
            store.clone(),
            hub.clone(),
            status_dirty,
            started_at,
            rpo_tally.clone(),
            Duration::from_millis(100),
            stop.clone(),
        ),
    );
    let dispatcher = Dispatcher {
        store: store.clone(),
        writer: writer.clone(),
        delivery: state.sessions.clone(),
        lease: Duration::from_secs(config.command_lease_secs),
        replica: replica.clone(),
    };
    workers.spawn("command dispatcher", dispatcher.run(state.commands_due.clone(), stop.clone()));
    {
        let sessions = state.sessions.clone();
        let rules_changed =
            move |rules: &[crate::rules::RuleSet]| crate::service::policy::broadcast_rules(&sessions, rules);
        workers.spawn(
            "pending changes",
            crate::workers::protection::run(
                writer.clone(),
                lead.clone(),
                state.pending_due.clone(),
                rules_changed,
                stop.clone(),
            ),
        );
    }
    workers.spawn(
        "heartbeats",
        crate::stream::flush_heartbeats(
            state.sessions.clone(),
            writer.clone(),
            Duration::from_secs(config.heartbeat_interval_secs.clamp(1, 10)),
            stop.clone(),
        ),
    );
    workers.spawn(
        "restore drills",
        scheduler::drills(
            writer.clone(),
            lead.clone(),
            Duration::from_secs(config.restore_drill_interval_secs),
            config.restore_drill_sample,
            stop.clone(),
        ),
    );
    workers.spawn(
        "compaction",
        crate::workers::compaction::run(
            store.clone(),
            writer.clone(),
            lead.clone(),
            crate::workers::compaction::Policy {
                interval: Duration::from_secs(config.compaction_interval_secs),
                min_age: Duration::from_secs(config.compaction_min_age_secs),
                max_live_percent: config.compaction_max_live_percent,
            },
            stop.clone(),
        ),
    );
    workers.spawn(
        "tier scheduler",
        scheduler::run(
            store.clone(),
            writer.clone(),
            lead.clone(),
            Duration::from_millis(config.scheduler_interval_ms),
            config.scheduler_batch,
            stop.clone(),
        ),
    );
    workers.spawn("memory release", crate::workers::memory::run(stop.clone()));
    {
        use crate::workers::alerts::{Evaluator, Settings};
        let settings = Settings {
            interval: Duration::from_secs(config.alert_interval_secs),
            agent_silent_ms: i64::try_from(config.alert_agent_silent_secs)
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000),
            move_failures: config.alert_move_failures,
            channel_failures: config.alert_channel_failures,
            disabled: config.alerts_disabled.clone(),
            journal_verify_every: Duration::from_secs(config.journal_verify_interval_secs),
            rpo_by_source: config.rpo_by_source.clone(),
            routes,
            per_source_metrics: config.metrics_per_source,
        };
        let evaluator = Evaluator::new(
            store.clone(),
            writer.clone(),
            settings,
            rpo_tally,
            writer.metrics().clone(),
            deliver.clone(),
            lead.clone(),
        );
        workers.spawn("alert evaluator", evaluator.run(stop.clone()));
        let deliverer = crate::workers::notify::Deliverer {
            store: store.clone(),
            writer: writer.clone(),
            channels,
            metrics: writer.metrics().clone(),
            retry_base: Duration::from_secs(config.notification_retry_secs),
            max_age_ms: i64::try_from(config.notification_max_age_secs).unwrap_or(i64::MAX / 1000).saturating_mul(1000),
            catcher: state.catcher_name.clone(),
            wake: deliver,
            lead: lead.clone(),
        };
        workers.spawn("notification delivery", deliverer.run(stop.clone()));
    }
    if let Some(addr) = config.metrics_listen {
        let metrics =
            tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("metrics_listen {addr}: {e}"))?;
        tracing::info!(addr = %metrics.local_addr()?, "metrics served at /metrics");
        tokio::spawn(crate::metrics_server::serve(metrics, state.clone(), stop.clone()));
    }
    let supervisor = tokio::spawn(workers.supervise(WORKERS_DEADLINE));

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<PackageServiceServer<service::packages::Packages>>().await;
    health_reporter.set_serving::<AgentServiceServer<Agents>>().await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(edgebackup_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(edgebackup_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let max = config.max_message_bytes;
    macro_rules! limited {
        ($server:ident, $svc:expr) => {
            $server::new($svc).max_decoding_message_size(max).max_encoding_message_size(max.max(16 * 1024 * 1024))
        };
    }
    let addr = listener.local_addr()?;
    tracing::info!(%addr, database = store.backend_name(), "catcher serving");

    let stop_on_signal = stop_workers.clone();
    let router = tonic::transport::Server::builder()
        .layer(crate::auth::policy::AuthLayer::new(identities))
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        // h2 closes a connection whose small DATA frames, received and not yet read, exceed
        // half its connection window (GOAWAY ENHANCE_YOUR_CALM "too_many_data_frames"). Many
        // agents behind one proxy each send Hello and heartbeats, one message per frame,
        // before their streams are read: 1 MiB (hyper's default) dropped them all at once.
        // The window is credit, not memory held: an idle connection costs nothing more.
        .initial_connection_window_size(Some(CONNECTION_WINDOW))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(limited!(AgentServiceServer, Agents(state.clone())))
        .add_service(limited!(PackageServiceServer, service::packages::Packages(state.clone())))
        .add_service(limited!(SourceServiceServer, service::sources::Sources(state.clone())))
        .add_service(limited!(PolicyServiceServer, service::policy::Policy(state.clone())))
        .add_service(limited!(JournalServiceServer, service::journal::Journal(state.clone())))
        .add_service(limited!(StatusServiceServer, service::status::StatusApi(state.clone())))
        .add_service(limited!(CatalogServiceServer, service::catalog::Catalog(state.clone())))
        .add_service(limited!(EnrollServiceServer, service::access::Enrollment(state.clone())))
        .add_service(limited!(AccessServiceServer, service::access::Access(state.clone())))
        .add_service(limited!(AlertServiceServer, service::alerts::Alerts(state.clone())));
    let limits = crate::listener::Limits {
        max_connections: config.max_connections,
        handshake_timeout: Duration::from_secs(config.handshake_timeout_secs),
        tls: Some(tls.config()),
        allow_plaintext: config.allow_plaintext,
    };
    let stop_accepting = CancellationToken::new();
    let incoming = crate::listener::incoming(listener, limits, stop_accepting.clone());
    let serve_result = router
        .serve_with_incoming_shutdown(incoming, async move {
            tokio::select! {
                () = shutdown => {}
                () = worker_died.cancelled() => {}
            }
            tracing::info!("shutting down: closing streams, draining writes");
            // Ending the long-lived streams lets the server's graceful shutdown complete.
            stop_on_signal.cancel();
        })
        .await;

    stop_accepting.cancel();
    tls_stop.cancel();
    stop_workers.cancel();
    let _ = supervisor.await;
    drop(state);
    drop(writer);
    stop_writer.cancel();
    let _ = writer_task.await;
    writer_store.close().await?;
    store.close().await?;
    tracing::info!("catcher stopped");
    serve_result?;
    if died.is_cancelled() {
        anyhow::bail!("a background worker died (see the log above); the catcher stopped");
    }
    Ok(())
}
