//! The agent's durable state in one embedded database (redb) under `state_dir`:
//! the outbox of sequenced events, the file index, local package records and small facts.
//!
//! Every change that belongs together (an event and the record it describes) is written in one
//! transaction, so a crash never leaves an event without its record or the other way round.

use std::path::Path;
use std::sync::Arc;

use edgebackup_proto::v1::{self as pb, agent_event::Kind};
use prost::Message;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tokio::sync::Notify;

/// seq → encoded AgentEvent, until acknowledged.
const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// package id → seq of its newest unacknowledged Progress (to coalesce).
const PROGRESS: TableDefinition<&str, u64> = TableDefinition::new("progress");
/// absolute file path → FileState (JSON).
const INDEX: TableDefinition<&str, &[u8]> = TableDefinition::new("file_index");
/// absolute entry path → catalog::Entry (JSON): what the catcher's catalog was last told.
const REPORTED: TableDefinition<&str, &[u8]> = TableDefinition::new("reported");
/// package id → LocalPackage (JSON).
const PACKAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("packages");
/// small named facts (JSON).
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const NEXT_SEQ: &str = "next_seq";
const ACKED_SEQ: &str = "acked_seq";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state database: {0}")]
    Db(#[from] redb::Error),
    #[error("state record is unreadable: {0}")]
    Decode(String),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(impl From<$t> for StateError { fn from(e: $t) -> Self { Self::Db(e.into()) } })*};
}
from_redb!(redb::DatabaseError, redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

pub type Result<T, E = StateError> = std::result::Result<T, E>;

/// What the index knows about a file that is backed up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileState {
    pub size: u64,
    pub mtime_ns: i128,
    pub sha256: String,
    pub package_id: String,
    /// Whether its contents looked encrypted when backed up (for the panic brake).
    #[serde(default)]
    pub high_entropy: bool,
}

/// Where a local package is in its life on this device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocalStatus {
    /// Announced; bytes are being packaged and uploaded (redone after a crash).
    Uploading,
    /// Stored and verified on every station.
    Completed,
    /// Gave up; the files stay changed in the index, so the next pass packages them again.
    Failed,
}

/// One copy of a package on a station, as this agent wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StationCopy {
    pub station_id: String,
    /// Object path, archive file or restic snapshot id.
    pub tool_ref: String,
    pub verified_sha256: String,
}

/// One file inside a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Relative to the folder, `/`-separated.
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub mtime_ns: i128,
    /// Permission bits and owner as packaged.
    #[serde(default)]
    pub mode: u32,
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    /// Where the file's tar entry is in the archive (seekable packages; unset in older ones
    /// and in the archive's own manifest, written before the ranges are known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<FileRange>,
}

/// A file's place in a seekable archive (see `frames::Located`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRange {
    pub offset: u64,
    pub length: u64,
    pub skip: u64,
}

impl From<crate::frames::Located> for FileRange {
    fn from(l: crate::frames::Located) -> Self {
        Self { offset: l.offset, length: l.length, skip: l.skip }
    }
}

/// A package this agent made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalPackage {
    pub package_id: String,
    pub folder: String,
    pub package_type: String,
    /// Relative paths planned into the package (the manifest once packaged).
    pub files: Vec<String>,
    pub status: LocalStatus,
    pub attempt: u32,
    pub sha256: String,
    pub size: u64,
    pub tool: String,
    pub copies: Vec<StationCopy>,
    pub manifest: Vec<ManifestFile>,
    pub error: String,
    pub created_at_ms: i64,
    pub finished_at_ms: Option<i64>,
}

impl LocalPackage {
    /// A new package of `files` (relative to `folder`), not yet built.
    pub fn planned(folder: String, package_type: String, files: Vec<String>) -> Self {
        Self {
            package_id: uuid::Uuid::now_v7().to_string(),
            folder,
            package_type,
            files,
            status: LocalStatus::Uploading,
            attempt: 0,
            sha256: String::new(),
            size: 0,
            tool: String::new(),
            copies: Vec::new(),
            manifest: Vec::new(),
            error: String::new(),
            created_at_ms: now_ms(),
            finished_at_ms: None,
        }
    }
}

