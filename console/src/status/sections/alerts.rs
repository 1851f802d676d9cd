//! The alerts section: open alerts, then the recently resolved, every folder's recovery point;
//! and the lines of pending changes and restores other sections show.

use super::*;

/// An alert kind's key, e.g. "rpo_breached".
pub fn alert_kind_key(kind: i32) -> String {
    pb::AlertKind::try_from(kind)
        .map_or("unknown".into(), |k| k.as_str_name().trim_start_matches("ALERT_KIND_").to_lowercase())
}

/// Open alerts, then the recently resolved; and every folder's recovery point.
pub(super) fn alerts(fleet: &Fleet, ctx: &Ctx) -> Body {
    let t = ctx.theme;
    let width = usize::from(ctx.width);
    let (open, unacked) = fleet.open_alerts();
    let mut rows = Vec::new();
    for a in fleet.alerts_in_order() {
        let is_open = crate::status::model::alert_open(a);
        let raised = age(millis(a.raised_at.as_ref()), ctx.now);
        let (state, tone) = match (is_open, a.acknowledged_at.is_some()) {
            (true, false) => ("OPEN".to_owned(), Tone::Bad),
            (true, true) => ("ACKED".to_owned(), Tone::Warn),
            (false, _) => (format!("resolved {} ago", age(millis(a.resolved_at.as_ref()), ctx.now)), Tone::Good),
        };
        let head = format!("{state} {} {} · raised {raised} ago", alert_kind_key(a.kind), a.subject);
        rows.push(Line::from(t.span(fit(&head.replace(['\n', '\r', '\t'], " "), width), tone)));
        let text = format!("  {}", a.message.replace(['\n', '\r', '\t'], " "));
        rows.push(Line::from(t.span(fit(&text, width), if is_open { Tone::Plain } else { Tone::Dim })));
        if a.acknowledged_at.is_some() {
            let note = if a.note.is_empty() { String::new() } else { format!(": {}", a.note) };
            let text = format!("  ↳ acknowledged by {}{note}", a.acknowledged_by).replace(['\n', '\r', '\t'], " ");
            rows.push(Line::from(t.span(fit(&text, width), Tone::Dim)));
        }
    }
    if rows.is_empty() {
        rows.push(Line::from(t.span("no alerts", Tone::Good)));
    }
    if let Some(r) = &fleet.recovery_points {
        rows.push(Line::default());
        rows.push(Line::from(t.span("recovery points", Tone::Heading)));
        let cols = [
            Col("client", 12, Align::Left),
            Col("type", 13, Align::Left),
            Col("last backup", 11, Align::Right),
            Col("rpo", 7, Align::Right),
            Col("state", 9, Align::Left),
            Col("folder", 0, Align::Tail),
        ];
        let w = widths(&cols, ctx.width);
        rows.push(header_line(&cols, &w, t));
        for p in &r.points {
            let (state, tone) = rpo_state(p.state);
            let last = match millis(p.last_backup_at.as_ref()) {
                Some(at) => format!("{} ago", age(Some(at), ctx.now)),
                None => "never".into(),
            };
            let rpo = p.rpo.as_ref().map_or(0, |d| u64::try_from(d.seconds).unwrap_or(0));
            let folder = if p.folder.is_empty() { "(no pass yet)".to_owned() } else { p.folder.clone() };
            let cells = vec![
                (p.source_id.clone(), Tone::Plain),
                (words(type_key(p.package_type)), Tone::Plain),
                (last, tone),
                (if rpo == 0 { "-".into() } else { span(rpo) }, Tone::Plain),
                (state.into(), tone),
                (folder, Tone::Plain),
            ];
            rows.push(row(&cols, &w, cells, t));
        }
    }
    let mut summary = format!("{open} open, {unacked} not acknowledged");
    if let Some(r) = &fleet.recovery_points {
        let worst = r.worst_age.as_ref().map_or(0, |d| u64::try_from(d.seconds).unwrap_or(0));
        summary.push_str(&format!(" · RPO {} held, {} breached, worst {}", r.held, r.breached, span(worst)));
    }
    let tone = if unacked > 0 { Tone::Bad } else { Tone::Dim };
    Body { header: vec![Line::from(t.span(summary, tone))], rows }
}

