//! Retention rule sets ("train lines"): validation, presets, and planning a package's next move;
//! and the changes to them that wait out the protection delay (`pending`).

mod pending;

use serde::{Deserialize, Serialize};

pub use pending::{PendingChange, PendingKind, PendingState};

use crate::domain::Spelling;
use crate::domain::{Millis, PackageType, Tier};
use crate::error::{Error, Result};

const DAY: u64 = 86_400;

/// One stop of a rule set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Stop {
    pub enabled: bool,
    /// Seconds a package stays at this stop.
    pub wait_secs: u64,
    /// Offsite only: keep forever.
    #[serde(default)]
    pub never_delete: bool,
}

impl Stop {
    const OFF: Stop = Stop { enabled: false, wait_secs: 0, never_delete: false };

    fn on(wait_secs: u64) -> Self {
        Self { enabled: true, wait_secs, never_delete: false }
    }
}

/// The retention rule of one package type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSet {
    pub package_type: PackageType,
    /// Stops in tier order: hot, warm, cold, offsite.
    pub stops: [Stop; 4],
    #[serde(default)]
    pub replicate_to_all: bool,
    /// Cache type only: seconds to live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_ttl_secs: Option<u64>,
    /// Recovery point objective in seconds; unset: the type's default; 0: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_secs: Option<u64>,
}

/// Whether retention must keep a package whose rules say it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// No version it holds is needed: it may expire.
    No,
    /// It holds the newest version of a present entry (or versions kept forever).
    Forever,
    /// Its superseded versions are kept until then.
    Until(Millis),
}

/// Where a package goes when its current stop's wait ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Move on to this tier.
    Move(Tier),
    /// Retention is over: delete.
    Expire,
    /// Stay forever (offsite never_delete).
    Stay,
}

impl RuleSet {
    /// The stop for `tier`.
    pub fn stop(&self, tier: Tier) -> Stop {
        self.stops[tier.index()]
    }

    /// The tier a freshly completed package enters.
    pub fn first_tier(&self) -> Tier {
        Tier::ALL
            .iter()
            .copied()
            .find(|t| self.stop(*t).enabled)
            // Validation guarantees an enabled stop, except for cache, which lives in hot.
            .unwrap_or(Tier::Hot)
    }

    /// How long a package stays in `tier`; `None` when it stays forever.
    pub fn wait_in(&self, tier: Tier) -> Option<u64> {
        if let Some(ttl) = self.cache_ttl_secs {
            return Some(ttl);
        }
        let stop = self.stop(tier);
        if tier == Tier::Offsite && stop.never_delete {
            return None;
        }
        Some(stop.wait_secs)
    }

    /// What happens after a package's time in `tier` ends.
    pub fn after(&self, tier: Tier) -> Next {
        if self.cache_ttl_secs.is_some() {
            return Next::Expire;
        }
        if tier == Tier::Offsite && self.stop(tier).never_delete {
            return Next::Stay;
        }
        match Tier::ALL[tier.index() + 1..].iter().find(|t| self.stop(**t).enabled) {
            Some(next) => Next::Move(*next),
            None => Next::Expire,
        }
    }

    /// How long a superseded or deleted version is kept, counted from when it was superseded:
    /// the whole route's waits (`None`: forever, offsite never_delete). Cache data is
    /// transient and keeps nothing past its ttl.
    pub fn version_retention_ms(&self) -> Option<Millis> {
        if self.cache_ttl_secs.is_some() {
            return Some(0);
        }
        if self.stops[Tier::Offsite.index()].enabled && self.stops[Tier::Offsite.index()].never_delete {
            return None;
        }
        let secs: u64 = self.stops.iter().filter(|s| s.enabled).map(|s| s.wait_secs).sum();
        Some(i64::try_from(secs).unwrap_or(i64::MAX / 1000).saturating_mul(1000))
    }

