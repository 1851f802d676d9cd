//! How command arguments and results are stored: JSON in `commands.args_json` /
//! `result_details_json`, read according to the row's `kind`. The shapes are those earlier
//! versions wrote, so stored rows keep their meaning: arguments that do not fit their kind are
//! corruption (the catcher wrote them), results that do not fit are kept out of the answer and
//! logged (agents wrote those).

use serde::{Deserialize, Serialize};

use crate::domain::*;
use crate::error::{Error, Result};

#[derive(Serialize, Deserialize)]
struct CopyArgs {
    owner: String,
    #[serde(default)]
    sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    purpose: Option<String>,
}

#[derive(Serialize, Deserialize, Default)]
struct StoredDrill {
    /// A tier's spelling, or "any"; absent for the agent's own packages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sample: Option<serde_json::Value>,
    #[serde(default)]
    packages: Vec<StoredTarget>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    scheduled: bool,
}

#[derive(Serialize, Deserialize)]
struct StoredTarget {
    package_id: String,
    owner: String,
    #[serde(default)]
    sha256: String,
    station_id: String,
}

#[derive(Serialize, Deserialize, Default)]
struct StoredResume {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    reason: String,
}

#[derive(Serialize, Deserialize, Default)]
struct StoredRestore {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    source: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    folders: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    as_of: Option<Millis>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    paths: Vec<String>,
    target_dir: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    overwrite: bool,
}

