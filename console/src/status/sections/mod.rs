//! The dashboard's sections as lines of text: overview (status, the train, tiers), packages,
//! clients, rule sets, projections, journal.
//!
//! Pure functions of the fleet, the clock and a width. The live view scrolls these lines and the
//! human report prints them, so both show the same words in the same columns.

use edgebackup_proto::v1 as pb;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use super::format::{
    age, bytes, checksum_prefix, command_phase_key, fit, fit_right, fit_tail, millis, progress_bar, safety_key, span,
    status_key, stop, tier_key, tier_label, type_key, until, words,
};
use super::model::Fleet;

mod alerts;
pub use alerts::{alert_kind_key, pending_lines, restore_lines};
use alerts::{alerts, rpo_state};

/// The dashboard's note on retention, shown under the train.
pub const RETENTION_NOTE: &str = "Updated data keeps arriving; retention keeps the latest.";

/// Projections look this far ahead.
pub const PROJECTION_WINDOW_MS: i64 = 24 * 3_600_000;

/// One screen of the live view, one block of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Packages,
    Clients,
    Rules,
    Projections,
    Journal,
    Alerts,
}

impl Section {
    pub const ALL: [Section; 7] = [
        Section::Overview,
        Section::Packages,
        Section::Clients,
        Section::Rules,
        Section::Projections,
        Section::Journal,
        Section::Alerts,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Section::Overview => "Overview",
            Section::Packages => "Packages",
            Section::Clients => "Clients",
            Section::Rules => "Rules",
            Section::Projections => "Projections",
            Section::Journal => "Journal",
            Section::Alerts => "Alerts",
        }
    }

    pub fn index(self) -> usize {
        Section::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }
}

/// How to style text; without color only bold and reverse video are used (`NO_COLOR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

/// What a piece of text means, which decides its style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Heading,
    Dim,
    Good,
    Warn,
    Bad,
}

impl Theme {
    pub fn style(self, tone: Tone) -> Style {
        let s = Style::default();
        match (tone, self.color) {
            (Tone::Plain, _) => s,
            (Tone::Heading, _) => s.add_modifier(Modifier::BOLD),
            (Tone::Bad, false) => s.add_modifier(Modifier::BOLD),
            (_, false) => s,
            (Tone::Dim, true) => s.fg(Color::DarkGray),
            (Tone::Good, true) => s.fg(Color::Green),
            (Tone::Warn, true) => s.fg(Color::Yellow),
            (Tone::Bad, true) => s.fg(Color::Red).add_modifier(Modifier::BOLD),
        }
    }

    pub fn span(self, text: impl Into<String>, tone: Tone) -> Span<'static> {
        Span::styled(text.into(), self.style(tone))
    }
}

/// What a section needs besides the fleet.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// Epoch ms, for ages.
    pub now: i64,
    /// Columns available.
    pub width: u16,
    /// Package filter (empty: none).
    pub filter: &'a str,
    pub theme: Theme,
}

/// A section's lines: `header` stays put while `rows` scroll.
#[derive(Debug, Default)]
pub struct Body {
    pub header: Vec<Line<'static>>,
    pub rows: Vec<Line<'static>>,
}

/// Builds one section.
pub fn build(fleet: &Fleet, section: Section, ctx: &Ctx) -> Body {
    match section {
        Section::Overview => overview(fleet, ctx),
        Section::Packages => packages(fleet, ctx),
        Section::Clients => clients(fleet, ctx),
        Section::Rules => rules(fleet, ctx),
        Section::Projections => projections(fleet, ctx),
        Section::Journal => journal(fleet, ctx),
        Section::Alerts => alerts(fleet, ctx),
    }
}

/// Plain text of a line (styles dropped), trailing spaces trimmed.
pub fn plain(line: &Line) -> String {
    line.spans.iter().map(|s| s.content.as_ref()).collect::<String>().trim_end().to_owned()
}

/// How a column fits its text.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
    /// Left-aligned, cut at the start (paths).
    Tail,
}

