//! The journal's hash chain: each event's hash covers the previous hash and every field, so any
//! edit, deletion or reordering of stored rows shows up in `verify`.

use sha2::{Digest, Sha256};

use crate::domain::{JournalEntry, JournalEvent, JournalRecord, Millis};

/// The `prev_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Hash of one event given its predecessor's hash.
pub fn hash_event(prev_hash: &str, sequence: u64, at: Millis, e: &JournalRecord) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(sequence.to_be_bytes());
    h.update(at.to_be_bytes());
    // Length-prefix each field so that moving bytes between fields changes the hash.
    for field in [
        &e.actor,
        &e.event_type,
        &e.source_id,
        &e.package_id,
        &e.station_id,
        &e.status_before,
        &e.status_after,
        &e.checksum,
        &e.error,
        &e.details_json,
    ] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Chains `entries` after the event (`head_seq`, `head_hash`).
pub fn chain(head_seq: u64, head_hash: &str, at: Millis, entries: Vec<JournalEntry>) -> Vec<JournalEvent> {
    let mut prev = head_hash.to_owned();
    entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let entry = JournalRecord::from(entry);
            let sequence = head_seq + 1 + i as u64;
            let hash = hash_event(&prev, sequence, at, &entry);

            JournalEvent { sequence, at, entry, prev_hash: std::mem::replace(&mut prev, hash.clone()), hash }
        })
        .collect()
}

/// Incremental verifier: feed events in sequence order.
#[derive(Debug)]
pub struct Verifier {
    expected_seq: u64,
    prev_hash: String,
    pub checked: u64,
}

impl Default for Verifier {
    fn default() -> Self {
        Self { expected_seq: 1, prev_hash: GENESIS.to_owned(), checked: 0 }
    }
}

impl Verifier {
    /// The sequence it expects next.
    pub fn next_sequence(&self) -> u64 {
        self.expected_seq
    }

    /// Checks the next event; on mismatch returns what is wrong.
    pub fn check(&mut self, e: &JournalEvent) -> Result<(), String> {
        if e.sequence != self.expected_seq {
            return Err(format!("expected sequence {}, found {} (an event is missing)", self.expected_seq, e.sequence));
        }
        if e.prev_hash != self.prev_hash {
            return Err("prev_hash does not match the previous event's hash".to_owned());
        }
        let hash = hash_event(&e.prev_hash, e.sequence, e.at, &e.entry);
        if hash != e.hash {
            return Err("contents do not match the stored hash (the event was altered)".to_owned());
        }
        self.expected_seq += 1;
        self.prev_hash = hash;
        self.checked += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(t: crate::domain::EventType) -> JournalEntry {
        JournalEntry::new(t, "api")
    }

    #[test]
    fn a_chain_verifies_and_any_edit_is_found() {
        let events = chain(0, GENESIS, 5, {
            use crate::domain::EventType::*;
            vec![entry(PackageIngested), entry(PackageStarted), entry(PackageCompleted)]
        });
        let mut v = Verifier::default();
        events.iter().for_each(|e| v.check(e).unwrap());
        assert_eq!(v.checked, 3);

        let mut tampered = events.clone();
        tampered[1].entry.error = "x".into();
        let mut v = Verifier::default();
        v.check(&tampered[0]).unwrap();
        assert!(v.check(&tampered[1]).unwrap_err().contains("altered"));

        let mut v = Verifier::default();
        v.check(&events[0]).unwrap();
        assert!(v.check(&events[2]).unwrap_err().contains("missing"));
    }

    #[test]
    fn field_boundaries_matter() {
        let a = JournalRecord { actor: "ab".into(), event_type: "c".into(), ..Default::default() };
        let b = JournalRecord { actor: "a".into(), event_type: "bc".into(), ..Default::default() };
        assert_ne!(hash_event(GENESIS, 1, 0, &a), hash_event(GENESIS, 1, 0, &b));
    }
}
