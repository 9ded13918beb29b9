//! A graceful stop against the emulators (started by scripts/test.sh):
//! SIGTERM mid-stream makes `runnel run` stop pulling, write what is
//! complete, hand every held message back at once and exit 0: handed-back
//! messages are redelivered without waiting out their leases, and a
//! restart, drained once it has them all, counts every window exactly as an
//! independent count does.

use runnel_tests::emulators::env;
use runnel_tests::running::{counter, free_port, spawn as run_pipeline};
use runnel_tests::{count_per_user_window, read_rows, rfc3339_us, wait_for};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const MESSAGES: usize = 2_000;

/// A pipeline holding every one of [`MESSAGES`] messages, stopped with
/// SIGTERM; checks the graceful stop. Returns what a restart needs.
struct Stopped {
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    lines: Vec<String>,
    port: u16,
}

/// Messages waiting in the subscription (a peek).
fn waiting(config: &std::path::Path) -> usize {
    runnel::cmd::status::run(&runnel::cmd::status::StatusOptions { config, admin: Some("127.0.0.1:1"), peek_limit: 10_000 })
        .unwrap()
        .waiting_messages
        .unwrap_or(0)
}

fn stop_mid_stream() -> Stopped {
    env("PUBSUB_EMULATOR_HOST");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Leases of 15 s: a message not handed back would come back only then.
    let config = runnel_tests::emulators::holding_pipeline(dir.path(), "stop", 15, "", port);
    let (lines, input) = runnel_tests::emulators::input_file(dir.path(), MESSAGES);
    let opts = runnel::cmd::publish::PublishOptions { file: &input, rate: None, repeat: false, limit: None, quiet: true, retime: false };
    assert_eq!(runnel::cmd::publish::run(&config, &opts).unwrap(), MESSAGES as u64);

    // Run until every message is held (no window can close: the bound is
    // two days), then SIGTERM.
    let mut run = run_pipeline(&config);
    wait_for("every message held", Duration::from_secs(180), || match counter(port, "unacked_messages") {
        n if n >= MESSAGES as u64 => Ok(()),
        n => Err(format!("{n} of {MESSAGES} held")),
    });
    runnel_tests::running::signal(&run, "-TERM");
    let status = wait_for("runnel run to stop after SIGTERM", Duration::from_secs(60), || run.try_wait().unwrap().ok_or("running"));
    let mut log = String::new();
    std::io::Read::read_to_string(&mut run.stderr.take().unwrap(), &mut log).unwrap();
    assert!(status.success(), "exit 0 after a graceful stop: {status:?}\n{log}");
    assert!(log.contains(&format!("{MESSAGES} messages handed back for redelivery")), "{log}");
    assert!(
        !dir.path().join("panes.ndjson").exists() || read_rows(&dir.path().join("panes.ndjson")).is_empty(),
        "no incomplete pane was written"
    );

    // Handed back: a peek sees them at once, long before their 15 s leases
    // end. (The emulator makes only part of a closing stream's nacked
    // messages available again at once, 200-1,000 of 2,000 here, measured
    // with a plain gRPC client too; the rest come back when their lease
    // ends. On Google Cloud a nack is an immediate redelivery. Without the
    // hand-back, none would show for 15 s.)
    wait_for("held messages back in the subscription within 5 s of the stop (leases are 15 s)", Duration::from_secs(5), || {
        match waiting(&config) {
            0 => Err("none waiting"),
            _ => Ok(()),
        }
    });

    Stopped { dir, config, lines, port }
}

#[test]
fn sigterm_stops_pulling_writes_nothing_incomplete_and_hands_held_messages_back_at_once() {
    stop_mid_stream();
}

#[test]
fn a_restart_after_sigterm_counts_every_window() {
    let Stopped { dir, config, lines, port } = stop_mid_stream();
    // A restart gets the handed-back messages at once and the rest when
    // their leases end, but the emulator delivers some of those minutes
    // late (measured once: 1,000 at once, 600 after 15 s, 200 after 30 s,
    // then 100 after 105 s and the last 100 after 120 s; a restart that
    // stopped after 90 quiet seconds missed some in one CI run). No quiet
    // period proves that everything came back, but the test knows how many
    // messages there are: it drains the restart once it has counted them all.
    let mut restart = run_pipeline(&config);
    let until = Instant::now() + Duration::from_secs(420);
    while counter(port, "events_in") < MESSAGES as u64 {
        if Instant::now() > until {
            let counted = counter(port, "events_in");
            restart.kill().unwrap();
            panic!(
                "the restart counted only {counted} of {MESSAGES} messages in 7 minutes; {} are waiting in the subscription",
                waiting(&config)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let said = runnel::cmd::drain::run(&config, None).unwrap();
    assert!(said.starts_with("draining"), "{said}");
    let out = restart.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("drained: every open window fired"), "{log}");

    let mut actual = BTreeMap::new();
    for r in read_rows(&dir.path().join("panes.ndjson")) {
        let key = (r["user_pseudo_id"].as_str().unwrap().to_string(), rfc3339_us(r["window_start"].as_str().unwrap()));
        assert!(actual.insert(key, r["event_count"].as_i64().unwrap()).is_none(), "one pane per window");
    }
    assert_eq!(actual, count_per_user_window(&lines, 60_000_000));
    assert!(!dir.path().join("dead.ndjson").exists() || runnel::deadletter::read(&dir.path().join("dead.ndjson")).unwrap().is_empty());
}
