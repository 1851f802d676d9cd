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

    let conn = db.connect().await;
    conn.execute_unprepared("UPDATE journal SET source_id = 'edge-evil' WHERE sequence = 4").await.unwrap();
    let bad = c.journal.verify_journal(pb::VerifyJournalRequest {}).await.unwrap().into_inner();
    assert!(!bad.ok);
    assert_eq!(bad.first_bad_sequence, 4);
    assert_eq!(bad.checked, 3);
    assert!(bad.problem.contains("altered"), "{}", bad.problem);

    conn.execute_unprepared("UPDATE journal SET source_id = 'edge-2' WHERE sequence = 4").await.unwrap();
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
