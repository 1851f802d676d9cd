//! Input validation at the API boundary. Every error names the field as the caller spelled it.

use edgebackup_proto::v1 as pb;

use crate::domain::*;
use crate::error::{Error, Result};

/// An id: 1..256 characters, no control characters.
pub fn id(field: &str, value: &str) -> Result<String> {
    if value.is_empty() {
        return Err(Error::invalid(field, "required"));
    }
    if value.chars().count() > 256 {
        return Err(Error::invalid(field, "longer than 256 characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, "contains control characters"));
    }
    Ok(value.to_owned())
}

/// Text of 1..=`max` characters without NUL; `empty` says what an empty one is.
fn bounded_text(field: &str, value: &str, max: usize, empty: &str) -> Result<String> {
    if value.is_empty() {
        return Err(Error::invalid(field, empty));
    }
    if value.chars().count() > max {
        return Err(Error::invalid(field, format!("longer than {max} characters")));
    }
    if value.contains('\0') {
        return Err(Error::invalid(field, "contains a NUL character"));
    }
    Ok(value.to_owned())
}

/// A logical path: 1..1024 characters, no NUL.
pub fn path(field: &str, value: &str) -> Result<String> {
    bounded_text(field, value, 1024, "required")
}

/// Search text: 1..256 characters, no NUL, surrounding whitespace dropped.
pub fn search_text(field: &str, value: &str) -> Result<String> {
    bounded_text(field, value.trim(), 256, "blank")
}

/// A path inside a watched folder: relative, `/`-separated, no empty, `.` or `..` parts.
pub fn relative_path(field: &str, value: &str) -> Result<String> {
    if value.is_empty() {
        return Err(Error::invalid(field, "required"));
    }
    if value.len() > 4096 {
        return Err(Error::invalid(field, "longer than 4096 bytes"));
    }
    if value.contains('\0') {
        return Err(Error::invalid(field, "contains a NUL character"));
    }
    if value.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
        return Err(Error::invalid(field, "must be relative, without empty, '.' or '..' parts"));
    }
    Ok(value.to_owned())
}

/// A wire timestamp as epoch milliseconds; unset is `None`; out-of-range nanos or seconds are
/// refused naming the field (never wrapped, never a panic).
pub fn timestamp_ms(field: &str, t: Option<&prost_types::Timestamp>) -> Result<Option<Millis>> {
    let Some(t) = t else { return Ok(None) };
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(Error::invalid(field, "nanos out of range"));
    }
    t.seconds
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(i64::from(t.nanos / 1_000_000)))
        .map(Some)
        .ok_or_else(|| Error::invalid(field, "out of range"))
}

/// A sha256: empty, or 64 lowercase hex digits.
pub fn sha256(field: &str, value: &str) -> Result<String> {
    if value.is_empty() {
        return Ok(String::new());
    }
    if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(Error::invalid(field, "must be 64 lowercase hex digits"));
    }
    Ok(value.to_owned())
}

/// A package id: a UUID (agents mint UUIDv7), normalised to lowercase hyphenated form.
pub fn package_id(field: &str, value: &str) -> Result<String> {
    if value.is_empty() {
        return Err(Error::invalid(field, "required"));
    }
    uuid::Uuid::parse_str(value)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| Error::invalid(field, "must be a UUID (agents mint UUIDv7)"))
}

/// A percentage 0..=100.
pub fn percent(field: &str, value: u32) -> Result<u32> {
    if value > 100 {
        return Err(Error::invalid(field, format!("must be 0..100, got {value}")));
    }
    Ok(value)
}

/// A page size or limit: 0 means `default`, else 1..=max.
pub fn limit(field: &str, value: u32, default: u32, max: u32) -> Result<u64> {
    match value {
        0 => Ok(u64::from(default)),
        v if v > max => Err(Error::invalid(field, format!("must be at most {max}"))),
        v => Ok(u64::from(v)),
    }
}

/// Sizes travel as u64 but are stored as i64.
pub fn size(field: &str, value: u64) -> Result<u64> {
    if value > i64::MAX as u64 {
        return Err(Error::invalid(field, "too large"));
    }
    Ok(value)
}

/// An optional JSON object argument.
pub fn json_object(field: &str, value: &str) -> Result<String> {
    if value.is_empty() {
        return Ok(String::new());
    }
    match serde_json::from_str::<serde_json::Value>(value) {
        Ok(serde_json::Value::Object(_)) => Ok(value.to_owned()),
        _ => Err(Error::invalid(field, "must be a JSON object")),
    }
}

/// Maps a wire enum to a domain one; `required` rejects UNSPECIFIED.
macro_rules! enum_field {
    ($fn:ident, $pb:ty, $domain:ty, { $($pbv:ident => $dv:ident),+ $(,)? }) => {
        pub fn $fn(field: &str, value: i32, required: bool) -> Result<Option<$domain>> {
            match <$pb>::try_from(value) {
                $(Ok(<$pb>::$pbv) => Ok(Some(<$domain>::$dv)),)+
                Ok(_) if !required => Ok(None),
                Ok(_) => Err(Error::invalid(field, "required")),
                Err(_) => Err(Error::invalid(field, format!("unknown value {value}"))),
            }
        }
    };
}

