//! A scripted agent: speaks the stream protocol frame by frame, so tests control every sequence number.

use std::time::Duration;

use edgebackup_proto::v1 as pb;
use pb::{
    agent_event::Kind, agent_message::Body, agent_service_client::AgentServiceClient, catcher_message::Body as Out,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

pub struct ScriptedAgent {
    tx: mpsc::Sender<pb::AgentMessage>,
    rx: tonic::Streaming<pb::CatcherMessage>,
    pub welcome: pb::Welcome,
    /// Frames received while waiting for something else (commands, rejections).
    pub seen: Vec<pb::CatcherMessage>,
}

impl ScriptedAgent {
    /// Enrolls `source_id` (a mover when it claims the capability) and connects.
    pub async fn enroll(catcher: &crate::harness::Catcher, source_id: &str, capabilities: &[pb::Capability]) -> Self {
        let mover = capabilities.contains(&pb::Capability::Mover);
        let ch = crate::harness::agent_channel(catcher, source_id, mover).await;
        Self::connect(ch, source_id, capabilities).await
    }

    pub async fn connect(ch: Channel, source_id: &str, capabilities: &[pb::Capability]) -> Self {
        let (tx, out) = mpsc::channel(4096);
        let hello = pb::Hello {
            source_id: source_id.into(),
            agent_version: "test-1".into(),
            hostname: "host-".to_owned() + source_id,
            os: "linux".into(),
            capabilities: capabilities.iter().map(|c| *c as i32).collect(),
            ..Default::default()
        };
        tx.send(pb::AgentMessage { body: Some(Body::Hello(hello)) }).await.unwrap();
        let mut rx = AgentServiceClient::new(ch).connect(ReceiverStream::new(out)).await.expect("Connect").into_inner();
        let first = tokio::time::timeout(Duration::from_secs(10), rx.message())
            .await
            .expect("welcome in time")
            .expect("stream ok");
        let welcome = match first.and_then(|m| m.body) {
            Some(Out::Welcome(w)) => w,
            other => panic!("expected Welcome, got {other:?}"),
        };
        Self { tx, rx, welcome, seen: Vec::new() }
    }

    pub async fn send(&self, seq: u64, kind: Kind) {
        self.send_at(seq, None, kind).await;
    }

    /// An event the agent recorded at `at` (its clock).
    pub async fn send_at(&self, seq: u64, at: Option<prost_types::Timestamp>, kind: Kind) {
        let e = pb::AgentEvent { seq, at, kind: Some(kind) };
        self.tx.send(pb::AgentMessage { body: Some(Body::Event(e)) }).await.expect("stream open");
    }

    /// A progress report of a running command (not an event: no sequence, no ack).
    pub async fn progress(&self, p: pb::CommandProgress) {
        self.tx.send(pb::AgentMessage { body: Some(Body::CommandProgress(p)) }).await.expect("stream open");
    }

    pub async fn heartbeat(&self) {
        let _ = self.tx.send(pb::AgentMessage { body: Some(Body::Heartbeat(pb::Heartbeat { sent_at: None })) }).await;
    }

    /// Next frame within `secs`; None when the stream ended.
    pub async fn next(&mut self, secs: u64) -> Option<pb::CatcherMessage> {
        match tokio::time::timeout(Duration::from_secs(secs), self.rx.message()).await {
            Ok(Ok(m)) => m,
            Ok(Err(status)) => {
                eprintln!("the stream ended: {status:?}");
                None
            }
            Err(_) => panic!("no frame within {secs} s"),
        }
    }

    /// The next frame (None when the stream ended), without a deadline of its own.
    pub async fn next_frame(&mut self) -> Option<pb::CatcherMessage> {
        self.rx.message().await.ok().flatten()
    }

    /// Waits for an Ack covering `seq`, keeping other frames in `seen`.
    pub async fn wait_ack(&mut self, seq: u64) {
        loop {
            match self.next(15).await.and_then(|m| m.body.clone().map(|b| (m, b))) {
                Some((_, Out::Ack(a))) if a.applied_seq >= seq => return,
                Some((_, Out::Ack(_))) => {}
                Some((m, _)) => self.seen.push(m),
                None => panic!(
                    "stream ended before ack {seq}; last frames: {:?}",
                    self.seen.iter().rev().take(2).collect::<Vec<_>>()
                ),
            }
        }
    }

    /// Waits for a Command frame.
    pub async fn wait_command(&mut self, secs: u64) -> pb::Command {
        if let Some(i) = self.seen.iter().position(|m| matches!(m.body, Some(Out::Command(_))))
            && let Some(Out::Command(c)) = self.seen.remove(i).body
        {
            return c;
        }
        loop {
            match self.next(secs).await.and_then(|m| m.body) {
                Some(Out::Command(c)) => return c,
                Some(_) => {}
                None => panic!("stream ended while waiting for a command"),
            }
        }
    }

    pub fn rejections(&self) -> Vec<pb::EventRejected> {
        self.seen
            .iter()
            .filter_map(|m| match &m.body {
                Some(Out::EventRejected(r)) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }
}

pub fn ingest(id: &str, path: &str, size: u64, sha: &str) -> Kind {
    Kind::Ingest(pb::Ingest {
        package_id: id.into(),
        path: path.into(),
        package_type: pb::PackageType::UserData as i32,
        size_bytes: size,
        sha256: sha.into(),
        tool: pb::Tool::Native as i32,
    })
}

pub fn progress(id: &str, percent: u32, bytes: u64) -> Kind {
    Kind::Progress(pb::Progress { package_id: id.into(), bytes_done: bytes, progress_percent: percent, attempt: 0 })
}

pub fn complete(id: &str, sha: &str, size: u64, station: &str) -> Kind {
    Kind::Complete(pb::Complete {
        package_id: id.into(),
        sha256: sha.into(),
        size_bytes: size,
        tool_ref: String::new(),
        placements: vec![pb::PlacementReport {
            station_id: station.into(),
            status: pb::PlacementStatus::Verified as i32,
            verified_sha256: sha.into(),
            error: String::new(),
        }],
        manifest: Vec::new(),
    })
}
