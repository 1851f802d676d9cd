//! Journal tamper detection: altering or removing a stored row is found and located.

use edgebackup_proto::v1 as pb;
use sea_orm::ConnectionTrait;

use crate::harness::{Catcher, TestDb};

async fn tampering_is_detected(db: TestDb) {
    let catcher = Catcher::start(&db).await;
    let mut c = catcher.clients().await;
    for i in 0..5 {
        c.sources
            .register_source(pb::RegisterSourceRequest { source_id: format!("edge-{i}"), label: String::new() })
            .await
            .unwrap();
    }
    let clean = c.journal.verify_journal(pb::VerifyJournalRequest {}).await.unwrap().into_inner();
    assert!(clean.ok && clean.checked >= 6, "{clean:?}");

    let of_edge_2 = pb::QueryJournalRequest { source_id: "edge-2".into(), limit: 10, ..Default::default() };
    let seq = c.journal.query_journal(of_edge_2).await.unwrap().into_inner().events[0].sequence;
    let conn = db.connect().await;
    let tamper = |to: &str| format!("UPDATE journal SET source_id = '{to}' WHERE sequence = {seq}");
    conn.execute_unprepared(&tamper("edge-evil")).await.unwrap();
    let bad = c.journal.verify_journal(pb::VerifyJournalRequest {}).await.unwrap().into_inner();
    assert!(!bad.ok);
    assert_eq!(bad.first_bad_sequence, seq);
    assert_eq!(bad.checked, seq - 1);
    assert!(bad.problem.contains("altered"), "{}", bad.problem);

    conn.execute_unprepared(&tamper("edge-2")).await.unwrap();
    assert!(
        c.journal.verify_journal(pb::VerifyJournalRequest {}).await.unwrap().into_inner().ok,
        "restoring the row heals the chain"
    );

    conn.execute_unprepared("DELETE FROM journal WHERE sequence = 3").await.unwrap();
    let gap = c.journal.verify_journal(pb::VerifyJournalRequest {}).await.unwrap().into_inner();
    assert_eq!((gap.ok, gap.first_bad_sequence), (false, 4));
    assert!(gap.problem.contains("missing"), "{}", gap.problem);
}

crate::both_databases!(tampering_is_detected);