#[derive(Serialize, Deserialize, Default)]
struct StoredCompact {
    folder: String,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    package_ids: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct StoredRestoreReport {
    files: u64,
    bytes: u64,
    #[serde(default)]
    unchanged: u64,
    #[serde(default)]
    directories: u64,
    #[serde(default)]
    links: u64,
    #[serde(default)]
    skipped: Vec<StoredBadFile>,
    #[serde(default)]
    damaged: Vec<String>,
}

/// The stored columns of a command's arguments: `(from_station_id, to_station_id, args_json)`.
pub fn encode_args(args: &CommandArgs) -> Result<(String, String, String)> {
    Ok(match args {
        CommandArgs::BackupNow | CommandArgs::Verify | CommandArgs::Pause => {
            (String::new(), String::new(), "{}".into())
        }
        CommandArgs::Resume { reason } => {
            (String::new(), String::new(), json(&StoredResume { reason: reason.clone() })?)
        }
        CommandArgs::RestoreDrill(d) => {
            let stored = StoredDrill {
                tier: match d.scope {
                    DrillScope::Own => None,
                    DrillScope::Tier(t) => Some(t.as_str().to_owned()),
                    DrillScope::AnyTier => Some("any".to_owned()),
                },
                sample: Some(d.sample.into()),
                packages: d
                    .targets
                    .iter()
                    .map(|t| StoredTarget {
                        package_id: t.package_id.clone(),
                        owner: t.owner.clone(),
                        sha256: t.sha256.clone(),
                        station_id: t.station_id.clone(),
                    })
                    .collect(),
                scheduled: d.scheduled,
            };
            (String::new(), String::new(), json(&stored)?)
        }
        CommandArgs::Move(m) => {
            let purpose = match m.purpose {
                MovePurpose::TierMove => None,
                MovePurpose::Resend => Some("resend".to_owned()),
            };
            let stored = CopyArgs { owner: m.owner.clone(), sha256: m.sha256.clone(), purpose };
            (m.from_station_id.clone(), m.to_station_id.clone(), json(&stored)?)
        }
        CommandArgs::Expire(x) => {
            let purpose = match x.purpose {
                ExpirePurpose::Expire => "expire",
                ExpirePurpose::Cleanup => "cleanup",
                ExpirePurpose::Delete => "delete",
            };
            let stored = CopyArgs { owner: x.owner.clone(), sha256: x.sha256.clone(), purpose: Some(purpose.into()) };
            (x.station_id.clone(), String::new(), json(&stored)?)
        }
        CommandArgs::Compact(c) => {
            let stored =
                StoredCompact { folder: c.folder.clone(), paths: c.paths.clone(), package_ids: c.package_ids.clone() };
            (String::new(), String::new(), json(&stored)?)
        }
        CommandArgs::Restore(r) => {
            let stored = StoredRestore {
                source: r.source.clone(),
                folders: r.folders.clone(),
                as_of: r.as_of,
                paths: r.paths.clone(),
                target_dir: r.target_dir.clone(),
                overwrite: r.overwrite,
            };
            (String::new(), String::new(), json(&stored)?)
        }
    })
}

/// Reads a command's arguments back from its stored columns.
pub fn decode_args(kind: CommandKind, from: &str, to: &str, args_json: &str) -> Result<CommandArgs> {
    let corrupt = |e: String| Error::Corrupt(format!("arguments of a stored {kind} command: {e}"));
    let text = if args_json.trim().is_empty() { "{}" } else { args_json };
    Ok(match kind {
        CommandKind::BackupNow => CommandArgs::BackupNow,
        CommandKind::Verify => CommandArgs::Verify,
        CommandKind::Pause => CommandArgs::Pause,
        CommandKind::Resume => {
            let r: StoredResume = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
            CommandArgs::Resume { reason: r.reason }
        }
        CommandKind::RestoreDrill => {
            let d: StoredDrill = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
            let scope = match d.tier.as_deref() {
                None => DrillScope::Own,
                Some("any") => DrillScope::AnyTier,
                Some(t) => DrillScope::Tier(Tier::parse(t).ok_or_else(|| corrupt(format!("unknown tier {t:?}")))?),
            };
            let sample = d
                .sample
                .and_then(|v| v.as_u64())
                .map_or(DEFAULT_DRILL_SAMPLE, |n| u32::try_from(n.clamp(1, u64::from(MAX_DRILL_SAMPLE))).unwrap_or(1));
            let targets = d
                .packages
                .into_iter()
                .map(|t| DrillTarget {
                    package_id: t.package_id,
                    owner: t.owner,
                    sha256: t.sha256,
                    station_id: t.station_id,
                })
                .collect();
            CommandArgs::RestoreDrill(DrillArgs { scope, sample, targets, scheduled: d.scheduled })
        }
        CommandKind::Move => {
            let c: CopyArgs = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
            let purpose = match c.purpose.as_deref() {
                None | Some("tier_move") => MovePurpose::TierMove,
                Some("resend") => MovePurpose::Resend,
                Some(other) => return Err(corrupt(format!("unknown purpose {other:?}"))),
            };
            CommandArgs::Move(MoveArgs {
                from_station_id: from.to_owned(),
                to_station_id: to.to_owned(),
                owner: c.owner,
                sha256: c.sha256,
                purpose,
            })
        }
        CommandKind::Expire => {
            let c: CopyArgs = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
            let purpose = match c.purpose.as_deref() {
                Some("expire") => ExpirePurpose::Expire,
                Some("cleanup") => ExpirePurpose::Cleanup,
                Some("delete") => ExpirePurpose::Delete,
                other => return Err(corrupt(format!("unknown purpose {other:?}"))),
            };
            CommandArgs::Expire(ExpireArgs { station_id: from.to_owned(), owner: c.owner, sha256: c.sha256, purpose })
        }
        CommandKind::Compact => {
            let c: StoredCompact = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
            CommandArgs::Compact(CompactArgs { folder: c.folder, paths: c.paths, package_ids: c.package_ids })
        }
        CommandKind::Restore => {
            let r: StoredRestore = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
            CommandArgs::Restore(RestoreArgs {
                source: r.source,
                folders: r.folders,
                as_of: r.as_of,
                paths: r.paths,
                target_dir: r.target_dir,
                overwrite: r.overwrite,
            })
        }
    })
}

#[derive(Serialize, Deserialize)]
struct StoredBackup {
    packages_completed: u32,
    packages_failed: u32,
    files: u64,
    #[serde(default)]
    held: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct StoredChecks {
    checks: Vec<StoredCheck>,
}

#[derive(Serialize, Deserialize)]
struct StoredCheck {
    package_id: String,
    #[serde(default)]
    station_id: String,
    #[serde(default)]
    location: String,
    ok: bool,
    #[serde(default)]
    problem: String,
    #[serde(default)]
    bad_files: Vec<StoredBadFile>,
}

#[derive(Serialize, Deserialize)]
struct StoredBadFile {
    path: String,
    reason: String,
}

#[derive(Serialize, Deserialize)]
struct StoredMove {
    verified_sha256: String,
    #[serde(default)]
    tool_ref: String,
}

fn checks_out(checks: &[CopyCheck]) -> StoredChecks {
    StoredChecks {
        checks: checks
            .iter()
            .map(|c| StoredCheck {
                package_id: c.package_id.clone(),
                station_id: c.station_id.clone(),
                location: c.location.clone(),
                ok: c.ok,
                problem: c.problem.clone(),
                bad_files: c
                    .bad_files
                    .iter()
                    .map(|(path, reason)| StoredBadFile { path: path.clone(), reason: reason.clone() })
                    .collect(),
            })
            .collect(),
    }
}

fn checks_in(s: StoredChecks) -> Vec<CopyCheck> {
    s.checks
        .into_iter()
        .map(|c| CopyCheck {
            package_id: c.package_id,
            station_id: c.station_id,
            location: c.location,
            ok: c.ok,
            problem: c.problem,
            bad_files: c.bad_files.into_iter().map(|b| (b.path, b.reason)).collect(),
        })
        .collect()
}

/// The stored `result_details_json` of a command's result.
pub fn encode_details(details: Option<&CommandDetails>) -> Result<String> {
    let text = match details {
        None => return Ok(String::new()),
        Some(CommandDetails::BackupNow(b) | CommandDetails::Compact(b)) => serde_json::to_string(&StoredBackup {
            packages_completed: b.packages_completed,
            packages_failed: b.packages_failed,
            files: b.files,
            held: (!b.held.is_empty()).then(|| b.held.clone()),
        }),
        Some(CommandDetails::Verify(c) | CommandDetails::RestoreDrill(c)) => serde_json::to_string(&checks_out(c)),
        Some(CommandDetails::Move(m)) => serde_json::to_string(&StoredMove {
            verified_sha256: m.verified_sha256.clone(),
            tool_ref: m.tool_ref.clone(),
        }),
        Some(CommandDetails::Restore(r)) => serde_json::to_string(&StoredRestoreReport {
            files: r.files,
            bytes: r.bytes,
            unchanged: r.unchanged,
            directories: r.directories,
            links: r.links,
            skipped: r
                .skipped
                .iter()
                .map(|(path, reason)| StoredBadFile { path: path.clone(), reason: reason.clone() })
                .collect(),
            damaged: r.damaged.clone(),
        }),
    };
    text.map_err(|e| Error::Corrupt(e.to_string()))
}

/// Reads a stored result back; what does not fit the command's kind is left out (and logged).
pub fn decode_details(command_id: &str, kind: CommandKind, text: &str) -> Option<CommandDetails> {
    if text.trim().is_empty() || text.trim() == "{}" {
        return None;
    }
    let parsed = match kind {
        CommandKind::BackupNow | CommandKind::Compact => serde_json::from_str::<StoredBackup>(text).map(|b| {
            let report = BackupReport {
                packages_completed: b.packages_completed,
                packages_failed: b.packages_failed,
                files: b.files,
                held: b.held.unwrap_or_default(),
            };
            if kind == CommandKind::Compact {
                CommandDetails::Compact(report)
            } else {
                CommandDetails::BackupNow(report)
            }
        }),
        CommandKind::Verify => serde_json::from_str(text).map(|c| CommandDetails::Verify(checks_in(c))),
        CommandKind::RestoreDrill => serde_json::from_str(text).map(|c| CommandDetails::RestoreDrill(checks_in(c))),
        CommandKind::Move => serde_json::from_str::<StoredMove>(text)
            .map(|m| CommandDetails::Move(MoveReport { verified_sha256: m.verified_sha256, tool_ref: m.tool_ref })),
        CommandKind::Restore => serde_json::from_str::<StoredRestoreReport>(text).map(|r| {
            CommandDetails::Restore(RestoreReport {
                files: r.files,
                bytes: r.bytes,
                unchanged: r.unchanged,
                directories: r.directories,
                links: r.links,
                skipped: r.skipped.into_iter().map(|b| (b.path, b.reason)).collect(),
                damaged: r.damaged,
            })
        }),
        CommandKind::Pause | CommandKind::Resume | CommandKind::Expire => return None,
    };
    match parsed {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::warn!(command_id, %kind, error = %e, "a stored command result does not fit its kind; left out");
            None
        }
    }
}

fn json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(args: CommandArgs) {
        let (from, to, json) = encode_args(&args).unwrap();
        assert_eq!(decode_args(args.kind(), &from, &to, &json).unwrap(), args);
    }

