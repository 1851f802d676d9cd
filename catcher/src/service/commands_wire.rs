//! Commands on the wire: typed arguments and results to and from protobuf. Whatever arrives is
//! checked field by field; a command that does not fit its kind is refused with the field named.

use edgebackup_proto::v1::{self as pb, command_args::Kind as ArgsArm, command_details::Kind as DetailsArm};

use super::convert::{command_kind, tier, ts, ts_opt};
use super::validate as v;
use crate::domain::*;
use crate::error::{Error, Result};

pub fn command(c: &Command) -> pb::Command {
    pb::Command {
        command_id: c.command_id.clone(),
        kind: command_kind(c.kind()) as i32,
        package_id: c.package_id.clone(),
        lease_until: ts_opt(c.lease_until),
        args: Some(args_out(&c.args)),
    }
}

pub fn command_info(c: Command) -> pb::CommandInfo {
    pb::CommandInfo {
        command: Some(command(&c)),
        state: super::convert::command_state(c.state) as i32,
        attempts: c.attempts,
        created_at: Some(ts(c.created_at)),
        finished_at: ts_opt(c.finished_at),
        result_details: c.result.as_ref().map(details_out),
        source_id: c.source_id,
        result_message: c.result_message,
        progress: c.progress.map(|p| progress_out(&c.command_id, p)),
        progress_at: c.progress.map(|p| ts(p.at)),
    }
}

fn progress_out(command_id: &str, p: CommandProgress) -> pb::CommandProgress {
    pb::CommandProgress {
        command_id: command_id.to_owned(),
        phase: match p.phase {
            CommandPhase::Planning => pb::CommandPhase::Planning,
            CommandPhase::Transferring => pb::CommandPhase::Transferring,
            CommandPhase::Finishing => pb::CommandPhase::Finishing,
        } as i32,
        files_done: p.files_done,
        files_total: p.files_total,
        bytes_done: p.bytes_done,
        bytes_total: p.bytes_total,
    }
}

fn args_out(a: &CommandArgs) -> pb::CommandArgs {
    let arm = match a {
        CommandArgs::BackupNow => ArgsArm::BackupNow(pb::BackupNowArgs {}),
        CommandArgs::Verify => ArgsArm::Verify(pb::VerifyArgs {}),
        CommandArgs::Pause => ArgsArm::Pause(pb::PauseArgs {}),
        CommandArgs::Resume { reason } => ArgsArm::Resume(pb::ResumeArgs { reason: reason.clone() }),
        CommandArgs::RestoreDrill(d) => ArgsArm::RestoreDrill(pb::RestoreDrillArgs {
            tier: tier(d.scope.tier()) as i32,
            any_tier: d.scope == DrillScope::AnyTier,
            sample: d.sample,
            targets: d
                .targets
                .iter()
                .map(|t| pb::DrillTarget {
                    package_id: t.package_id.clone(),
                    owner_source_id: t.owner.clone(),
                    sha256: t.sha256.clone(),
                    station_id: t.station_id.clone(),
                })
                .collect(),
            scheduled: d.scheduled,
        }),
        CommandArgs::Move(m) => ArgsArm::Move(pb::MoveArgs {
            from_station_id: m.from_station_id.clone(),
            to_station_id: m.to_station_id.clone(),
            owner_source_id: m.owner.clone(),
            sha256: m.sha256.clone(),
            purpose: match m.purpose {
                MovePurpose::TierMove => pb::MovePurpose::TierMove,
                MovePurpose::Resend => pb::MovePurpose::Resend,
            } as i32,
        }),
        CommandArgs::Expire(x) => ArgsArm::Expire(pb::ExpireArgs {
            station_id: x.station_id.clone(),
            owner_source_id: x.owner.clone(),
            sha256: x.sha256.clone(),
            purpose: match x.purpose {
                ExpirePurpose::Expire => pb::ExpirePurpose::Expire,
                ExpirePurpose::Cleanup => pb::ExpirePurpose::Cleanup,
                ExpirePurpose::Delete => pb::ExpirePurpose::Delete,
            } as i32,
        }),
        CommandArgs::Compact(c) => ArgsArm::Compact(pb::CompactArgs {
            folder: c.folder.clone(),
            paths: c.paths.clone(),
            package_ids: c.package_ids.clone(),
        }),
        CommandArgs::Restore(r) => ArgsArm::Restore(pb::RestoreArgs {
            source_id: r.source.clone(),
            folders: r.folders.clone(),
            as_of: ts_opt(r.as_of),
            paths: r.paths.clone(),
            target_dir: r.target_dir.clone(),
            overwrite: r.overwrite,
        }),
    };
    pb::CommandArgs { kind: Some(arm) }
}