/// A table column: header text, width (0 = takes what is left), alignment.
struct Col(&'static str, usize, Align);

impl Col {
    fn fit(&self, text: &str, width: usize) -> String {
        match self.2 {
            Align::Left => fit(text, width),
            Align::Right => fit_right(text, width),
            Align::Tail => fit_tail(text, width),
        }
    }
}

/// Widths of `cols` for `width` columns, the flexible one getting the rest (at least 8).
fn widths(cols: &[Col], width: u16) -> Vec<usize> {
    let fixed: usize = cols.iter().map(|c| c.1).sum::<usize>() + cols.len().saturating_sub(1);
    let rest = usize::from(width).saturating_sub(fixed).max(8);
    cols.iter().map(|c| if c.1 == 0 { rest } else { c.1 }).collect()
}

fn header_line(cols: &[Col], w: &[usize], theme: Theme) -> Line<'static> {
    let text = cols
        .iter()
        .zip(w)
        .map(|(c, w)| if c.2 == Align::Right { fit_right(c.0, *w) } else { fit(c.0, *w) })
        .collect::<Vec<_>>()
        .join(" ");
    Line::from(theme.span(text, Tone::Heading))
}

/// A row of cells, each with its tone, fitted to the column widths.
fn row(cols: &[Col], w: &[usize], cells: Vec<(String, Tone)>, theme: Theme) -> Line<'static> {
    let mut spans = Vec::with_capacity(cells.len() * 2);
    for (i, ((text, tone), (col, width))) in cells.into_iter().zip(cols.iter().zip(w)).enumerate() {
        if i > 0 {
            spans.push(Span::raw(" "));
        }
        let text = col.fit(&text, *width);
        spans.push(theme.span(text, tone));
    }
    Line::from(spans)
}

fn overview(fleet: &Fleet, ctx: &Ctx) -> Body {
    let t = ctx.theme;
    let mut rows = Vec::new();
    let Some(s) = &fleet.status else {
        rows.push(Line::from(t.span("no status yet", Tone::Dim)));
        return Body { header: Vec::new(), rows };
    };
    let up = millis(s.started_at.as_ref()).map_or("-".into(), |at| age(Some(at), ctx.now));
    rows.push(Line::from(vec![
        t.span("catcher ", Tone::Heading),
        t.span(format!("{} · {} · up {up} · journal #{}", s.version, s.database, s.journal_head), Tone::Plain),
        t.span(format!(" · {} stations · {} commands open", s.stations, s.commands_open), Tone::Plain),
        t.span(replicas_note(s), Tone::Plain),
    ]));
    let stopped_tone = if s.clients_stopped_for_safety > 0 { Tone::Bad } else { Tone::Plain };
    rows.push(Line::from(vec![
        t.span("clients ", Tone::Heading),
        t.span(format!("{}/{} connected · ", s.clients_connected, s.clients_total), Tone::Plain),
        t.span(format!("{} stopped for safety", s.clients_stopped_for_safety), stopped_tone),
    ]));
    let c = s.statuses.unwrap_or_default();
    rows.push(Line::from(vec![
        t.span("packages ", Tone::Heading),
        t.span(
            format!("{} pending · {} in progress · {} completed · ", c.pending, c.in_progress, c.completed),
            Tone::Plain,
        ),
        t.span(format!("{} failed", c.failed), if c.failed > 0 { Tone::Bad } else { Tone::Plain }),
        t.span(format!(" · {} expired", c.expired), Tone::Plain),
    ]));
    if let Some(d) = &s.last_restore_drill {
        let when = age(millis(d.finished_at.as_ref()), ctx.now);
        let (text, tone) = if d.passed {
            (format!("passed {when} ({}, {} packages)", d.tier, d.packages_checked), Tone::Good)
        } else {
            (format!("FAILED {when}: {}", d.message.replace(['\n', '\r', '\t'], " ")), Tone::Bad)
        };
        let text = fit(&text, usize::from(ctx.width).saturating_sub(15));
        rows.push(Line::from(vec![t.span("restore drill ", Tone::Heading), t.span(text, tone)]));
    }
    let (open, unacked) = (s.alerts_open, s.alerts_unacknowledged);
    let breached = fleet.rpo_breached();
    let held = fleet.recovery_points.as_ref().map_or(s.rpo_held, |r| r.held);
    rows.push(Line::from(vec![
        t.span("alerts ", Tone::Heading),
        t.span(
            format!("{open} open ({unacked} not acknowledged)"),
            if unacked > 0 {
                Tone::Bad
            } else if open > 0 {
                Tone::Warn
            } else {
                Tone::Plain
            },
        ),
        t.span(" · RPO ", Tone::Plain),
        t.span(format!("{held} held · "), Tone::Plain),
        t.span(format!("{breached} breached"), if breached > 0 { Tone::Bad } else { Tone::Plain }),
    ]));
    rows.extend(pending_lines(fleet, ctx));
    rows.push(Line::default());
    let tiers = fleet.tiers();
    rows.extend(train(&tiers, ctx.width, t));
    rows.push(Line::default());
    let cols = [
        Col("tier", 8, Align::Left),
        Col("packages", 9, Align::Right),
        Col("bytes", 10, Align::Right),
        Col("in next 1h", 11, Align::Right),
        Col("out next 1h", 12, Align::Right),
    ];
    let w = widths(&cols, ctx.width);
    rows.push(header_line(&cols, &w, t));
    for tier in &tiers {
        let cells = vec![
            (tier_label(tier.tier, "Clients").into(), Tone::Plain),
            (tier.package_count.to_string(), Tone::Plain),
            (bytes(tier.total_bytes), Tone::Plain),
            (tier.incoming_next_hour.to_string(), Tone::Plain),
            (tier.outgoing_next_hour.to_string(), Tone::Plain),
        ];
        rows.push(row(&cols, &w, cells, t));
    }
    rows.push(Line::default());
    rows.push(Line::from(t.span(RETENTION_NOTE, Tone::Dim)));
    Body { header: Vec::new(), rows }
}