    #[test]
    fn every_kind_of_argument_round_trips() {
        round_trip(CommandArgs::BackupNow);
        round_trip(CommandArgs::Verify);
        round_trip(CommandArgs::Pause);
        round_trip(CommandArgs::Resume { reason: "canary restored".into() });
        round_trip(CommandArgs::RestoreDrill(DrillArgs {
            scope: DrillScope::Tier(Tier::Cold),
            sample: 2,
            targets: vec![DrillTarget {
                package_id: "p".into(),
                owner: "edge-1".into(),
                sha256: "ab".into(),
                station_id: "nas".into(),
            }],
            scheduled: true,
        }));
        round_trip(CommandArgs::RestoreDrill(DrillArgs {
            scope: DrillScope::Own,
            sample: 3,
            targets: vec![],
            scheduled: false,
        }));
        for purpose in [MovePurpose::TierMove, MovePurpose::Resend] {
            round_trip(CommandArgs::Move(MoveArgs {
                from_station_id: "a".into(),
                to_station_id: "b".into(),
                owner: "o".into(),
                sha256: "s".into(),
                purpose,
            }));
        }
        for purpose in [ExpirePurpose::Expire, ExpirePurpose::Cleanup, ExpirePurpose::Delete] {
            round_trip(CommandArgs::Expire(ExpireArgs {
                station_id: "a".into(),
                owner: "o".into(),
                sha256: "s".into(),
                purpose,
            }));
        }
        round_trip(CommandArgs::Compact(CompactArgs {
            folder: "/srv/data".into(),
            paths: vec!["a.txt".into(), "dir/b.bin".into()],
            package_ids: vec!["0199a000-0000-7000-8000-000000000001".into()],
        }));
        let report = BackupReport { packages_completed: 1, packages_failed: 0, files: 2, held: String::new() };
        let stored = encode_details(Some(&CommandDetails::Compact(report.clone()))).unwrap();
        assert_eq!(decode_details("c", CommandKind::Compact, &stored), Some(CommandDetails::Compact(report.clone())));
        assert_eq!(decode_details("c", CommandKind::BackupNow, &stored), Some(CommandDetails::BackupNow(report)));
    }

