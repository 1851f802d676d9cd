//! Criterion benches for the hot paths, through the crates' public APIs: the writer applying a
//! batch of agent events (group commit on SQLite), the list/status/projection queries of the
//! store over a generated database, and the agent's packaging pipeline (`agent::archive::build`).
//!
//! `cargo bench -p edge-bench --bench hot_paths`; `EDGE_BENCH_PACKAGES` sets the store size
//! (default 100000; the 1,000,000 figures come from edge-loadgen, see docs/BENCHMARKS.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use catcher::domain::{PackageStatus, PackageType, Tier, Tool};
use catcher::store::{PackageFilter, Store};
use catcher::watch::Hub;
use catcher::writer::{AgentEvent, AgentEvents, Bootstrap, Completion, NewPackage, ProgressUpdate, Writer};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}?mode=rwc", dir.path().join("catcher.db").display())
}

/// `packages` packages as ingest, 2 × progress, complete: 4 events each, sequenced from `seq`.
fn events(seq: &AtomicU64, packages: usize) -> Vec<(u64, catcher::error::Result<AgentEvent>)> {
    let mut out = Vec::with_capacity(packages * 4);
    for _ in 0..packages {
        let id = uuid::Uuid::now_v7().to_string();
        let sha = format!("{:064x}", seq.load(Ordering::Relaxed));
        let size = 1 << 20;
        let mut push = |e| out.push((seq.fetch_add(1, Ordering::Relaxed) + 1, Ok(e)));
        push(AgentEvent::Ingest(NewPackage {
            package_id: id.clone(),
            path: format!("/bench/{id}"),
            package_type: PackageType::AppLogs,
            size_bytes: size,
            sha256: sha.clone(),
            tool: Tool::Native,
            made_at: None,
        }));
        for percent in [33, 66] {
            push(AgentEvent::Progress(ProgressUpdate {
                package_id: id.clone(),
                bytes_done: size * u64::from(percent) / 100,
                progress_percent: percent,
                attempt: 0,
            }));
        }
        push(AgentEvent::Complete(Completion::verified_on(&id, &sha, size, "hot-1", None)));
    }
    out
}

fn writer_apply(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, writer) = rt.block_on(async {
        let store = Store::connect(&sqlite_url(&dir), 4).await.expect("connect");
        store.migrate().await.expect("migrate");
        let (writer, _task) = Writer::spawn(
            store.db().clone(),
            catcher::writer::Publish::Hub(Hub::new(1024)),
            Arc::new(Notify::new()),
            catcher::writer::Settings::batch(4096),
            CancellationToken::new(),
        );
        writer.submit(Bootstrap { preset: "cloud".into() }).await.expect("bootstrap");
        (store, writer)
    });
    let mut g = c.benchmark_group("writer");
    g.sample_size(20);
    // One stream's gathered frames: 256 events in one op (one transaction, one fsync).
    let seq = AtomicU64::new(0);
    g.throughput(Throughput::Elements(256));
    g.bench_function("agent_events_1_stream_x_256", |b| {
        b.iter_batched(
            || events(&seq, 64),
            |evs| {
                rt.block_on(async {
                    let out = writer
                        .submit(AgentEvents { source_id: "bench-0".into(), session_id: "s".into(), events: evs })
                        .await;
                    assert!(matches!(out, Ok(ref o) if o.rejected.is_empty()), "{out:?}");
                })
            },
            BatchSize::SmallInput,
        )
    });
    // 16 streams submitting at once: group commit folds them into few transactions.
    let seqs: Vec<AtomicU64> = (0..16).map(|_| AtomicU64::new(0)).collect();
    g.throughput(Throughput::Elements(16 * 64));
    g.bench_function("agent_events_16_streams_x_64", |b| {
        b.iter_batched(
            || seqs.iter().map(|s| events(s, 16)).collect::<Vec<_>>(),
            |batches| {
                rt.block_on(async {
                    let submits = batches.into_iter().enumerate().map(|(i, evs)| {
                        writer.submit(AgentEvents {
                            source_id: format!("bench-m{i}"),
                            session_id: format!("s{i}"),
                            events: evs,
                        })
                    });
                    for out in futures::future::join_all(submits).await {
                        assert!(matches!(out, Ok(ref o) if o.rejected.is_empty()), "{out:?}");
                    }
                })
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
    drop(store);
}

fn store_queries(c: &mut Criterion) {
    let packages: u64 = std::env::var("EDGE_BENCH_PACKAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let url = sqlite_url(&dir);
    let o = edge_bench::datagen::Options { database_url: url.clone(), packages, sources: 200, ..Default::default() };
    rt.block_on(edge_bench::datagen::fill(&o, |_| {})).expect("generate packages");
    let store = rt.block_on(Store::connect(&url, 4)).expect("connect");
    let mut g = c.benchmark_group(format!("store_{packages}"));
    g.sample_size(30);
    let filters = [
        ("list_all", PackageFilter::default()),
        ("list_status_failed", PackageFilter { status: Some(PackageStatus::Failed), ..Default::default() }),
        ("list_source", PackageFilter { source_id: Some("edge-0007".into()), ..Default::default() }),
        ("list_tier_cold", PackageFilter { tier: Some(Some(Tier::Cold)), ..Default::default() }),
        ("list_path_prefix", PackageFilter { path_prefix: Some("/data/audit_logs/".into()), ..Default::default() }),
        // The dashboard's search box: a common path word, and one no path has (a full scan).
        ("search_path_word", PackageFilter { query: Some("audit".into()), ..Default::default() }),
        ("search_no_match", PackageFilter { query: Some("no-such-thing".into()), ..Default::default() }),
        (
            "list_status_failed_type_cache",
            PackageFilter {
                status: Some(PackageStatus::Failed),
                package_type: Some(PackageType::Cache),
                ..Default::default()
            },
        ),
    ];
    for (name, f) in &filters {
        g.bench_function(*name, |b| b.iter(|| rt.block_on(store.list_packages(f, None, 100)).expect("list")));
    }
    g.bench_function("counters", |b| b.iter(|| rt.block_on(store.counters()).expect("counters")));
    let now = catcher::domain::now_ms();
    g.bench_function("due_groups_30d", |b| {
        b.iter(|| rt.block_on(store.due_groups(now, now + 30 * 86_400_000, 100)).expect("due groups"))
    });
    g.finish();
}

fn packaging(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut files = Vec::new();
    let mut total = 0u64;
    let mut rng = 1u64;
    for i in 0..48 {
        let size = 256 * 1024 + (i % 8) * 128 * 1024;
        // Mixed: a third incompressible, the rest text-like logs.
        let bytes: Vec<u8> = if i % 3 == 0 {
            (0..size).map(|_| edge_bench::datagen::splitmix(&mut rng) as u8).collect()
        } else {
            let line = format!("2026-01-01T00:00:{i:02}Z INFO worker={i} request handled in 12 ms status=200\n");
            line.bytes().cycle().take(size as usize).collect()
        };
        let name = format!("f{i:03}.dat");
        std::fs::write(dir.path().join(&name), &bytes).expect("write input");
        total += size;
        files.push(name);
    }
    let mut g = c.benchmark_group("agent_archive");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(total));
    g.bench_function("build_zstd3_mixed", |b| {
        b.iter(|| agent::archive::build(dir.path(), &files, std::io::sink(), 3, &mut |_| {}).expect("build"))
    });
    g.finish();
}

criterion_group!(benches, writer_apply, store_queries, packaging);
criterion_main!(benches);