fn arm_kind(arm: &ArgsArm) -> CommandKind {
    match arm {
        ArgsArm::BackupNow(_) => CommandKind::BackupNow,
        ArgsArm::Verify(_) => CommandKind::Verify,
        ArgsArm::RestoreDrill(_) => CommandKind::RestoreDrill,
        ArgsArm::Pause(_) => CommandKind::Pause,
        ArgsArm::Resume(_) => CommandKind::Resume,
        ArgsArm::Move(_) => CommandKind::Move,
        ArgsArm::Expire(_) => CommandKind::Expire,
        ArgsArm::Restore(_) => CommandKind::Restore,
        ArgsArm::Compact(_) => CommandKind::Compact,
    }
}

/// The arguments of a command a person asks for (`CreateCommandRequest.args`, named `field`):
/// they must be of `kind`; left out, a kind that needs none gets its defaults.
pub fn request_args(field: &str, kind: CommandKind, args: Option<pb::CommandArgs>) -> Result<CommandArgs> {
    let arm = match args.and_then(|a| a.kind) {
        Some(arm) => arm,
        None => {
            return match kind {
                CommandKind::BackupNow => Ok(CommandArgs::BackupNow),
                CommandKind::Verify => Ok(CommandArgs::Verify),
                CommandKind::Pause => Ok(CommandArgs::Pause),
                CommandKind::Resume => Ok(CommandArgs::Resume { reason: String::new() }),
                CommandKind::RestoreDrill => Ok(CommandArgs::RestoreDrill(DrillArgs {
                    scope: DrillScope::Own,
                    sample: DEFAULT_DRILL_SAMPLE,
                    targets: Vec::new(),
                    scheduled: false,
                })),
                CommandKind::Move | CommandKind::Expire | CommandKind::Compact => {
                    Err(Error::invalid("kind", "move, expire and compact are issued by the catcher, not by hand"))
                }
                CommandKind::Restore => Err(Error::invalid(format!("{field}.restore.target_dir"), "required")),
            };
        }
    };
    let given = arm_kind(&arm);
    if given != kind {
        return Err(Error::invalid(field, format!("{given} arguments for a {kind} command")));
    }
    match arm {
        ArgsArm::BackupNow(_) => Ok(CommandArgs::BackupNow),
        ArgsArm::Verify(_) => Ok(CommandArgs::Verify),
        ArgsArm::Pause(_) => Ok(CommandArgs::Pause),
        ArgsArm::Resume(r) => {
            let reason = r.reason.trim();
            if reason.chars().count() > 1024 {
                return Err(Error::invalid(format!("{field}.resume.reason"), "longer than 1024 characters"));
            }
            Ok(CommandArgs::Resume { reason: reason.to_owned() })
        }
        ArgsArm::RestoreDrill(d) => {
            let f = |n: &str| format!("{field}.restore_drill.{n}");
            let tier = v::tier(&f("tier"), d.tier, false)?;
            let scope = match (tier, d.any_tier) {
                (Some(_), true) => return Err(Error::invalid(f("any_tier"), "excludes tier; name one or the other")),
                (Some(t), false) => DrillScope::Tier(t),
                (None, true) => DrillScope::AnyTier,
                (None, false) => DrillScope::Own,
            };
            if !d.targets.is_empty() {
                return Err(Error::invalid(f("targets"), "set by the catcher, which knows where every copy is"));
            }
            if d.scheduled {
                return Err(Error::invalid(f("scheduled"), "set by the catcher's drill schedule only"));
            }
            let sample = match d.sample {
                0 => DEFAULT_DRILL_SAMPLE,
                n if n > MAX_DRILL_SAMPLE => {
                    return Err(Error::invalid(f("sample"), format!("at most {MAX_DRILL_SAMPLE}")));
                }
                n => n,
            };
            Ok(CommandArgs::RestoreDrill(DrillArgs { scope, sample, targets: Vec::new(), scheduled: false }))
        }
        ArgsArm::Move(_) | ArgsArm::Expire(_) | ArgsArm::Compact(_) => {
            Err(Error::invalid("kind", "move, expire and compact are issued by the catcher, not by hand"))
        }
        ArgsArm::Restore(r) => restore_in(&format!("{field}.restore"), r).map(CommandArgs::Restore),
    }
}