/// The train as a text diagram: Clients → Hot → Warm → Cold → Offsite, each car with its package
/// count and bytes. Narrow screens get one line per car.
pub fn train(tiers: &[pb::TierStats], width: u16, t: Theme) -> Vec<Line<'static>> {
    const INNER: usize = 10;
    let cars = tiers.len();
    if usize::from(width) < cars * (INNER + 2) + (cars - 1) * 3 {
        return tiers
            .iter()
            .map(|s| {
                Line::from(format!(
                    "→ {:<8} {:>6} pkg {:>10}",
                    tier_label(s.tier, "Clients"),
                    s.package_count,
                    bytes(s.total_bytes)
                ))
            })
            .collect();
    }
    let bar = "─".repeat(INNER);
    let join = |cells: Vec<String>, link: &str| Line::from(t.span(cells.join(link), Tone::Plain));
    let top = join(tiers.iter().map(|_| format!("┌{bar}┐")).collect(), "   ");
    let names = join(
        tiers.iter().map(|s| format!("│{}│", fit(&format!(" {}", tier_label(s.tier, "Clients")), INNER))).collect(),
        "──▶",
    );
    let counts =
        join(tiers.iter().map(|s| format!("│{}│", fit(&format!(" {} pkg", s.package_count), INNER))).collect(), "   ");
    let sizes =
        join(tiers.iter().map(|s| format!("│{}│", fit(&format!(" {}", bytes(s.total_bytes)), INNER))).collect(), "   ");
    let bottom = join(tiers.iter().map(|_| format!("└{bar}┘")).collect(), "   ");
    vec![top, names, counts, sizes, bottom]
}

fn status_tone(status: i32) -> Tone {
    match pb::PackageStatus::try_from(status) {
        Ok(pb::PackageStatus::Failed) => Tone::Bad,
        Ok(pb::PackageStatus::InProgress | pb::PackageStatus::Pending) => Tone::Warn,
        Ok(pb::PackageStatus::Completed) => Tone::Good,
        _ => Tone::Dim,
    }
}

