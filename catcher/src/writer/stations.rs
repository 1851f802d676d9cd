//! Stations: declared in the catcher's config and synced into the database at start.

use super::Op;
use super::unit::Unit;
use crate::domain::*;
use crate::error::Result;

/// Makes the stored stations match the config; answers whether they changed.
#[derive(Debug)]
pub struct SyncStations(pub Vec<Station>);

impl Op for SyncStations {
    type Output = bool;

    async fn apply(self, u: &mut Unit<'_>) -> Result<bool> {
        let mut current = u.stations().await?.to_vec();
        let mut wanted = self.0;
        current.sort_by(|x, y| x.station_id.cmp(&y.station_id));
        wanted.sort_by(|x, y| x.station_id.cmp(&y.station_id));
        if current == wanted {
            return Ok(false);
        }
        u.journal(JournalEntry {
            details_json: serde_json::json!({"stations": wanted.iter().map(|s| &s.station_id).collect::<Vec<_>>()})
                .to_string(),
            ..JournalEntry::new(EventType::StationsChanged, "catcher")
        });
        u.put_stations(wanted);
        Ok(true)
    }
}