/// The database file inside the state dir.
pub const DB_FILE: &str = "agent.redb";

/// The agent's database. Cheap to clone.
#[derive(Clone)]
pub struct State {
    db: Arc<Database>,
    /// Woken whenever events are appended, so the stream sends them at once.
    pub outbox_changed: Arc<Notify>,
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("plain data serializes")
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StateError::Decode(e.to_string()))
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl State {
    /// Opens (or creates) `dir/agent.redb`.
    /// Opens the state in `dir` only if one is there (never creating it) and no other process
    /// (a running daemon) holds it.
    pub fn open_existing(dir: &Path) -> Option<Self> {
        dir.join(DB_FILE).exists().then(|| Self::open(dir).ok()).flatten()
    }

    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| StateError::Db(redb::StorageError::Io(e).into()))?;
        let db = Database::create(dir.join(DB_FILE))?;
        let tx = db.begin_write()?;
        {
            tx.open_table(OUTBOX)?;
            tx.open_table(PROGRESS)?;
            tx.open_table(INDEX)?;
            tx.open_table(PACKAGES)?;
            tx.open_table(META)?;
            tx.open_table(REPORTED)?;
        }
        tx.commit()?;
        Ok(Self { db: Arc::new(db), outbox_changed: Arc::new(Notify::new()) })
    }

    /// Runs `f` in one write transaction and commits it durably.
    pub fn write<T>(&self, f: impl FnOnce(&mut Tx) -> Result<T>) -> Result<T> {
        let tx = self.db.begin_write()?;
        let mut w = Tx { tx, appended: false };
        let out = f(&mut w)?;
        let appended = w.appended;
        w.tx.commit()?;
        if appended {
            self.outbox_changed.notify_one();
        }
        Ok(out)
    }

    /// Appends one event; returns its seq.
    pub fn push(&self, kind: Kind) -> Result<u64> {
        self.write(|tx| tx.push(kind))
    }

    /// Unacknowledged events above `after`, oldest first, at most `limit`.
    pub fn pending(&self, after: u64, limit: usize) -> Result<Vec<pb::AgentEvent>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(OUTBOX)?;
        let mut out = Vec::new();
        for row in t.range(after + 1..)?.take(limit) {
            let (_, v) = row?;
            out.push(pb::AgentEvent::decode(v.value()).map_err(|e| StateError::Decode(e.to_string()))?);
        }
        Ok(out)
    }

    /// Number of unacknowledged events.
    pub fn outbox_len(&self) -> Result<u64> {
        Ok(self.db.begin_read()?.open_table(OUTBOX)?.len()?)
    }

    /// Drops every event at or below `applied_seq` (the catcher has them durably).
    pub fn ack(&self, applied_seq: u64) -> Result<()> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(OUTBOX)?;
            t.retain_in(..=applied_seq, |_, _| false)?;
            let mut p = tx.open_table(PROGRESS)?;
            p.retain(|_, seq| seq > applied_seq)?;
            let mut m = tx.open_table(META)?;
            let acked: u64 = match m.get(ACKED_SEQ)? {
                Some(v) => parse(v.value())?,
                None => 0,
            };
            m.insert(ACKED_SEQ, json(&acked.max(applied_seq)).as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A state dir that has never been welcomed by the catcher (new, or wiped on a replaced
    /// device that kept its source id) numbered its events from 1, so the catcher's applied seq
    /// says nothing about them: they move above it, in order, instead of being taken as applied.
    /// Returns how many moved. A state dir that has been welcomed once has an acked seq.
    pub fn renumber_if_never_welcomed(&self, applied_seq: u64) -> Result<u64> {
        let tx = self.db.begin_write()?;
        let moved = {
            if tx.open_table(META)?.get(ACKED_SEQ)?.is_some() {
                return Ok(0);
            }
            let mut outbox = tx.open_table(OUTBOX)?;
            let mut events = Vec::new();
            for row in outbox.iter()? {
                let (_, v) = row?;
                events.push(pb::AgentEvent::decode(v.value()).map_err(|e| StateError::Decode(e.to_string()))?);
            }
            outbox.retain(|_, _| false)?;
            let mut progress = tx.open_table(PROGRESS)?;
            progress.retain(|_, _| false)?;
            let moved = events.len() as u64;
            let mut next = applied_seq + 1;
            for mut event in events {
                event.seq = next;
                if let Some(Kind::Progress(p)) = &event.kind {
                    progress.insert(p.package_id.as_str(), next)?;
                }
                outbox.insert(next, event.encode_to_vec().as_slice())?;
                next += 1;
            }
            let mut meta = tx.open_table(META)?;
            let current: u64 = meta.get(NEXT_SEQ)?.map(|v| parse(v.value())).transpose()?.unwrap_or(1);
            meta.insert(NEXT_SEQ, json(&next.max(current)).as_slice())?;
            moved
        };
        tx.commit()?;
        Ok(moved)
    }

    /// The catcher applied less than it once acknowledged (its database was restored from a
    /// backup): what this agent backed up since is unknown to it. Forgets which files were
    /// backed up and reported, so the next pass backs every file up and reports it again, and
    /// takes the catcher's word for what it applied.
    pub fn forget_backed_up(&self, applied_seq: u64) -> Result<()> {
        let tx = self.db.begin_write()?;
        {
            tx.open_table(INDEX)?.retain(|_, _| false)?;
            tx.open_table(REPORTED)?.retain(|_, _| false)?;
            tx.open_table(META)?.insert(ACKED_SEQ, json(&applied_seq).as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// After the catcher says it applied more than this agent ever wrote (a lost state dir),
    /// continue numbering above it so nothing new is mistaken for a replay.
    pub fn ensure_seq_above(&self, applied_seq: u64) -> Result<()> {
        self.write(|tx| {
            let next: u64 = tx.meta(NEXT_SEQ)?.unwrap_or(1);
            if next <= applied_seq {
                tx.set_meta(NEXT_SEQ, &(applied_seq + 1))?;
            }
            Ok(())
        })
    }

    pub fn acked_seq(&self) -> Result<u64> {
        Ok(self.meta(ACKED_SEQ)?.unwrap_or(0))
    }

    pub fn meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(META)?;
        t.get(key)?.map(|v| parse(v.value())).transpose()
    }

    pub fn set_meta<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        self.write(|tx| tx.set_meta(key, value))
    }

    pub fn file(&self, path: &str) -> Result<Option<FileState>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(INDEX)?;
        t.get(path)?.map(|v| parse(v.value())).transpose()
    }

    /// Absolute paths in the index that start with `prefix`.
    pub fn files_under(&self, prefix: &str) -> Result<Vec<String>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(INDEX)?;
        let mut out = Vec::new();
        for row in t.range(prefix..)? {
            let (k, _) = row?;
            let k = k.value();
            if !k.starts_with(prefix) {
                break;
            }
            out.push(k.to_owned());
        }
        Ok(out)
    }

    /// The reported entries under `prefix` (absolute paths), sorted.
    pub fn reported_under(&self, prefix: &str) -> Result<Vec<(String, crate::catalog::Entry)>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(REPORTED)?;
        let mut out = Vec::new();
        for row in t.range(prefix..)? {
            let (k, v) = row?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_owned(), parse(v.value())?));
        }
        Ok(out)
    }

    pub fn package(&self, id: &str) -> Result<Option<LocalPackage>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(PACKAGES)?;
        t.get(id)?.map(|v| parse(v.value())).transpose()
    }

    /// Every local package, oldest first (ids are UUIDv7).
    pub fn packages(&self) -> Result<Vec<LocalPackage>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(PACKAGES)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            out.push(parse(row?.1.value())?);
        }
        Ok(out)
    }
}