    /// Whether a package with `hold` (its versions' state) must be kept at `now` although its
    /// rules would expire it. The newest version of a present entry is never expired, whatever
    /// the rules say; cache packages are (their data is transient by definition).
    pub fn held(&self, hold: Option<&crate::domain::Hold>, now: Millis) -> Held {
        let Some(h) = hold else { return Held::No };
        if self.cache_ttl_secs.is_some() {
            return Held::No;
        }
        if h.live_versions > 0 {
            return Held::Forever;
        }
        match (h.superseded_at, self.version_retention_ms()) {
            (None, _) => Held::No,
            (Some(_), None) => Held::Forever,
            (Some(at), Some(keep)) if at.saturating_add(keep) > now => Held::Until(at.saturating_add(keep)),
            (Some(_), Some(_)) => Held::No,
        }
    }

    /// Whether a package in `tier` would expire next, so that a version it holds keeps it
    /// (`held`); cache data is transient and never held.
    pub fn ends_route(&self, tier: Tier) -> bool {
        self.cache_ttl_secs.is_none() && self.after(tier) == Next::Expire
    }

    /// When a package that entered `tier` at `entered_at` is due to move on.
    pub fn due_at(&self, tier: Tier, entered_at: Millis) -> Option<Millis> {
        self.wait_in(tier)
            .map(|secs| entered_at.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000)))
    }

    /// What `self` keeps for a shorter time than `before` did, one line each ("hot wait 30d ->
    /// 1s", "cold stop disabled"); empty when it keeps everything at least as long. A change
    /// with any such line would delete data sooner and waits out the protection delay.
    pub fn shortened_from(&self, before: &RuleSet) -> Vec<String> {
        let mut lines = Vec::new();
        if let (Some(b), Some(a)) = (before.cache_ttl_secs, self.cache_ttl_secs)
            && a < b
        {
            lines.push(format!("cache ttl {} -> {}", span(b), span(a)));
        }
        if before.cache_ttl_secs.is_none() && self.cache_ttl_secs.is_some() {
            lines.push("stops replaced by a cache ttl".to_owned());
        }
        for tier in Tier::ALL {
            let (b, a) = (before.stop(*tier), self.stop(*tier));
            let name = tier.as_str();
            if !b.enabled {
                continue;
            }
            if !a.enabled {
                lines.push(format!("{name} stop disabled"));
            } else if b.never_delete && !a.never_delete {
                lines.push(format!("{name} keep forever -> {}", span(a.wait_secs)));
            } else if !a.never_delete && a.wait_secs < b.wait_secs {
                lines.push(format!("{name} wait {} -> {}", span(b.wait_secs), span(a.wait_secs)));
            }
        }
        if before.replicate_to_all && !self.replicate_to_all {
            lines.push("replicate to all tiers turned off (earlier tiers' copies go after each move)".to_owned());
        }
        lines
    }

    /// The recovery point objective in milliseconds (0: none).
    pub fn rpo_ms(&self) -> Millis {
        self.rpo_secs
            .map_or_else(|| crate::domain::default_rpo_ms(self.package_type), |s| (s as Millis).saturating_mul(1000))
    }

    /// Checks the rule set; the error names the offending field under `rule_set.`.
    pub fn validate(&self) -> Result<()> {
        let names = ["hot", "warm", "cold", "offsite"];
        if self.rpo_secs.is_some_and(|s| s > 10 * 365 * 86_400) {
            return Err(Error::invalid("rule_set.rpo", "at most ten years"));
        }
        if self.package_type == PackageType::Cache {
            let ttl = self.cache_ttl_secs.unwrap_or(0);
            if ttl < 1 {
                return Err(Error::invalid("rule_set.cache_ttl", "cache packages need a ttl of at least 1 s"));
            }
            if let Some(i) = self.stops.iter().position(|s| s.enabled) {
                return Err(Error::invalid(
                    format!("rule_set.{}.enabled", names[i]),
                    "cache packages have only a ttl; disable every stop",
                ));
            }
            if self.replicate_to_all {
                return Err(Error::invalid("rule_set.replicate_to_all", "cache packages are never replicated"));
            }
            return Ok(());
        }
        if self.cache_ttl_secs.is_some() {
            return Err(Error::invalid("rule_set.cache_ttl", "only the cache type has a ttl"));
        }
        if !self.stops.iter().any(|s| s.enabled) {
            return Err(Error::invalid("rule_set", "at least one stop must be enabled"));
        }
        for (i, stop) in self.stops.iter().enumerate() {
            let name = names[i];
            if stop.never_delete && i != Tier::Offsite.index() {
                return Err(Error::invalid(
                    format!("rule_set.{name}.never_delete"),
                    "only the offsite stop may be never_delete",
                ));
            }
            if stop.never_delete && !stop.enabled {
                return Err(Error::invalid(
                    "rule_set.offsite.never_delete",
                    "never_delete needs the offsite stop enabled",
                ));
            }
            // Strict order: a stop after warm may be enabled only if the stop before it is.
            // Hot alone may be skipped (audit_logs start in warm).
            if stop.enabled && i >= 2 && !self.stops[i - 1].enabled {
                return Err(Error::invalid(
                    format!("rule_set.{name}.enabled"),
                    format!("{name} needs {} enabled (stops run in order hot, warm, cold, offsite)", names[i - 1]),
                ));
            }
            if stop.enabled && !stop.never_delete && stop.wait_secs < 1 {
                return Err(Error::invalid(format!("rule_set.{name}.wait"), "an enabled stop waits at least 1 s"));
            }
        }
        Ok(())
    }
}

