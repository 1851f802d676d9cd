//! Human-readable words for the wire's numbers and enums: sizes, ages, durations, labels, bars.
//!
//! Every function here is pure; the report and the live view share them so both say the same thing.

use edgebackup_proto::v1 as pb;

/// Epoch milliseconds of a protobuf timestamp; `None` when unset.
pub fn millis(ts: Option<&prost_types::Timestamp>) -> Option<i64> {
    ts.map(|t| t.seconds.saturating_mul(1000).saturating_add(i64::from(t.nanos) / 1_000_000))
}

/// `1.5 KiB`, `3.0 GiB`; bytes below 1 KiB as `512 B`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A span of seconds in its largest whole unit: `42s`, `5m`, `3h`, `12d`, `2y`.
pub fn span(secs: u64) -> String {
    // Two units where the second says something: 90 s is "1m 30s", not "1m".
    const UNITS: [(u64, &str); 5] = [(365 * 86_400, "y"), (86_400, "d"), (3600, "h"), (60, "m"), (1, "s")];
    let Some(i) = UNITS.iter().position(|(n, _)| secs >= *n) else { return "0s".into() };
    let (big, big_name) = UNITS[i];
    let first = format!("{}{big_name}", secs / big);
    match UNITS.get(i + 1) {
        Some((small, small_name)) if (secs % big) / small > 0 => {
            format!("{first} {}{small_name}", (secs % big) / small)
        }
        _ => first,
    }
}

/// How long ago `at` was, seen from `now` (both epoch ms); `-` when unknown. Clock skew reads as `0s`.
pub fn age(at: Option<i64>, now: i64) -> String {
    match at {
        Some(at) => span(u64::try_from(now.saturating_sub(at)).unwrap_or(0) / 1000),
        None => "-".into(),
    }
}

/// How long until `at`: `in 5m`, or `due` when it is already past.
pub fn until(at: Option<i64>, now: i64) -> String {
    match at {
        Some(at) if at > now => format!("in {}", span(u64::try_from(at - now).unwrap_or(0) / 1000)),
        Some(_) => "due".into(),
        None => "-".into(),
    }
}

/// A protobuf duration as a span (`7d`); `-` when unset.
pub fn duration(d: Option<&prost_types::Duration>) -> String {
    d.map_or("-".into(), |d| span(u64::try_from(d.seconds).unwrap_or(0)))
}

/// A progress bar `width` cells wide followed by the percentage: `███░░░  50%`.
pub fn progress_bar(percent: u32, width: usize) -> String {
    let percent = percent.min(100);
    let filled = (percent as usize * width + 50) / 100;
    format!("{}{} {percent:>3}%", "█".repeat(filled), "░".repeat(width - filled))
}

/// The first `n` characters of a checksum, or `-` when there is none.
pub fn checksum_prefix(sha: &str, n: usize) -> String {
    if sha.is_empty() { "-".into() } else { sha.chars().take(n).collect() }
}

/// Shortens `s` to `width` characters, ending in `…` when cut; pads with spaces to exactly `width`.
pub fn fit(s: &str, width: usize) -> String {
    let count = s.chars().count();
    if count <= width {
        return format!("{s}{}", " ".repeat(width - count));
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push('…');
    out
}

/// Like [`fit`], but cuts the start (`…/06/01/IMG_0001.jpg`): for paths, whose end says most.
pub fn fit_tail(s: &str, width: usize) -> String {
    let count = s.chars().count();
    if count <= width || width == 0 {
        return fit(s, width);
    }
    let tail: String = s.chars().skip(count - (width - 1)).collect();
    format!("…{tail}")
}

/// Like [`fit`], aligned right.
pub fn fit_right(s: &str, width: usize) -> String {
    let count = s.chars().count();
    if count >= width { fit(s, width) } else { format!("{}{s}", " ".repeat(width - count)) }
}

/// Stable lowercase key of a tier; the unspecified tier is the "clients" car.
pub fn tier_key(tier: i32) -> &'static str {
    match pb::Tier::try_from(tier).unwrap_or(pb::Tier::Unspecified) {
        pb::Tier::Unspecified => "clients",
        pb::Tier::Hot => "hot",
        pb::Tier::Warm => "warm",
        pb::Tier::Cold => "cold",
        pb::Tier::Offsite => "offsite",
    }
}

/// Display name of a tier ("Hot"); `unspecified_as` names the unspecified tier in context.
pub fn tier_label(tier: i32, unspecified_as: &'static str) -> &'static str {
    match pb::Tier::try_from(tier).unwrap_or(pb::Tier::Unspecified) {
        pb::Tier::Unspecified => unspecified_as,
        pb::Tier::Hot => "Hot",
        pb::Tier::Warm => "Warm",
        pb::Tier::Cold => "Cold",
        pb::Tier::Offsite => "Offsite",
    }
}

/// Stable key of a package status (`in_progress`).
pub fn status_key(status: i32) -> &'static str {
    match pb::PackageStatus::try_from(status).unwrap_or(pb::PackageStatus::Unspecified) {
        pb::PackageStatus::Unspecified => "unknown",
        pb::PackageStatus::Pending => "pending",
        pb::PackageStatus::InProgress => "in_progress",
        pb::PackageStatus::Completed => "completed",
        pb::PackageStatus::Failed => "failed",
        pb::PackageStatus::Expired => "expired",
    }
}