/// A short package type label for narrow tables.
fn type_short(package_type: i32) -> &'static str {
    match type_key(package_type) {
        "user_data" => "user",
        "app_logs" => "app logs",
        "audit_logs" => "audit",
        "business_data" => "business",
        "job_package" => "job",
        other => other,
    }
}

fn packages(fleet: &Fleet, ctx: &Ctx) -> Body {
    let t = ctx.theme;
    let wide = ctx.width >= 110;
    // 140+ columns: what tells packages apart (id, size, where the copies are) gets room too.
    let widest = ctx.width >= 140;
    let mut cols = vec![
        Col("path", 0, Align::Tail),
        Col("source", 10, Align::Left),
        Col("type", if wide { 13 } else { 8 }, Align::Left),
        Col("tier", 7, Align::Left),
        Col("status", 11, Align::Left),
        Col("age", 7, Align::Right),
        Col("progress", 10, Align::Left),
        Col("sha256", 8, Align::Left),
    ];
    if widest {
        cols.extend([Col("id", 8, Align::Left), Col("size", 9, Align::Right), Col("copies on", 18, Align::Left)]);
    }
    let w = widths(&cols, ctx.width);
    let total = fleet.packages.len();
    let list: Vec<&pb::Package> = fleet.filtered_packages(ctx.filter).collect();
    let summary = if ctx.filter.trim().is_empty() {
        format!("{total} newest packages")
    } else {
        format!("{} of {total} packages match \"{}\"", list.len(), ctx.filter.trim())
    };
    let header = vec![Line::from(t.span(summary, Tone::Dim)), header_line(&cols, &w, t)];
    let mut rows = Vec::new();
    for p in &list {
        let mut cells = vec![
            (p.path.clone(), Tone::Plain),
            (p.source_id.clone(), Tone::Plain),
            ((if wide { words(type_key(p.package_type)) } else { type_short(p.package_type).into() }), Tone::Plain),
            (tier_label(p.tier, "-").to_lowercase(), Tone::Plain),
            (words(status_key(p.status)), status_tone(p.status)),
            (age(millis(p.created_at.as_ref()), ctx.now), Tone::Plain),
            (progress_bar(p.progress_percent, 5), Tone::Plain),
            (checksum_prefix(&p.sha256, 8), Tone::Dim),
        ];
        if widest {
            // The id's tail: UUIDv7s made in the same millisecond share their head.
            let id_tail = p.package_id.get(p.package_id.len().saturating_sub(8)..).unwrap_or_default().to_owned();
            let copies: Vec<&str> = p.placements.iter().map(|pl| pl.station_id.as_str()).collect();
            cells.extend([
                (id_tail, Tone::Dim),
                (bytes(p.size_bytes), Tone::Plain),
                (if copies.is_empty() { "-".to_owned() } else { copies.join(",") }, Tone::Plain),
            ]);
        }
        rows.push(row(&cols, &w, cells, t));
        if p.status == pb::PackageStatus::Failed as i32 && !p.last_error.is_empty() {
            let text = format!("  ↳ {}", p.last_error.replace(['\n', '\r', '\t'], " "));
            rows.push(Line::from(t.span(fit(&text, usize::from(ctx.width)), Tone::Bad)));
        }
    }
    if list.is_empty() {
        let text = if total == 0 { "no packages yet" } else { "no package matches the filter" };
        rows.push(Line::from(t.span(text, Tone::Dim)));
    }
    Body { header, rows }
}

