//! Tests of the SQLite journal that need its internals.

use super::*;
use crate::event::Transport;

fn event(index: usize) -> AuditEvent {
    let entry = serde_json::json!({"insertId": format!("entry-{index}"), "logName": "projects/p/logs/a",
        "protoPayload": {"serviceName": "compute.googleapis.com", "methodName": "v1.compute.instances.insert",
                         "resourceName": format!("projects/p/zones/z/instances/vm-{index}")}});
    AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("valid entry")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_with_no_write_after_it_still_reaches_the_disk() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("journal.sqlite");
    let journal = Sqlite::open(&path, crate::clock::Clock::system()).expect("open");
    let claimed = journal.claim(&event(1)).await.expect("claimed");
    assert!(matches!(claimed, Claim::New { .. }), "{claimed:?}");
    // Another process sees only committed rows: the open transaction must be committed without a later write.
    let other = Connection::open(&path).expect("a second connection");
    let committed = || -> i64 {
        other
            .query_row(
                "SELECT COUNT(*) FROM events WHERE state = 'processing'",
                [],
                |row| row.get(0),
            )
            .expect("count")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while committed() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(committed(), 1, "the claim was committed on its own");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded_under_sustained_writes() {
    let dir = std::env::temp_dir().join(format!("antibody-wal-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("journal.sqlite");
    let journal = Sqlite::open(&path, crate::clock::Clock::system()).expect("open");
    let record = Record {
        outcome: "ignored".into(),
        ..Record::default()
    };
    // Many concurrent writers, so that commits never pause: checkpoints must still keep up.
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..64 {
        let (journal, record) = (journal.clone(), record.clone());
        tasks.spawn(async move {
            for index in 0..200 {
                let event = event(writer * 1000 + index);
                journal
                    .record_settled(&event, &record)
                    .await
                    .expect("recorded");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("writer task");
    }
    let wal = std::fs::metadata(dir.join("journal.sqlite-wal"))
        .map(|meta| meta.len())
        .unwrap_or(0);
    let rows: i64 = journal
        .read(|connection| {
            one(connection, "SELECT COUNT(*) FROM events", [], |row| {
                row.get(0)
            })
        })
        .expect("count");
    assert_eq!(rows, 64 * 200);
    // SQLite checkpoints every 1,000 pages (4 MiB) and then reuses the file; without checkpoints this
    // run writes several times that.
    assert!(wal < 12 * 1024 * 1024, "the WAL grew to {wal} bytes");
    let _ = std::fs::remove_dir_all(&dir);
}