/// A wait for people: "30d", "2h", "90s".
pub fn span(secs: u64) -> String {
    match secs {
        s if s >= DAY && s % DAY == 0 => format!("{}d", s / DAY),
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A named set of rule sets.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    pub name: &'static str,
    pub description: &'static str,
    pub rule_sets: Vec<RuleSet>,
}

/// Builds a standard rule set from waits in `unit` seconds (0 = stop disabled, `None` offsite = never delete).
fn standard(package_type: PackageType, unit: u64, waits: [u64; 3], offsite: Option<u64>, replicate: bool) -> RuleSet {
    let stop = |w: u64| if w == 0 { Stop::OFF } else { Stop::on(w * unit) };
    RuleSet {
        package_type,
        stops: [
            stop(waits[0]),
            stop(waits[1]),
            stop(waits[2]),
            match offsite {
                Some(w) => Stop::on(w * unit),
                None => Stop { enabled: true, wait_secs: 0, never_delete: true },
            },
        ],
        replicate_to_all: replicate,
        cache_ttl_secs: None,
        rpo_secs: None,
    }
}

fn cache(ttl: u64) -> RuleSet {
    RuleSet {
        package_type: PackageType::Cache,
        stops: [Stop::OFF; 4],
        replicate_to_all: false,
        cache_ttl_secs: Some(ttl),
        rpo_secs: None,
    }
}

/// Builds a preset from per-type waits; business_data copies user_data and replicates.
fn preset_from(
    unit: u64,
    user: ([u64; 3], u64),
    logs: ([u64; 3], u64),
    jobs: ([u64; 3], u64),
    ttl: u64,
) -> Vec<RuleSet> {
    vec![
        standard(PackageType::UserData, unit, user.0, Some(user.1), false),
        standard(PackageType::AppLogs, unit, logs.0, Some(logs.1), false),
        standard(PackageType::AuditLogs, unit, [0, 7, 365], None, false),
        standard(PackageType::BusinessData, unit, user.0, Some(user.1), true),
        standard(PackageType::JobPackage, unit, jobs.0, Some(jobs.1), false),
        cache(ttl),
    ]
}

/// Gives each rule set its RPO: `secs(type)`.
fn with_rpo(mut sets: Vec<RuleSet>, secs: impl Fn(PackageType) -> u64) -> Vec<RuleSet> {
    for rs in &mut sets {
        rs.rpo_secs = Some(secs(rs.package_type));
    }
    sets
}

/// The standard presets' RPOs: a day, four hours for business data, a week for job packages.
fn standard_rpo(t: PackageType) -> u64 {
    match t {
        PackageType::BusinessData => 4 * 3600,
        t => (crate::domain::default_rpo_ms(t) / 1000) as u64,
    }
}

/// The built-in presets (DESIGN.md §4).
pub fn presets() -> Vec<Preset> {
    let mut demo = preset_from(1, ([10, 30, 60], 90), ([5, 15, 30], 45), ([10, 20, 30], 40), 5);
    // audit_logs in the demo: skip hot, short warm and cold, keep forever offsite.
    demo[2] = standard(PackageType::AuditLogs, 1, [0, 10, 30], None, false);
    // Ten minutes in the demo (its agents pass every few seconds); none for cache.
    let demo = with_rpo(demo, |t| if t == PackageType::Cache { 0 } else { 600 });
    vec![
        Preset {
            name: "cloud",
            description: "cloud-first defaults: a week hot, a month warm, a year cold, seven years offsite",
            rule_sets: with_rpo(
                preset_from(DAY, ([7, 30, 365], 2555), ([3, 14, 90], 365), ([7, 30, 90], 365), DAY),
                standard_rpo,
            ),
        },
        Preset {
            name: "onprem",
            description: "on-premises storage is cheap: longer hot and warm stays, ten years offsite",
            rule_sets: with_rpo(
                preset_from(DAY, ([14, 90, 365], 3650), ([7, 30, 90], 730), ([14, 90, 365], 730), DAY),
                standard_rpo,
            ),
        },
        Preset {
            name: "cost",
            description: "minimise storage cost: move on early, three years offsite",
            rule_sets: with_rpo(
                preset_from(DAY, ([3, 14, 180], 1095), ([1, 7, 90], 365), ([3, 14, 90], 365), 3600),
                standard_rpo,
            ),
        },
        Preset {
            name: "demo",
            description: "seconds instead of days, so a whole lifecycle shows within two minutes",
            rule_sets: demo,
        },
    ]
}

/// The preset called `name`.
pub fn preset(name: &str) -> Option<Preset> {
    presets().into_iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(stops: [(bool, u64); 4]) -> RuleSet {
        RuleSet {
            package_type: PackageType::UserData,
            stops: stops.map(|(enabled, wait_secs)| Stop { enabled, wait_secs, never_delete: false }),
            replicate_to_all: false,
            cache_ttl_secs: None,
            rpo_secs: None,
        }
    }

    #[test]
    fn recovery_point_objectives_by_type_and_preset() {
        let cloud = preset("cloud").unwrap();
        let rpo = |p: &Preset, t: PackageType| p.rule_sets.iter().find(|r| r.package_type == t).unwrap().rpo_ms();
        assert_eq!(rpo(&cloud, PackageType::UserData), crate::domain::DAY_MS);
        assert_eq!(rpo(&cloud, PackageType::BusinessData), 4 * 3_600_000);
        assert_eq!(rpo(&cloud, PackageType::JobPackage), 7 * crate::domain::DAY_MS);
        assert_eq!(rpo(&cloud, PackageType::Cache), 0, "no objective for cache");
        assert_eq!(rpo(&preset("demo").unwrap(), PackageType::AppLogs), 600_000);
        // Unset: the type's default (rule sets stored before RPOs existed).
        let mut old = cloud.rule_sets[0].clone();
        old.rpo_secs = None;
        assert_eq!(old.rpo_ms(), crate::domain::DAY_MS);
        old.rpo_secs = Some(11 * 365 * 86_400);
        assert!(old.validate().unwrap_err().to_string().contains("rule_set.rpo"));
        // An RPO change deletes nothing sooner: it never waits out the protection delay.
        let mut shorter = cloud.rule_sets[0].clone();
        shorter.rpo_secs = Some(60);
        assert!(shorter.shortened_from(&cloud.rule_sets[0]).is_empty());
    }

    #[test]
    fn shortened_names_what_would_delete_sooner_and_nothing_else() {
        let before = rule([(true, 7 * DAY), (true, 30 * DAY), (false, 0), (true, 365 * DAY)]);
        assert!(before.shortened_from(&before).is_empty());
        let longer = rule([(true, 8 * DAY), (true, 30 * DAY), (true, 1), (true, 366 * DAY)]);
        assert!(longer.shortened_from(&before).is_empty(), "longer waits and a new stop keep data longer");
        let shorter = rule([(true, 1), (false, 0), (false, 0), (true, 365 * DAY)]);
        assert_eq!(shorter.shortened_from(&before), ["hot wait 7d -> 1s", "warm stop disabled"]);
        let mut forever = before.clone();
        forever.stops[3].never_delete = true;
        assert_eq!(before.shortened_from(&forever), ["offsite keep forever -> 365d"]);
        assert!(forever.shortened_from(&before).is_empty());
        let mut replicated = before.clone();
        replicated.replicate_to_all = true;
        assert_eq!(before.shortened_from(&replicated).len(), 1, "turning replication off deletes copies");
        let (long, short) = (cache(3600), cache(60));
        assert_eq!(short.shortened_from(&long), ["cache ttl 1h -> 1m"]);
        assert_eq!(span(90), "90s");
    }

    #[test]
    fn every_preset_validates_and_covers_every_type() {
        for preset in presets() {
            let mut types: Vec<_> = preset.rule_sets.iter().map(|r| r.package_type).collect();
            types.sort();
            assert_eq!(types, PackageType::ALL.to_vec(), "preset {}", preset.name);
            for rs in &preset.rule_sets {
                rs.validate().unwrap_or_else(|e| panic!("preset {} {:?}: {e}", preset.name, rs.package_type));
            }
        }
    }

    #[test]
    fn cloud_preset_matches_the_spec_table() {
        let cloud = preset("cloud").unwrap();
        let user = &cloud.rule_sets[0];
        assert_eq!(user.stops.map(|s| s.wait_secs / DAY), [7, 30, 365, 2555]);
        let audit = cloud.rule_sets.iter().find(|r| r.package_type == PackageType::AuditLogs).unwrap();
        assert!(!audit.stops[0].enabled && audit.stops[3].never_delete);
        assert_eq!(audit.first_tier(), Tier::Warm);
        assert!(cloud.rule_sets[3].replicate_to_all);
        assert_eq!(cloud.rule_sets[5].cache_ttl_secs, Some(86_400));
        assert_eq!(preset("cost").unwrap().rule_sets[5].cache_ttl_secs, Some(3600));
    }

    #[test]
    fn validation_names_the_field() {
        let cases: Vec<(RuleSet, &str)> = vec![
            (rule([(true, 1), (false, 0), (true, 5), (true, 9)]), "rule_set.cold.enabled"),
            (rule([(true, 1), (true, 0), (true, 5), (true, 9)]), "rule_set.warm.wait"),
            (rule([(false, 0), (false, 0), (false, 0), (false, 0)]), "rule_set"),
            (rule([(true, 1), (true, 2), (false, 0), (true, 9)]), "rule_set.offsite.enabled"),
        ];
        for (rs, field) in cases {
            match rs.validate() {
                Err(Error::InvalidArgument { field: f, .. }) => assert_eq!(f, field),
                other => panic!("expected InvalidArgument on {field}, got {other:?}"),
            }
        }
        let mut never = rule([(true, 1), (true, 2), (true, 3), (true, 4)]);
        never.stops[1].never_delete = true;
        assert!(
            matches!(never.validate(), Err(Error::InvalidArgument { field, .. }) if field == "rule_set.warm.never_delete")
        );
        let mut c = cache(0);
        assert!(matches!(c.validate(), Err(Error::InvalidArgument { field, .. }) if field == "rule_set.cache_ttl"));
        c.cache_ttl_secs = Some(1);
        c.validate().unwrap();
    }

    #[test]
    fn skipping_hot_is_allowed() {
        rule([(false, 0), (true, 7), (true, 365), (true, 9)]).validate().unwrap();
    }

    #[test]
    fn planning_walks_the_enabled_stops() {
        let rs = rule([(false, 0), (true, 10), (true, 20), (true, 30)]);
        assert_eq!(rs.first_tier(), Tier::Warm);
        assert_eq!(rs.after(Tier::Warm), Next::Move(Tier::Cold));
        assert_eq!(rs.after(Tier::Offsite), Next::Expire);
        assert_eq!(rs.due_at(Tier::Cold, 1_000), Some(21_000));
        let short = rule([(true, 1), (true, 2), (false, 0), (false, 0)]);
        assert_eq!(short.after(Tier::Warm), Next::Expire);
        let mut forever = rule([(true, 1), (true, 2), (true, 3), (true, 0)]);
        forever.stops[3].never_delete = true;
        assert_eq!(forever.after(Tier::Offsite), Next::Stay);
        assert_eq!(forever.due_at(Tier::Offsite, 0), None);
        let ttl = cache(5);
        assert_eq!(
            (ttl.first_tier(), ttl.after(Tier::Hot), ttl.due_at(Tier::Hot, 0)),
            (Tier::Hot, Next::Expire, Some(5_000))
        );
    }
}