fn clients(fleet: &Fleet, ctx: &Ctx) -> Body {
    let t = ctx.theme;
    let cols = [
        Col("client", 12, Align::Left),
        Col("link", 7, Align::Left),
        Col("safety", 18, Align::Left),
        Col("seen", 5, Align::Right),
        Col("in flight", 9, Align::Right),
        Col("rpo", 14, Align::Left),
        Col("version", 8, Align::Left),
        Col("host", 0, Align::Left),
    ];
    let w = widths(&cols, ctx.width);
    let mut rows = Vec::new();
    for s in fleet.sources.values() {
        let rpo = match fleet.worst_recovery_point(&s.source_id) {
            Some(p) => {
                let (state, tone) = rpo_state(p.state);
                let last = millis(p.last_backup_at.as_ref());
                let text = if last.is_some() { format!("{state} {}", age(last, ctx.now)) } else { state.to_owned() };
                (text, tone)
            }
            None => ("-".to_owned(), Tone::Dim),
        };
        let stopped = s.safety_state == pb::SafetyState::StoppedForSafety as i32;
        let host = if s.label.is_empty() { s.hostname.clone() } else { format!("{} ({})", s.hostname, s.label) };
        let cells = vec![
            (s.source_id.clone(), Tone::Plain),
            (if s.connected { "online" } else { "offline" }.into(), if s.connected { Tone::Good } else { Tone::Dim }),
            (words(safety_key(s.safety_state)), if stopped { Tone::Bad } else { Tone::Plain }),
            (age(millis(s.last_seen_at.as_ref()), ctx.now), Tone::Plain),
            (s.in_flight.to_string(), Tone::Plain),
            rpo,
            (s.agent_version.clone(), Tone::Plain),
            (host, Tone::Plain),
        ];
        rows.push(row(&cols, &w, cells, t));
        if stopped && !s.safety_reason.is_empty() {
            let text = format!("  ↳ {}", s.safety_reason.replace(['\n', '\r', '\t'], " "));
            rows.push(Line::from(t.span(fit(&text, usize::from(ctx.width)), Tone::Bad)));
        }
    }
    if rows.is_empty() {
        rows.push(Line::from(t.span("no clients yet", Tone::Dim)));
    }
    if !fleet.stations.is_empty() {
        rows.push(Line::default());
        rows.push(Line::from(t.span("stations", Tone::Heading)));
        for st in &fleet.stations {
            let kind = pb::StationKind::try_from(st.kind).map_or("?", |k| k.as_str_name());
            let kind = kind.trim_start_matches("STATION_KIND_").to_lowercase();
            let text = format!("  {:<16} {:<8} {:<7} {}", st.station_id, tier_key(st.tier), kind, st.uri);
            rows.push(Line::from(t.span(fit(&text, usize::from(ctx.width)), Tone::Plain)));
        }
    }
    if !fleet.restores.is_empty() {
        rows.push(Line::default());
        rows.push(Line::from(t.span("restores", Tone::Heading)));
        for c in fleet.restores.values().rev() {
            for (text, tone) in restore_lines(c, ctx.now) {
                rows.push(Line::from(t.span(fit(&text, usize::from(ctx.width)), tone)));
            }
        }
    }
    let summary = format!("{} clients, {} stations", fleet.sources.len(), fleet.stations.len());
    Body { header: vec![Line::from(t.span(summary, Tone::Dim)), header_line(&cols, &w, t)], rows }
}

fn rules(fleet: &Fleet, ctx: &Ctx) -> Body {
    let t = ctx.theme;
    let cols = [
        Col("type", 13, Align::Left),
        Col("hot", 6, Align::Right),
        Col("warm", 6, Align::Right),
        Col("cold", 6, Align::Right),
        Col("offsite", 7, Align::Right),
        Col("replicate", 9, Align::Left),
        Col("cache ttl", 9, Align::Right),
    ];
    let w = widths(&cols, ctx.width);
    let mut rows = Vec::new();
    for r in &fleet.rule_sets {
        let cells = vec![
            (words(type_key(r.package_type)), Tone::Plain),
            (stop(r.hot.as_ref()), Tone::Plain),
            (stop(r.warm.as_ref()), Tone::Plain),
            (stop(r.cold.as_ref()), Tone::Plain),
            (stop(r.offsite.as_ref()), Tone::Plain),
            (if r.replicate_to_all { "yes" } else { "no" }.into(), Tone::Plain),
            (r.cache_ttl.as_ref().map_or("-".into(), |d| span(u64::try_from(d.seconds).unwrap_or(0))), Tone::Plain),
        ];
        rows.push(row(&cols, &w, cells, t));
    }
    if rows.is_empty() {
        rows.push(Line::from(t.span("no rule sets", Tone::Dim)));
    }
    let pending = pending_lines(fleet, ctx);
    if !pending.is_empty() {
        rows.push(Line::default());
        rows.extend(pending);
    }
    rows.push(Line::default());
    rows.push(Line::from(t.span("wait per stop; - skips the stop, ∞ keeps forever", Tone::Dim)));
    Body { header: vec![header_line(&cols, &w, t)], rows }
}