fn absolute(field: &str, value: &str) -> Result<String> {
    let p = v::path(field, value)?;
    if !p.starts_with('/') || p.split('/').any(|part| part == "..") {
        return Err(Error::invalid(field, "must be an absolute path without '..'"));
    }
    Ok(p)
}

/// A restore's arguments, checked field by field (the agent checks `target_dir` against its
/// `restore_roots` too: only it knows them).
fn restore_in(field: &str, r: pb::RestoreArgs) -> Result<RestoreArgs> {
    let f = |n: &str| format!("{field}.{n}");
    if r.paths.len() > MAX_RESTORE_PATHS {
        return Err(Error::invalid(f("paths"), format!("more than {MAX_RESTORE_PATHS} globs")));
    }
    if r.folders.len() > MAX_RESTORE_PATHS {
        return Err(Error::invalid(f("folders"), format!("more than {MAX_RESTORE_PATHS} folders")));
    }
    let as_of = v::timestamp_ms(&f("as_of"), r.as_of.as_ref())?;
    let mut paths = Vec::with_capacity(r.paths.len());
    for (i, p) in r.paths.into_iter().enumerate() {
        let name = format!("{field}.paths[{i}]");
        if p.is_empty() || p.len() > 1024 || p.contains('\0') {
            return Err(Error::invalid(name, "a glob of 1..1024 bytes"));
        }
        globset::Glob::new(&p).map_err(|e| Error::invalid(name, e.to_string()))?;
        paths.push(p);
    }
    let folders = r
        .folders
        .iter()
        .enumerate()
        .map(|(i, folder)| absolute(&format!("{field}.folders[{i}]"), folder))
        .collect::<Result<_>>()?;
    Ok(RestoreArgs {
        source: if r.source_id.is_empty() { String::new() } else { v::id(&f("source_id"), &r.source_id)? },
        folders,
        as_of,
        paths,
        target_dir: absolute(&f("target_dir"), &r.target_dir)?,
        overwrite: r.overwrite,
    })
}

fn checks_out(checks: &[CopyCheck]) -> pb::CopyChecks {
    pb::CopyChecks {
        checks: checks
            .iter()
            .map(|c| pb::CopyCheck {
                package_id: c.package_id.clone(),
                station_id: c.station_id.clone(),
                location: c.location.clone(),
                ok: c.ok,
                problem: c.problem.clone(),
                bad_files: c
                    .bad_files
                    .iter()
                    .map(|(path, reason)| pb::BadFile { path: path.clone(), reason: reason.clone() })
                    .collect(),
            })
            .collect(),
    }
}