/// A write transaction with the agent's operations.
pub struct Tx {
    tx: redb::WriteTransaction,
    appended: bool,
}

impl Tx {
    /// Appends an event with the next sequence number. A Progress replaces the package's
    /// previous unacknowledged Progress: only the newest matters.
    pub fn push(&mut self, kind: Kind) -> Result<u64> {
        let seq: u64 = self.meta(NEXT_SEQ)?.unwrap_or(1);
        self.set_meta(NEXT_SEQ, &(seq + 1))?;
        if let Kind::Progress(p) = &kind {
            let mut progress = self.tx.open_table(PROGRESS)?;
            let old = progress.insert(p.package_id.as_str(), seq)?.map(|v| v.value());
            drop(progress);
            if let Some(old) = old {
                self.tx.open_table(OUTBOX)?.remove(old)?;
            }
        }
        let at = prost_types::Timestamp::from(std::time::SystemTime::now());
        let event = pb::AgentEvent { seq, at: Some(at), kind: Some(kind) };
        self.tx.open_table(OUTBOX)?.insert(seq, event.encode_to_vec().as_slice())?;
        self.appended = true;
        Ok(seq)
    }

    pub fn meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let t = self.tx.open_table(META)?;
        t.get(key)?.map(|v| parse(v.value())).transpose()
    }

    pub fn set_meta<T: Serialize>(&mut self, key: &str, value: &T) -> Result<()> {
        self.tx.open_table(META)?.insert(key, json(value).as_slice())?;
        Ok(())
    }

    pub fn put_package(&mut self, p: &LocalPackage) -> Result<()> {
        self.tx.open_table(PACKAGES)?.insert(p.package_id.as_str(), json(p).as_slice())?;
        Ok(())
    }

    pub fn put_file(&mut self, path: &str, f: &FileState) -> Result<()> {
        self.tx.open_table(INDEX)?.insert(path, json(f).as_slice())?;
        Ok(())
    }

    pub fn remove_file(&mut self, path: &str) -> Result<()> {
        self.tx.open_table(INDEX)?.remove(path)?;
        Ok(())
    }

    pub fn put_reported(&mut self, path: &str, e: &crate::catalog::Entry) -> Result<()> {
        self.tx.open_table(REPORTED)?.insert(path, json(e).as_slice())?;
        Ok(())
    }

    pub fn remove_reported(&mut self, path: &str) -> Result<()> {
        self.tx.open_table(REPORTED)?.remove(path)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(id: &str, pct: u32) -> Kind {
        Kind::Progress(pb::Progress { package_id: id.into(), progress_percent: pct, ..Default::default() })
    }

    #[test]
    fn outbox_survives_reopen_and_acks_drop_events() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = State::open(dir.path()).unwrap();
            for i in 0..5 {
                s.push(Kind::Fail(pb::Fail { package_id: format!("p{i}"), ..Default::default() })).unwrap();
            }
            s.ack(2).unwrap();
        }
        let s = State::open(dir.path()).unwrap();
        let seqs: Vec<u64> = s.pending(0, 100).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [3, 4, 5]);
        assert_eq!(s.pending(4, 100).unwrap().len(), 1);
        assert_eq!(s.push(progress("x", 1)).unwrap(), 6, "numbering continues after a restart");
        assert_eq!(s.acked_seq().unwrap(), 2);
    }

    #[test]
    fn progress_is_coalesced_per_package_until_acked() {
        let dir = tempfile::tempdir().unwrap();
        let s = State::open(dir.path()).unwrap();
        s.push(progress("a", 10)).unwrap();
        s.push(progress("b", 10)).unwrap();
        s.push(progress("a", 20)).unwrap();
        s.push(progress("a", 30)).unwrap();
        let left: Vec<(u64, u32)> = s
            .pending(0, 100)
            .unwrap()
            .into_iter()
            .map(|e| match e.kind {
                Some(Kind::Progress(p)) => (e.seq, p.progress_percent),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(left, [(2, 10), (4, 30)]);
        s.ack(4).unwrap();
        s.push(progress("a", 40)).unwrap();
        assert_eq!(s.pending(0, 100).unwrap().len(), 1, "an acked progress is not removed twice");
    }

    #[test]
    fn seq_jumps_above_what_the_catcher_applied() {
        let dir = tempfile::tempdir().unwrap();
        let s = State::open(dir.path()).unwrap();
        s.ensure_seq_above(41).unwrap();
        assert_eq!(s.push(progress("a", 1)).unwrap(), 42);
    }
}