/// An RPO state as a word and its tone.
pub(super) fn rpo_state(state: i32) -> (&'static str, Tone) {
    match pb::RpoState::try_from(state) {
        Ok(pb::RpoState::Held) => ("held", Tone::Good),
        Ok(pb::RpoState::Breached) => ("BREACHED", Tone::Bad),
        Ok(pb::RpoState::None) => ("no rpo", Tone::Dim),
        _ => ("?", Tone::Dim),
    }
}

/// Open pending changes, one line each, loud: each deletes data sooner when it applies.
pub fn pending_lines(fleet: &Fleet, ctx: &Ctx) -> Vec<Line<'static>> {
    use pb::pending_change::Change;
    let t = ctx.theme;
    let mut open: Vec<&pb::PendingChange> = fleet.pending_changes.values().collect();
    open.sort_by_key(|c| (millis(c.effective_at.as_ref()), c.change_id));
    open.into_iter()
        .map(|c| {
            let what = match &c.change {
                Some(Change::RuleSet(r)) => {
                    let ty = r.after.as_ref().map_or("?".into(), |a| words(type_key(a.package_type)));
                    format!("{ty} rules: {}", r.shortened.join(", "))
                }
                Some(Change::PackageDeletion(d)) => format!("delete package {}", d.package_id),
                None => "unknown change".into(),
            };
            let when = until(millis(c.effective_at.as_ref()), ctx.now);
            let text = format!("#{} takes effect {when}: {what} · by {}", c.change_id, c.requested_by);
            let text = fit(&text.replace(['\n', '\r', '\t'], " "), usize::from(ctx.width).saturating_sub(8));
            Line::from(vec![t.span("PENDING ", Tone::Bad), t.span(text, Tone::Warn)])
        })
        .collect()
}

/// One restore: who restores whose data where, its state, and (running) how far it is.
pub fn restore_lines(c: &pb::CommandInfo, now: i64) -> Vec<(String, Tone)> {
    use edgebackup_proto::v1::command_args::Kind as Args;
    let id = c.command.as_ref().map_or("", |c| c.command_id.as_str());
    let args = c.command.as_ref().and_then(|c| c.args.as_ref()).and_then(|a| a.kind.as_ref());
    let (whose, target) = match args {
        Some(Args::Restore(r)) => {
            (if r.source_id.is_empty() { c.source_id.as_str() } else { r.source_id.as_str() }, r.target_dir.as_str())
        }
        _ => (c.source_id.as_str(), ""),
    };
    let short = id.get(id.len().saturating_sub(8)..).unwrap_or(id);
    let head = format!("  {short} {whose} → {}:{target}", c.source_id);
    let state = pb::CommandState::try_from(c.state).unwrap_or(pb::CommandState::Unspecified);
    let p = c.progress.clone().unwrap_or_default();
    let counts = format!("{}/{} files {}/{}", p.files_done, p.files_total, bytes(p.bytes_done), bytes(p.bytes_total));
    match state {
        pb::CommandState::Pending => {
            vec![(format!("{head}  queued {} ago", age(millis(c.created_at.as_ref()), now)), Tone::Dim)]
        }
        pb::CommandState::Leased => {
            let percent = (u128::from(p.bytes_done) * 100)
                .checked_div(u128::from(p.bytes_total))
                .map_or(0, |v| v.min(100) as u32);
            let phase = command_phase_key(p.phase);
            let seen = age(millis(c.progress_at.as_ref()), now);
            vec![
                (format!("{head}  {}", progress_bar(percent, 10)), Tone::Warn),
                (format!("    ↳ {phase}: {counts}, reported {seen} ago"), Tone::Plain),
            ]
        }
        pb::CommandState::Succeeded => vec![(format!("{head}  done: {}", c.result_message), Tone::Good)],
        _ => vec![(format!("{head}  FAILED: {}", c.result_message), Tone::Bad)],
    }
}
