//! Private views: what a viewer sees unless its token was made `--unredacted`. File paths,
//! file names, symlink targets, station URIs and command arguments leave the catcher as
//! `<redacted>.EXT#HASH` (the last segment's extension and a keyed hash prefix, so equal paths
//! still match); free text (errors, reasons, journal details) has every path-like word redacted.
//! Done here, on the way out, so the data never leaves the server.

use edgebackup_proto::v1::{self as pb, command_args, command_details, pending_change, watch_event::Kind};
use sha2::{Digest, Sha256};

use crate::auth::Principal;
use crate::domain::Role;

/// Redacts responses for one caller.
#[derive(Clone)]
pub struct Redactor {
    key: [u8; 32],
}

/// Journal detail keys whose string values are paths or URIs whatever they look like.
const PATH_KEYS: &[&str] = &["path", "paths", "folder", "folders", "target", "target_dir", "uri", "file", "files"];

impl Redactor {
    /// The redactor for `who`: viewers without `--unredacted` only.
    pub fn for_caller(key: &[u8; 32], who: &Principal) -> Option<Self> {
        match who {
            Principal::Person { role: Role::Viewer, unredacted: false, .. } => Some(Self { key: *key }),
            _ => None,
        }
    }

    fn tag(&self, text: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update(text.as_bytes());
        hex::encode(&h.finalize()[..4])
    }

    /// `/home/ana/secrets/customer-1.csv` → `<redacted>.csv#1a2b3c4d`.
    pub fn path(&self, path: &str) -> String {
        if path.is_empty() {
            return String::new();
        }
        let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        let ext = last.rsplit_once('.').filter(|(stem, ext)| {
            !stem.is_empty() && !ext.is_empty() && ext.len() <= 8 && ext.chars().all(|c| c.is_ascii_alphanumeric())
        });
        match ext {
            Some((_, ext)) => format!("<redacted>.{ext}#{}", self.tag(path)),
            None => format!("<redacted>#{}", self.tag(path)),
        }
    }

