//! The `runnel` binary as a user runs it: exit codes and messages.

use std::path::PathBuf;
use std::process::Command;

fn runnel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_runnel"))
}

fn replay_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/replay")
}

#[test]
fn replay_prints_panes_and_checks_a_golden() {
    let scenario = replay_dir().join("scenarios/public_early_late_small.ndjson");
    let golden = replay_dir().join("golden/public_early_late_small.ndjson");
    let out = runnel().arg("replay").arg(&scenario).arg("--golden").arg(&golden).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let panes = String::from_utf8(out.stdout).unwrap();
    assert_eq!(panes.lines().count(), 25);
    assert!(String::from_utf8_lossy(&out.stderr).contains("identical to"));

    // A golden that disagrees fails with a diff.
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.ndjson");
    let text = std::fs::read_to_string(&golden).unwrap().replacen("\"value\": 1,", "\"value\": 2,", 1);
    std::fs::write(&wrong, text).unwrap();
    let out = runnel().arg("replay").arg(&scenario).arg("--golden").arg(&wrong).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expected but not emitted") && err.contains("value 2"), "{err}");
}

#[test]
fn check_reports_the_world_or_the_reason() {
    let out = runnel().args(["check", "count-events"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("world `aggregate`") && text.contains("runnel:plugin/aggregator@0.2.0"), "{text}");

    let wrong = runnel::plugin::bundled::built_guest("wrong-version");
    let out = runnel().arg("check").arg(&wrong).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: ") && err.contains("another version of the plugin contract"), "{err}");
}

#[test]
fn demo_prints_the_most_active_users_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = runnel().current_dir(dir.path()).args(["demo", "--windows", "3", "--output", "panes.ndjson"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("2018-08-03 07:01:00–07:02:00"), "{table}");
    assert_eq!(table.lines().filter(|l| l.contains("ON_TIME")).count(), 3, "{table}");
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("50000 events in") && summary.contains("0 dead letters"), "{summary}");
    let rows = std::fs::read_to_string(dir.path().join("panes.ndjson")).unwrap();
    assert_eq!(rows.lines().count(), 6583, "every pane is written, not only the printed ones");
}

#[test]
fn a_bad_config_exits_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("p.toml");
    std::fs::write(&cfg, "[source]\ntype = \"file\"\npath = \"x\"\n[windowing]\nwindow = { type = \"hourly\" }\n").unwrap();
    let out = runnel().args(["run", "--config"]).arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hourly") && err.contains("p.toml"), "{err}");
}

#[test]
fn a_fifo_or_a_device_as_plugin_or_dead_letter_file_is_refused_at_once_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("plugin.wasm");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let input = dir.path().join("in.ndjson");
    std::fs::write(&input, "{\"user_pseudo_id\":\"u\",\"event_timestamp\":1533279652346001}\n").unwrap();
    let run = |transform: &str, dead: &str| {
        let cfg = dir.path().join("p.toml");
        std::fs::write(
            &cfg,
            format!(
                "[source]\ntype = \"file\"\npath = \"{}\"\n[transform]\nplugin = \"{transform}\"\n\
                 [sink]\ntype = \"null\"\n[dead_letters]\npath = \"{dead}\"\n",
                input.display()
            ),
        )
        .unwrap();
        // Before, a FIFO hung the start with no message.
        let mut child = runnel().args(["run", "--config"]).arg(&cfg).stderr(std::process::Stdio::piped()).spawn().unwrap();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > until {
                child.kill().unwrap();
                panic!("runnel run with plugin {transform} and dead letters {dead} still runs after 60 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let dead = dir.path().join("dead.ndjson");
    let err = run(&fifo.display().to_string(), &dead.display().to_string());
    assert!(err.contains("plugin.wasm is not a regular file (a FIFO)"), "{err}");
    let err = run("/dev/zero", &dead.display().to_string());
    assert!(err.contains("plugin /dev/zero is not a regular file (a character device)"), "{err}");
    let dead_fifo = dir.path().join("dead-fifo.ndjson");
    assert!(Command::new("mkfifo").arg(&dead_fifo).status().unwrap().success());
    let err = run("identity", &dead_fifo.display().to_string());
    assert!(err.contains("dead-fifo.ndjson is a FIFO"), "{err}");
}