enum_field!(package_type, pb::PackageType, PackageType, {
    UserData => UserData, AppLogs => AppLogs, AuditLogs => AuditLogs,
    BusinessData => BusinessData, JobPackage => JobPackage, Cache => Cache,
});
enum_field!(package_status, pb::PackageStatus, PackageStatus, {
    Pending => Pending, InProgress => InProgress, Completed => Completed, Failed => Failed, Expired => Expired,
});
enum_field!(tier, pb::Tier, Tier, { Hot => Hot, Warm => Warm, Cold => Cold, Offsite => Offsite });
enum_field!(tool, pb::Tool, Tool, { Native => Native, Restic => Restic, Rclone => Rclone });
enum_field!(placement_status, pb::PlacementStatus, PlacementStatus, {
    InProgress => InProgress, Verified => Verified, Failed => Failed, Deleted => Deleted,
});
enum_field!(entry_kind, pb::EntryKind, EntryKind, {
    File => File, Directory => Directory, Symlink => Symlink, Hardlink => Hardlink,
});
enum_field!(capability, pb::Capability, Capability, { Backup => Backup, Mover => Mover });
enum_field!(command_kind, pb::CommandKind, CommandKind, {
    BackupNow => BackupNow, Verify => Verify, RestoreDrill => RestoreDrill, Pause => Pause,
    Resume => Resume, Move => Move, Expire => Expire, Restore => Restore, Compact => Compact,
});
enum_field!(alert_kind, pb::AlertKind, AlertKind, {
    RpoBreached => RpoBreached, AgentSilent => AgentSilent, PackageFailed => PackageFailed,
    SafetyTripped => SafetyTripped, RestoreDrillFailed => RestoreDrillFailed, MoveFailing => MoveFailing,
    StationFailing => StationFailing, JournalBroken => JournalBroken, PendingChange => PendingChange,
    ChannelFailing => ChannelFailing,
});
enum_field!(command_state, pb::CommandState, CommandState, {
    Pending => Pending, Leased => Leased, Succeeded => Succeeded, Failed => Failed,
});

/// A duration in whole seconds, at least `min`.
/// Most copies one report may list.
const MAX_PLACEMENTS: usize = 64;

/// Copies reported written (`field[i].station_id`, …).
pub fn placement_reports(field: &str, list: Vec<pb::PlacementReport>) -> Result<Vec<crate::writer::PlacementReport>> {
    if list.len() > MAX_PLACEMENTS {
        return Err(Error::invalid(field, format!("at most {MAX_PLACEMENTS} copies")));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, pl) in list.into_iter().enumerate() {
        let f = |n: &str| format!("{field}[{i}].{n}");
        out.push(crate::writer::PlacementReport {
            station_id: id(&f("station_id"), &pl.station_id)?,
            status: placement_status(&f("status"), pl.status, true)?.expect("required"),
            verified_sha256: sha256(&f("verified_sha256"), &pl.verified_sha256)?,
            error: pl.error.chars().take(4096).collect(),
        });
    }
    Ok(out)
}

pub fn duration_secs(field: &str, d: Option<&prost_types::Duration>, min: u64) -> Result<u64> {
    let Some(d) = d else {
        return if min == 0 { Ok(0) } else { Err(Error::invalid(field, "required")) };
    };
    if d.seconds < 0 || d.nanos < 0 {
        return Err(Error::invalid(field, "must not be negative"));
    }
    if d.nanos != 0 {
        return Err(Error::invalid(field, "must be whole seconds"));
    }
    let secs = d.seconds as u64;
    if secs < min {
        return Err(Error::invalid(field, format!("must be at least {min} s")));
    }
    if secs > 100 * 365 * 86_400 {
        return Err(Error::invalid(field, "must be at most 100 years"));
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(r: Result<impl std::fmt::Debug>) -> String {
        match r {
            Err(Error::InvalidArgument { field, .. }) => field,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn rejects_with_the_field_name() {
        assert_eq!(field_of(id("source_id", "")), "source_id");
        assert_eq!(field_of(id("source_id", &"x".repeat(257))), "source_id");
        id("source_id", &"é".repeat(256)).unwrap();
        assert_eq!(field_of(path("path", &"p".repeat(1025))), "path");
        assert_eq!(field_of(sha256("sha256", &"A".repeat(64))), "sha256");
        assert_eq!(field_of(sha256("sha256", "abc")), "sha256");
        sha256("sha256", &"a".repeat(64)).unwrap();
        assert_eq!(field_of(package_id("package_id", "nope")), "package_id");
        assert_eq!(field_of(percent("progress_percent", 101)), "progress_percent");
        assert_eq!(field_of(package_type("package_type", 99, false)), "package_type");
        assert_eq!(field_of(tier("tier", 0, true)), "tier");
        assert_eq!(tier("tier", 0, false).unwrap(), None);
        assert_eq!(field_of(limit("page_size", 5000, 100, 1000)), "page_size");
        assert_eq!(field_of(json_object("args_json", "[1]")), "args_json");
        assert_eq!(field_of(duration_secs("wait", Some(&prost_types::Duration { seconds: 0, nanos: 5 }), 1)), "wait");
    }

    #[test]
    fn package_ids_are_normalised() {
        let id = uuid::Uuid::now_v7();
        assert_eq!(package_id("p", &id.simple().to_string().to_uppercase()).unwrap(), id.to_string());
    }
}