pub fn details_out(d: &CommandDetails) -> pb::CommandDetails {
    let arm = match d {
        CommandDetails::BackupNow(b) => DetailsArm::BackupNow(pb::BackupNowResult {
            packages_completed: b.packages_completed,
            packages_failed: b.packages_failed,
            files: b.files,
            held: b.held.clone(),
        }),
        CommandDetails::Verify(c) => DetailsArm::Verify(checks_out(c)),
        CommandDetails::RestoreDrill(c) => DetailsArm::RestoreDrill(checks_out(c)),
        CommandDetails::Move(m) => DetailsArm::Move(pb::MoveResult {
            verified_sha256: m.verified_sha256.clone(),
            tool_ref: m.tool_ref.clone(),
        }),
        CommandDetails::Compact(b) => DetailsArm::Compact(pb::BackupNowResult {
            packages_completed: b.packages_completed,
            packages_failed: b.packages_failed,
            files: b.files,
            held: b.held.clone(),
        }),
        CommandDetails::Restore(r) => DetailsArm::Restore(pb::RestoreResult {
            files: r.files,
            bytes: r.bytes,
            unchanged: r.unchanged,
            directories: r.directories,
            links: r.links,
            skipped: r
                .skipped
                .iter()
                .map(|(path, reason)| pb::RestoreSkip { path: path.clone(), reason: reason.clone() })
                .collect(),
            damaged: r.damaged.clone(),
        }),
    };
    pb::CommandDetails { kind: Some(arm) }
}

/// Most copies one verify or drill result may list.
const MAX_CHECKS: usize = 1000;
/// Most bad files one copy check may list.
const MAX_BAD_FILES: usize = 1000;

fn text(field: &str, value: String, max: usize) -> Result<String> {
    if value.chars().count() > max {
        return Err(Error::invalid(field, format!("longer than {max} characters")));
    }
    Ok(value)
}

/// `(path, reason)` pairs an agent reports (bad files, skipped entries), each bounded.
fn paths_with_reasons(items: impl Iterator<Item = (String, String)>, field: &str) -> Result<Vec<(String, String)>> {
    items
        .enumerate()
        .map(|(i, (path, reason))| {
            let g = |n: &str| format!("{field}[{i}].{n}");
            Ok((text(&g("path"), path, 4096)?, text(&g("reason"), reason, 1024)?))
        })
        .collect()
}

/// Copy checks named `field.checks` (just `checks` when `field` is empty), checked field by field.
pub fn checks_in(field: &str, c: pb::CopyChecks) -> Result<Vec<CopyCheck>> {
    let base = if field.is_empty() { "checks".to_owned() } else { format!("{field}.checks") };
    if c.checks.len() > MAX_CHECKS {
        return Err(Error::invalid(base, format!("more than {MAX_CHECKS} entries")));
    }
    c.checks
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let f = |n: &str| format!("{base}[{i}].{n}");
            if c.bad_files.len() > MAX_BAD_FILES {
                return Err(Error::invalid(f("bad_files"), format!("more than {MAX_BAD_FILES} entries")));
            }
            Ok(CopyCheck {
                package_id: v::package_id(&f("package_id"), &c.package_id)?,
                station_id: if c.station_id.is_empty() {
                    String::new()
                } else {
                    v::id(&f("station_id"), &c.station_id)?
                },
                location: text(&f("location"), c.location, 4096)?,
                ok: c.ok,
                problem: text(&f("problem"), c.problem, 4096)?,
                bad_files: paths_with_reasons(
                    c.bad_files.into_iter().map(|b| (b.path, b.reason)),
                    &format!("{base}[{i}].bad_files"),
                )?,
            })
        })
        .collect()
}