    /// A station URI keeps its scheme (`s3:`, `b2:`) and loses the rest.
    pub fn uri(&self, uri: &str) -> String {
        match uri.split_once(':') {
            Some((scheme, _)) if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric()) => {
                format!("{scheme}:<redacted>#{}", self.tag(uri))
            }
            _ => self.path(uri),
        }
    }

    /// Free text with every path-like word (one holding a `/` or a `\`) redacted.
    pub fn text(&self, text: &str) -> String {
        if !text.contains(['/', '\\']) {
            return text.to_owned();
        }
        text.split(' ')
            .map(|w| {
                if w.contains(['/', '\\']) {
                    let trimmed = w.trim_matches(|c: char| matches!(c, '"' | '\'' | ',' | ';' | '(' | ')' | ':'));
                    w.replace(trimmed, &self.uri(trimmed))
                } else {
                    w.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn json(&self, v: &mut serde_json::Value, key: Option<&str>) {
        use serde_json::Value;
        let is_path = key.is_some_and(|k| PATH_KEYS.contains(&k));
        match v {
            Value::String(s) => *s = if is_path { self.path(s) } else { self.text(s) },
            Value::Array(items) => items.iter_mut().for_each(|i| self.json(i, key)),
            Value::Object(map) => map.iter_mut().for_each(|(k, v)| self.json(v, Some(k))),
            _ => {}
        }
    }

    /// A JSON document with every path under a path key, and every path-like word, redacted.
    pub fn json_text(&self, text: &str) -> String {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(mut v) => {
                self.json(&mut v, None);
                v.to_string()
            }
            Err(_) => self.text(text),
        }
    }

    pub fn package(&self, p: &mut pb::Package) {
        p.path = self.path(&p.path);
        p.last_error = self.text(&p.last_error);
        p.tool_ref = self.text(&p.tool_ref);
        for pl in &mut p.placements {
            pl.error = self.text(&pl.error);
        }
        for m in &mut p.manifest {
            m.path = self.path(&m.path);
        }
    }

    pub fn source(&self, s: &mut pb::Source) {
        s.safety_reason = self.text(&s.safety_reason);
    }

    pub fn station(&self, s: &mut pb::Station) {
        s.uri = self.uri(&s.uri);
    }

    pub fn journal(&self, e: &mut pb::JournalEvent) {
        e.error = self.text(&e.error);
        e.details_json = self.json_text(&e.details_json);
    }

    pub fn file(&self, v: &mut pb::FileVersion) {
        v.folder = self.path(&v.folder);
        if let Some(e) = &mut v.entry {
            e.path = self.path(&e.path);
            e.target = self.path(&e.target);
        }
    }

    pub fn command(&self, c: &mut pb::CommandInfo) {
        c.result_message = self.text(&c.result_message);
        if let Some(args) = c.command.as_mut().and_then(|c| c.args.as_mut()).and_then(|a| a.kind.as_mut()) {
            match args {
                command_args::Kind::Restore(r) => {
                    r.folders = r.folders.iter().map(|f| self.path(f)).collect();
                    r.paths = r.paths.iter().map(|f| self.path(f)).collect();
                    r.target_dir = self.path(&r.target_dir);
                }
                command_args::Kind::Compact(x) => {
                    x.folder = self.path(&x.folder);
                    x.paths = x.paths.iter().map(|f| self.path(f)).collect();
                }
                _ => {}
            }
        }
        match c.result_details.as_mut().and_then(|d| d.kind.as_mut()) {
            Some(command_details::Kind::Restore(r)) => {
                for skip in &mut r.skipped {
                    skip.path = self.path(&skip.path);
                    skip.reason = self.text(&skip.reason);
                }
                r.damaged = r.damaged.iter().map(|d| self.path(d)).collect();
            }
            Some(command_details::Kind::Verify(checks) | command_details::Kind::RestoreDrill(checks)) => {
                for check in &mut checks.checks {
                    check.location = self.uri(&check.location);
                    check.problem = self.text(&check.problem);
                    for bad in &mut check.bad_files {
                        bad.path = self.path(&bad.path);
                        bad.reason = self.text(&bad.reason);
                    }
                }
            }
            Some(command_details::Kind::BackupNow(b)) => b.held = self.text(&b.held),
            _ => {}
        }
    }

    pub fn pending(&self, c: &mut pb::PendingChange) {
        c.reason = self.text(&c.reason);
        c.outcome = self.text(&c.outcome);
        if let Some(pending_change::Change::PackageDeletion(d)) = &mut c.change {
            d.path = self.path(&d.path);
        }
    }

    pub fn snapshot(&self, s: &mut pb::ConfigSnapshot) {
        s.reason = self.text(&s.reason);
        s.stations.iter_mut().for_each(|st| self.station(st));
    }

    /// A config snapshot's canonical JSON with its stations' URIs redacted (its sha256 then no
    /// longer matches: the export says so by leaving `sha256` empty).
    pub fn config_json(&self, json: &str) -> String {
        let Ok(mut v) = serde_json::from_str::<serde_json::Value>(json) else { return self.text(json) };
        if let Some(stations) = v.get_mut("stations").and_then(|s| s.as_array_mut()) {
            for st in stations {
                if let Some(uri) = st.get_mut("uri").and_then(|u| u.as_str().map(|u| self.uri(u))) {
                    st["uri"] = serde_json::Value::String(uri);
                }
            }
        }
        v.to_string()
    }

    /// An alert: an RPO subject's folder is a path; messages and notes are free text.
    pub fn alert(&self, a: &mut pb::Alert) {
        // "SOURCE:FOLDER": the source's id is known, so a ':' inside it cannot mislead.
        if a.kind == pb::AlertKind::RpoBreached as i32
            && let Some(folder) = a.subject.strip_prefix(&format!("{}:", a.source_id)).map(str::to_owned)
            && !folder.is_empty()
        {
            let hidden = self.path(&folder);
            a.subject = format!("{}:{hidden}", a.source_id);
            // The message names the folder too, spaces and all.
            a.message = a.message.replace(&folder, &hidden);
        }
        a.message = self.text(&a.message);
        a.note = self.text(&a.note);
    }

    pub fn recovery_point(&self, p: &mut pb::RecoveryPoint) {
        if !p.folder.is_empty() {
            p.folder = self.path(&p.folder);
        }
    }

    pub fn status(&self, s: &mut pb::GetStatusResponse) {
        if let Some(d) = &mut s.last_restore_drill {
            d.message = self.text(&d.message);
        }
    }

    /// One Watch event.
    pub fn watch(&self, kind: &mut Kind) {
        match kind {
            Kind::Snapshot(s) => {
                if let Some(st) = &mut s.status {
                    self.status(st);
                }
                s.sources.iter_mut().for_each(|x| self.source(x));
                s.packages.iter_mut().for_each(|x| self.package(x));
                s.journal.iter_mut().for_each(|x| self.journal(x));
                s.stations.iter_mut().for_each(|x| self.station(x));
                s.restores.iter_mut().for_each(|x| self.command(x));
                s.pending_changes.iter_mut().for_each(|x| self.pending(x));
                s.alerts.iter_mut().for_each(|x| self.alert(x));
            }
            Kind::AlertChanged(x) => self.alert(x),
            Kind::PackageChanged(p) => self.package(p),
            Kind::SourceChanged(x) => self.source(x),
            Kind::StatusChanged(x) => self.status(x),
            Kind::JournalAppended(x) => self.journal(x),
            Kind::RestoreChanged(x) => self.command(x),
            Kind::PendingChange(x) => self.pending(x),
            Kind::RulesChanged(_) | Kind::PackageDeleted(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_keep_an_extension_and_a_keyed_tag() {
        let r = Redactor { key: [7; 32] };
        let a = r.path("/home/ana/secrets/customer-1.csv");
        assert!(a.starts_with("<redacted>.csv#") && a.len() == "<redacted>.csv#".len() + 8, "{a}");
        assert_eq!(a, r.path("/home/ana/secrets/customer-1.csv"), "equal paths match");
        assert_ne!(a, r.path("/home/ana/secrets/customer-2.csv"));
        assert_ne!(a, Redactor { key: [8; 32] }.path("/home/ana/secrets/customer-1.csv"), "keyed");
        assert!(r.path("/srv/data/").starts_with("<redacted>#"));
        assert!(r.path(".bashrc").starts_with("<redacted>#"), "a dot file has no extension");
        assert!(r.uri("s3:edge-warm/bucket").starts_with("s3:<redacted>#"));
        assert!(r.uri("/mnt/hot").starts_with("<redacted>#"));
        let t = r.text("cannot open /home/ana/secrets/customer-1.csv: permission denied");
        assert!(!t.contains("customer-1") && t.contains("permission denied") && t.contains(".csv#"), "{t}");
        let j = r.json_text(r#"{"path":"customer-1.csv","size_bytes":3,"note":"from /home/ana"}"#);
        assert!(!j.contains("customer-1") && !j.contains("/home/ana") && j.contains("\"size_bytes\":3"), "{j}");
    }
}

/// A response a viewer may get redacted.
pub trait Redact {
    fn redact(&mut self, r: &Redactor);
}

macro_rules! redact_each {
    ($($ty:ty => |$s:ident, $r:ident| $body:expr;)+) => {
        $(impl Redact for $ty {
            fn redact(&mut self, $r: &Redactor) {
                let $s = self;
                $body
            }
        })+
    };
}

redact_each! {
    pb::Package => |s, r| r.package(s);
    pb::ListPackagesResponse => |s, r| s.packages.iter_mut().for_each(|p| r.package(p));
    pb::Source => |s, r| r.source(s);
    pb::ListSourcesResponse => |s, r| s.sources.iter_mut().for_each(|x| r.source(x));
    pb::ListCommandsResponse => |s, r| s.commands.iter_mut().for_each(|c| r.command(c));
    pb::QueryJournalResponse => |s, r| s.events.iter_mut().for_each(|e| r.journal(e));
    pb::ListFolderResponse => |s, r| s.entries.iter_mut().for_each(|v| r.file(v));
    pb::ListStateResponse => |s, r| s.entries.iter_mut().for_each(|v| r.file(v));
    pb::ListVersionsResponse => |s, r| s.versions.iter_mut().for_each(|v| r.file(v));
    pb::SearchFilesResponse => |s, r| s.matches.iter_mut().for_each(|v| r.file(v));
    pb::GetCoverageResponse => |s, r| s.unprotected.iter_mut().for_each(|v| r.file(v));
    pb::ListFoldersResponse => |s, r| s.folders = s.folders.iter().map(|f| r.path(f)).collect();
    pb::ListStationsResponse => |s, r| s.stations.iter_mut().for_each(|x| r.station(x));
    pb::ConfigSnapshot => |s, r| r.snapshot(s);
    pb::ListConfigSnapshotsResponse => |s, r| s.snapshots.iter_mut().for_each(|x| r.snapshot(x));
    pb::ExportConfigSnapshotResponse => |s, r| {
        s.config_json = r.config_json(&s.config_json);
        // The redacted document is not the one the checksum covers.
        s.sha256.clear();
    };
    pb::ListPendingChangesResponse => |s, r| s.changes.iter_mut().for_each(|c| r.pending(c));
    pb::GetStatusResponse => |s, r| r.status(s);
    pb::Alert => |s, r| r.alert(s);
    pb::ListAlertsResponse => |s, r| s.alerts.iter_mut().for_each(|a| r.alert(a));
    pb::GetRecoveryPointsResponse => |s, r| s.points.iter_mut().for_each(|p| r.recovery_point(p));
    pb::ListChannelsResponse => |s, r| s.channels.iter_mut().for_each(|c| c.last_error = r.text(&c.last_error));
    pb::TestChannelResponse => |s, r| s.message = r.text(&s.message);
}