    #[test]
    fn rows_written_by_earlier_versions_read_the_same() {
        let drill = r#"{"tier":"cold","packages":[{"package_id":"p","owner":"o","sha256":"s","station_id":"nas"}],"scheduled":true}"#;
        match decode_args(CommandKind::RestoreDrill, "", "", drill).unwrap() {
            CommandArgs::RestoreDrill(d) => {
                assert_eq!(
                    (d.scope, d.sample, d.targets.len(), d.scheduled),
                    (DrillScope::Tier(Tier::Cold), 3, 1, true)
                )
            }
            other => panic!("{other:?}"),
        }
        let own = decode_args(CommandKind::RestoreDrill, "", "", r#"{"sample": 2}"#).unwrap();
        assert!(matches!(own, CommandArgs::RestoreDrill(DrillArgs { scope: DrillScope::Own, sample: 2, .. })));
        let mv = decode_args(CommandKind::Move, "a", "b", r#"{"owner":"o","sha256":"s"}"#).unwrap();
        assert!(matches!(mv, CommandArgs::Move(MoveArgs { purpose: MovePurpose::TierMove, .. })));
        let resume = decode_args(CommandKind::Resume, "", "", "").unwrap();
        assert_eq!(resume, CommandArgs::Resume { reason: String::new() });
        let bad = decode_args(CommandKind::Expire, "a", "", r#"{"owner":"o","purpose":"shred"}"#);
        assert!(matches!(bad, Err(Error::Corrupt(m)) if m.contains("shred")));
    }

    #[test]
    fn results_round_trip_and_foreign_ones_are_left_out() {
        let checks = CommandDetails::RestoreDrill(vec![CopyCheck {
            package_id: "p".into(),
            station_id: "nas".into(),
            location: "/x".into(),
            ok: false,
            problem: "damaged".into(),
            bad_files: vec![("a.txt".into(), "sha256 differs".into())],
        }]);
        let text = encode_details(Some(&checks)).unwrap();
        assert_eq!(decode_details("c", CommandKind::RestoreDrill, &text), Some(checks));
        let legacy = r#"{"packages_completed":1,"packages_failed":0,"files":4,"held":null}"#;
        assert!(matches!(decode_details("c", CommandKind::BackupNow, legacy), Some(CommandDetails::BackupNow(_))));
        assert_eq!(decode_details("c", CommandKind::Move, r#"{"foo": 1}"#), None);
    }
}