/// Stable key of a package type (`user_data`).
pub fn type_key(package_type: i32) -> &'static str {
    match pb::PackageType::try_from(package_type).unwrap_or(pb::PackageType::Unspecified) {
        pb::PackageType::Unspecified => "unknown",
        pb::PackageType::UserData => "user_data",
        pb::PackageType::AppLogs => "app_logs",
        pb::PackageType::AuditLogs => "audit_logs",
        pb::PackageType::BusinessData => "business_data",
        pb::PackageType::JobPackage => "job_package",
        pb::PackageType::Cache => "cache",
    }
}

/// Stable key of a safety state.
pub fn safety_key(state: i32) -> &'static str {
    match pb::SafetyState::try_from(state).unwrap_or(pb::SafetyState::Unspecified) {
        pb::SafetyState::StoppedForSafety => "stopped_for_safety",
        pb::SafetyState::Ok => "ok",
        pb::SafetyState::Unspecified => "unknown",
    }
}

pub fn command_state_key(state: i32) -> &'static str {
    match pb::CommandState::try_from(state).unwrap_or(pb::CommandState::Unspecified) {
        pb::CommandState::Unspecified => "unknown",
        pb::CommandState::Pending => "pending",
        pb::CommandState::Leased => "running",
        pb::CommandState::Succeeded => "succeeded",
        pb::CommandState::Failed => "failed",
    }
}

pub fn command_phase_key(phase: i32) -> &'static str {
    match pb::CommandPhase::try_from(phase).unwrap_or(pb::CommandPhase::Unspecified) {
        pb::CommandPhase::Unspecified => "unknown",
        pb::CommandPhase::Planning => "planning",
        pb::CommandPhase::Transferring => "transferring",
        pb::CommandPhase::Finishing => "finishing",
    }
}

/// Words for humans: a key with its underscores turned into spaces.
pub fn words(key: &str) -> String {
    key.replace('_', " ")
}

/// One stop of a rule set: its wait, `∞` when kept forever, `-` when the stop is skipped.
pub fn stop(stop: Option<&pb::Stop>) -> String {
    match stop {
        Some(s) if s.enabled && s.never_delete => "∞".into(),
        Some(s) if s.enabled => duration(s.wait.as_ref()),
        _ => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn ages_take_the_largest_unit_and_the_next_when_it_counts() {
        let now = 1_000_000_000;
        assert_eq!(age(Some(now - 42_000), now), "42s");
        assert_eq!(age(Some(now - 5 * 60_000), now), "5m");
        assert_eq!(age(Some(now - 3 * 3_600_000), now), "3h");
        assert_eq!(age(Some(now - 12 * 86_400_000), now), "12d");
        assert_eq!(age(Some(now - (3 * 3_600_000 + 12 * 60_000 + 5_000)), now), "3h 12m", "seconds left out");
        assert_eq!(span(400 * 86_400), "1y 35d");
        assert_eq!(age(Some(now + 5_000), now), "0s", "a clock ahead of ours is not negative");
        assert_eq!(age(None, now), "-");
        assert_eq!(until(Some(now + 90_000), now), "in 1m 30s", "90 s is not a minute");
        assert_eq!(until(Some(now - 1), now), "due");
    }

    #[test]
    fn bars_and_fitting() {
        assert_eq!(progress_bar(50, 6), "███░░░  50%");
        assert_eq!(progress_bar(0, 4), "░░░░   0%");
        assert_eq!(progress_bar(250, 4), "████ 100%", "over 100 is clamped");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("ab", 4), "ab  ");
        assert_eq!(fit_right("ab", 4), "  ab");
        assert_eq!(fit_tail("/home/ana/report.pdf", 12), "…/report.pdf");
        assert_eq!(fit_tail("/a", 4), "/a  ");
        assert_eq!(checksum_prefix("9f86d081884c", 8), "9f86d081");
        assert_eq!(checksum_prefix("", 8), "-");
    }

    #[test]
    fn labels_tolerate_unknown_numbers() {
        assert_eq!(tier_key(0), "clients");
        assert_eq!(tier_key(99), "clients");
        assert_eq!(status_key(2), "in_progress");
        assert_eq!(type_key(42), "unknown");
        assert_eq!(words("in_progress"), "in progress");
        let forever = pb::Stop { enabled: true, never_delete: true, wait: None };
        assert_eq!(stop(Some(&forever)), "∞");
        assert_eq!(stop(None), "-");
    }
}
