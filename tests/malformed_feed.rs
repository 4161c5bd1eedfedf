//! Malformed feed lines are counted, reported with their line numbers, and
//! skipped; the good lines still reach subscribers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestHub, key, next};
use quotehub_feed::{LineError, ReplayEnd, ReplayOptions, Speed, open_recorded, replay};
use quotehub_proto::Flags;
use quotehub_server::ServerConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lines_are_counted_reported_and_skipped() {
    let lines = [
        r#"{"ev":"Q","sym":"AAPL","bp":270.10,"bs":100,"ap":270.12,"as":200,"t":1795185000000000000}"#,
        r#"{"ev":"Q","sym":"AAPL","bp":270.10,"bs":100"#,
        r#"{"ev":"Q","sym":"AAPL","bp":270.11,"bs":100,"ap":270.13,"as":200,"t":1795185000000000001}"#,
        "",
        r#"{"ev":"Q","sym":"AAPL","bp":0.0000000001,"bs":100,"ap":270.13,"as":200,"t":1795185000000000002}"#,
        r#"{"ev":"T","sym":"AAPL","p":270.12,"s":100,"t":1795185000000000003}"#,
        r#"{"ev":"Q","sym":"AAPL","bp":"abc","bs":100,"ap":270.13,"as":200,"t":1795185000000000004}"#,
    ];
    let dir = std::env::temp_dir().join(format!("quotehub-malformed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("feed.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();

    let hub = TestHub::start(ServerConfig::default()).await;
    let mut client = hub.connect().await;
    client.subscribe(&["AAPL"]).await.unwrap();
    let mut publisher = hub.hub.publisher(Flags::REPLAYED, 0);
    let mut feed = open_recorded(&path).unwrap();
    let (_keep, stop) = std::sync::mpsc::channel();
    let end = replay(
        feed.as_mut(),
        ReplayOptions {
            speed: Speed::Max,
            looped: false,
        },
        &stop,
        |event| {
            publisher.publish(event);
        },
    )
    .unwrap();
    let ReplayEnd::Finished(stats) = end else {
        panic!("{end:?}")
    };
    assert_eq!((stats.events, stats.rejected), (3, 3));
    let where_and_why: Vec<(u64, String)> = stats
        .first_rejections
        .iter()
        .map(|r| (r.line, r.error.to_string()))
        .collect();
    assert_eq!(
        where_and_why.iter().map(|(line, _)| *line).collect::<Vec<_>>(),
        [2, 5, 7]
    );
    assert!(matches!(stats.first_rejections[0].error, LineError::Json(_)));
    assert!(
        where_and_why[1].1.contains("more than 9 significant decimals"),
        "{where_and_why:?}"
    );
    assert!(
        stats.first_rejections[2]
            .to_string()
            .starts_with(&format!("{}:7: ", path.display()))
    );

    for seq in 1..=3 {
        assert_eq!(key(&next(&mut client).await), ("AAPL".into(), seq, false));
    }
    std::fs::remove_dir_all(&dir).unwrap();
    hub.shutdown().await;
}
