//! Deleting a package someone asked to delete, once the protection delay is over
//! (`protection::ApplyDue`, or at once with the protection off): its verified copies on
//! stations are deleted by a mover first, the same way retention expires copies, and its record
//! only once none is left, so a deletion never leaves a stored copy behind.

use super::commands::new_command;
use super::unit::Unit;
use crate::domain::*;
use crate::error::Result;

/// How far a deletion has got.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Deletion {
    /// The record is gone, and no verified copy is left on a station.
    Done,
    /// Copies are being deleted through a mover, or wait for one to connect: ask again later.
    Waiting(String),
}

/// Carries out a deletion that came due (checked again: things may have changed while it
/// waited). A package with verified copies on stations first has them deleted by a mover, as
/// retention does (the record goes only once none is left: a copy is never orphaned); then, or
/// at once when it has none, its record is deleted.
pub(super) async fn delete_due(u: &mut Unit<'_>, id: &str, reason: &str, actor: &str) -> Result<Deletion> {
    let p = super::packages::deletable(u, id).await?;
    let stations = u.stations().await?.to_vec();
    let copies: Vec<String> = u
        .placements_of(id)
        .await?
        .into_iter()
        .filter(|pl| pl.status == PlacementStatus::Verified && stations.iter().any(|s| s.station_id == pl.station_id))
        .map(|pl| pl.station_id)
        .collect();
    if !copies.is_empty() {
        return delete_copies(u, p, copies).await;
    }
    u.delete_package(id);
    u.journal(JournalEntry {
        source_id: p.source_id,
        package_id: p.package_id,
        status_before: p.status.as_str().into(),
        checksum: p.sha256,
        details_json: serde_json::json!({"reason": reason, "path": p.path}).to_string(),
        ..JournalEntry::new(EventType::PackageDeleted, actor)
    });
    Ok(Deletion::Done)
}

/// Has a mover delete `copies` (station ids) of `p`, whose deletion came due, unless that is
/// under way; the package leaves its route meanwhile.
async fn delete_copies(u: &mut Unit<'_>, mut p: Package, copies: Vec<String>) -> Result<Deletion> {
    let mut under_way = false;
    for mut c in u.open_moves_of(&p.package_id).await? {
        let deleting = matches!(&c.args, CommandArgs::Expire(x) if x.purpose == ExpirePurpose::Delete);
        if deleting && u.source(&c.source_id).await?.is_some_and(|s| s.connected) {
            under_way = true;
        } else if deleting {
            c.state = CommandState::Failed;
            c.finished_at = Some(u.now);
            c.result_message = "the mover disconnected; the deletion was given to another mover".into();
            u.put_command(c);
        }
    }
    if under_way {
        return Ok(Deletion::Waiting(format!("{} copies are being deleted", copies.len())));
    }
    let Some(mover) = super::lifecycle::pick_mover(u, &p.package_id).await? else {
        return Ok(Deletion::Waiting("no mover is connected to delete its copies".into()));
    };
    for station_id in &copies {
        let args = CommandArgs::Expire(ExpireArgs {
            station_id: station_id.clone(),
            owner: p.source_id.clone(),
            sha256: p.sha256.clone(),
            purpose: ExpirePurpose::Delete,
        });
        let c = new_command(u, &mover, &p.package_id, args);
        u.put_command(c);
    }
    // No tier move or expiry of its own while its copies go.
    p.next_transition_at = None;
    let tier = p.tier.map_or("", Tier::as_str);
    let details = serde_json::json!({ "mover": mover, "stations": copies, "reason": "deletion" });
    u.journal(JournalEntry {
        source_id: p.source_id.clone(),
        package_id: p.package_id.clone(),
        status_before: tier.into(),
        status_after: "deleted".into(),
        details_json: details.to_string(),
        ..JournalEntry::new(EventType::PackageExpiryStarted, "scheduler")
    });
    u.put_package(p);
    Ok(Deletion::Waiting(format!("a mover was asked to delete {} copies", copies.len())))
}
