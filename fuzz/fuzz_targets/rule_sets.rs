//! Rule sets as a caller may send them: converted and validated; a valid one plans every tier
//! without panicking, keeps nothing shorter than itself, and survives the round trip.
#![no_main]

use catcher::domain::{Spelling, Tier};
use catcher::service::convert;
use edgebackup_proto::v1 as pb;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(wire) = pb::RuleSet::decode(data) else { return };
    let Ok(rs) = convert::rule_set_in(&wire) else { return };
    if rs.validate().is_err() {
        return;
    }
    for &tier in Tier::ALL {
        let _ = rs.after(tier);
        let _ = rs.due_at(tier, i64::MAX - 1);
        let _ = rs.due_at(tier, 0);
    }
    let _ = rs.version_retention_ms();
    assert!(rs.shortened_from(&rs).is_empty(), "a rule set is shorter than itself: {rs:?}");
    let back = convert::rule_set_in(&convert::rule_set(rs.clone())).expect("a valid rule set converts back");
    assert_eq!(back, rs);
});