fn projections(fleet: &Fleet, ctx: &Ctx) -> Body {
    let t = ctx.theme;
    let cols = [
        Col("from", 8, Align::Left),
        Col("to", 8, Align::Left),
        Col("packages", 9, Align::Right),
        Col("bytes", 10, Align::Right),
        Col("first", 10, Align::Right),
    ];
    let w = widths(&cols, ctx.width);
    let mut rows = Vec::new();
    for g in fleet.projections(ctx.now + PROJECTION_WINDOW_MS) {
        let to = match g.to_tier {
            Some(tier) => tier_label(tier, "-").to_owned(),
            None => "expire".to_owned(),
        };
        let cells = vec![
            (tier_label(g.from_tier, "Clients").into(), Tone::Plain),
            (to, if g.to_tier.is_none() { Tone::Warn } else { Tone::Plain }),
            (g.count.to_string(), Tone::Plain),
            (bytes(g.total_bytes), Tone::Plain),
            (until(g.earliest, ctx.now), Tone::Plain),
        ];
        rows.push(row(&cols, &w, cells, t));
    }
    if rows.is_empty() {
        rows.push(Line::from(t.span("nothing moves in the next 24h", Tone::Dim)));
    }
    let source = if fleet.server_projections.is_some() { "all packages" } else { "the packages shown" };
    let summary = format!("tier moves in the next 24h, from {source}");
    Body { header: vec![Line::from(t.span(summary, Tone::Dim)), header_line(&cols, &w, t)], rows }
}

fn journal(fleet: &Fleet, ctx: &Ctx) -> Body {
    let t = ctx.theme;
    let cols = [
        Col("seq", 6, Align::Right),
        Col("age", 7, Align::Right),
        Col("actor", 14, Align::Left),
        Col("event", 22, Align::Left),
        Col("subject", 0, Align::Left),
    ];
    let w = widths(&cols, ctx.width);
    let mut rows = Vec::new();
    for e in &fleet.journal {
        let mut subject = Vec::new();
        if !e.source_id.is_empty() {
            subject.push(e.source_id.clone());
        }
        if !e.package_id.is_empty() {
            subject.push(format!(
                "pkg {}",
                e.package_id.chars().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect::<String>()
            ));
        }
        if !e.status_before.is_empty() || !e.status_after.is_empty() {
            subject.push(format!("{}→{}", e.status_before, e.status_after));
        }
        if !e.error.is_empty() {
            subject.push(e.error.replace(['\n', '\r', '\t'], " "));
        }
        let tone = if e.error.is_empty() { Tone::Plain } else { Tone::Bad };
        let cells = vec![
            (e.sequence.to_string(), Tone::Dim),
            (age(millis(e.at.as_ref()), ctx.now), Tone::Plain),
            (e.actor.clone(), Tone::Plain),
            (e.event_type.clone(), Tone::Plain),
            (subject.join(" "), tone),
        ];
        rows.push(row(&cols, &w, cells, t));
    }
    if rows.is_empty() {
        rows.push(Line::from(t.span("no journal events yet", Tone::Dim)));
    }
    Body { header: vec![header_line(&cols, &w, t)], rows }
}

/// " · 3 replicas, lease: ADDR" when catchers share the database; nothing for a lone one.
fn replicas_note(s: &pb::GetStatusResponse) -> String {
    if s.replicas.len() < 2 {
        return String::new();
    }
    let holder = s.replicas.iter().find(|r| r.holds_lease).map_or("none", |r| r.address.as_str());
    format!(" · {} replicas, lease: {holder}", s.replicas.len())
}