/// The details of an agent's command result (named `field`), checked field by field.
pub fn details_in(field: &str, d: Option<pb::CommandDetails>) -> Result<Option<CommandDetails>> {
    let Some(arm) = d.and_then(|d| d.kind) else { return Ok(None) };
    Ok(Some(match arm {
        DetailsArm::BackupNow(b) => CommandDetails::BackupNow(BackupReport {
            packages_completed: b.packages_completed,
            packages_failed: b.packages_failed,
            files: b.files,
            held: text(&format!("{field}.backup_now.held"), b.held, 1024)?,
        }),
        DetailsArm::Compact(b) => CommandDetails::Compact(BackupReport {
            packages_completed: b.packages_completed,
            packages_failed: b.packages_failed,
            files: b.files,
            held: text(&format!("{field}.compact.held"), b.held, 1024)?,
        }),
        DetailsArm::Verify(c) => CommandDetails::Verify(checks_in(&format!("{field}.verify"), c)?),
        DetailsArm::RestoreDrill(c) => CommandDetails::RestoreDrill(checks_in(&format!("{field}.restore_drill"), c)?),
        DetailsArm::Move(m) => CommandDetails::Move(MoveReport {
            verified_sha256: v::sha256(&format!("{field}.move.verified_sha256"), &m.verified_sha256)?,
            tool_ref: text(&format!("{field}.move.tool_ref"), m.tool_ref, 1024)?,
        }),
        DetailsArm::Restore(r) => {
            let f = |n: &str| format!("{field}.restore.{n}");
            if r.skipped.len() > MAX_BAD_FILES || r.damaged.len() > MAX_CHECKS {
                return Err(Error::invalid(f("skipped"), format!("more than {MAX_BAD_FILES} entries")));
            }
            CommandDetails::Restore(RestoreReport {
                files: r.files,
                bytes: r.bytes,
                unchanged: r.unchanged,
                directories: r.directories,
                links: r.links,
                skipped: paths_with_reasons(
                    r.skipped.into_iter().map(|k| (k.path, k.reason)),
                    &format!("{field}.restore.skipped"),
                )?,
                damaged: r
                    .damaged
                    .into_iter()
                    .enumerate()
                    .map(|(i, d)| text(&format!("{field}.restore.damaged[{i}]"), d, 4096))
                    .collect::<Result<_>>()?,
            })
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_arguments_must_fit_their_kind() {
        let pause = Some(pb::CommandArgs { kind: Some(ArgsArm::Pause(pb::PauseArgs {})) });
        let err = request_args("args", CommandKind::Resume, pause).unwrap_err();
        assert!(err.to_string().starts_with("args: pause arguments for a resume command"), "{err}");
        let drill = |d: pb::RestoreDrillArgs| Some(pb::CommandArgs { kind: Some(ArgsArm::RestoreDrill(d)) });
        let both = drill(pb::RestoreDrillArgs { tier: pb::Tier::Cold as i32, any_tier: true, ..Default::default() });
        assert!(request_args("args", CommandKind::RestoreDrill, both).unwrap_err().to_string().contains("any_tier"));
        let planted = drill(pb::RestoreDrillArgs {
            targets: vec![pb::DrillTarget { package_id: "x".into(), ..Default::default() }],
            ..Default::default()
        });
        let err = request_args("args", CommandKind::RestoreDrill, planted).unwrap_err().to_string();
        assert!(err.starts_with("args.restore_drill.targets:"), "{err}");
        let cold = drill(pb::RestoreDrillArgs { tier: pb::Tier::Cold as i32, sample: 2, ..Default::default() });
        assert_eq!(
            request_args("args", CommandKind::RestoreDrill, cold).unwrap(),
            CommandArgs::RestoreDrill(DrillArgs {
                scope: DrillScope::Tier(Tier::Cold),
                sample: 2,
                targets: vec![],
                scheduled: false
            })
        );
        assert!(request_args("args", CommandKind::Move, None).is_err());
        let compact = Some(pb::CommandArgs { kind: Some(ArgsArm::Compact(pb::CompactArgs::default())) });
        let err = request_args("args", CommandKind::Compact, compact).unwrap_err().to_string();
        assert!(err.starts_with("kind: move, expire and compact are issued by the catcher"), "{err}");
    }
}
