//! The same pipeline file and plugins on Apache Beam (beam/, the
//! `runnel_beam` package and its bridge), on Beam's real DirectRunner in the
//! virtualenv `scripts/beam.sh setup` makes (scripts/test.sh runs it first):
//!
//! - the bundled day, on two worker processes, gives exactly the rows
//!   `runnel run` writes for the same file;
//! - poison (malformed JSON, a missing key, an event the plugin panics on)
//!   ends in the dead letters with `runnel run`'s reasons while the rest of
//!   the bundle is counted;
//! - what Beam cannot run the same way, and a plugin built against another
//!   contract, are refused before Beam starts, saying what to change;
//! - the replay scenarios on Beam's TestStream give Beam's goldens;
//! - an event's publish time stays with it (and its outputs) through the
//!   stage, whatever else is in its bundle;
//! - a Pub/Sub subscription (the emulator) into a BigQuery table (the
//!   emulator), Beam's own reader and writer, counts every event published.

use runnel::config::PipelineConfig;
use runnel::deadletter::DeadLetter;
use runnel::pipeline::Pipeline;
use runnel_tests::{count_per_user_window, emulators, flood_it_lines, read_rows, repo_root, rfc3339_us, runnel_binary};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// One Beam pipeline at a time: the DirectRunner is CPU-hungry, and its
/// Pub/Sub reader pulls on a slow cadence when the machine is busy (on two
/// cores, beside the multi-process and TestStream tests, it read 70 of 120
/// messages in three minutes).
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static BEAM: std::sync::Mutex<()> = std::sync::Mutex::new(());
    BEAM.lock().unwrap_or_else(|e| e.into_inner())
}

/// `python -m runnel_beam` in the Beam virtualenv, from `dir`.
fn runnel_beam(dir: &Path, args: &[&str]) -> Output {
    let python = repo_root().join("target/beam-venv/bin/python");
    assert!(
        python.exists() && repo_root().join("target/beam-py/runnel_beam").exists(),
        "no Beam virtualenv with runnel_beam: run `scripts/beam.sh setup` (scripts/test.sh does)"
    );
    // A temp folder of its own: whatever the run leaves there is a leak
    // into the user's temp folder (Beam's runners leave a `beam-temp*`
    // folder and more after every run unless runnel_beam cleans up).
    let temp = tempfile::tempdir().unwrap();
    let out = Command::new(python).arg("-m").arg("runnel_beam").args(args).current_dir(dir).env("TMPDIR", temp.path()).output();
    let out = out.expect("python runs");
    let left: Vec<_> = std::fs::read_dir(temp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "runnel_beam {args:?} left {left:?} in the temp folder");
    out
}

/// A pipeline file for `input`, rows and dead letters under `out`, with
/// `tables` (TOML) for the transform and anything else.
fn pipeline_file(dir: &Path, name: &str, input: &Path, out: &str, tables: &str) -> PathBuf {
    let text = format!(
        "[source]\ntype = \"file\"\npath = \"{}\"\n{tables}\n[sink]\ntype = \"ndjson\"\npath = \"{out}/panes.ndjson\"\n\
         [dead_letters]\npath = \"{out}/dead.ndjson\"\n",
        input.display()
    );
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the file with `runnel run` (in this process) and on Beam; returns
/// each one's output folder.
fn both(dir: &Path, input: &Path, tables: &str, beam_args: &[&str]) -> (PathBuf, PathBuf) {
    let runnel = pipeline_file(dir, "runnel.toml", input, "runnel", tables);
    Pipeline::from_config(&PipelineConfig::load(&runnel).unwrap()).unwrap().run().unwrap();
    let beam = pipeline_file(dir, "beam.toml", input, "beam", tables);
    let mut args = vec!["--config", beam.to_str().unwrap()];
    args.extend_from_slice(beam_args);
    let out = runnel_beam(dir, &args);
    assert!(out.status.success(), "runnel_beam failed:\n{}", String::from_utf8_lossy(&out.stderr));
    (dir.join("runnel"), dir.join("beam"))
}

fn sorted_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut lines: Vec<String> = text.lines().filter(|l| !l.is_empty()).map(str::to_string).collect();
    lines.sort();
    lines
}

fn dead_letters(path: &Path) -> Vec<DeadLetter> {
    if !path.exists() {
        return Vec::new();
    }
    let mut dead = runnel::deadletter::read(path).unwrap();
    dead.sort_by(|a, b| (a.code.as_str(), &a.payload).cmp(&(b.code.as_str(), &b.payload)));
    dead
}

#[test]
fn the_bundled_day_on_two_beam_workers_gives_runnel_runs_rows() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let input = repo_root().join("examples/data/floodit-events.ndjson.gz");
    let tables = "[transform]\nplugin = \"add-weekday\"\n[aggregate]\nplugin = \"count-events\"\n";
    let (runnel, beam) = both(dir.path(), &input, tables, &["--direct_running_mode=multi_processing", "--direct_num_workers=2"]);

    let rows = sorted_lines(&beam.join("panes.ndjson"));
    assert_eq!(rows, sorted_lines(&runnel.join("panes.ndjson")), "Beam's rows are runnel's, byte for byte");
    // And both are the count computed here without either engine.
    let mut counts = BTreeMap::new();
    for r in read_rows(&beam.join("panes.ndjson")) {
        let key = (r["user_pseudo_id"].as_str().unwrap().to_string(), rfc3339_us(r["window_start"].as_str().unwrap()));
        assert!(counts.insert(key, r["event_count"].as_i64().unwrap()).is_none(), "one pane per window");
        assert!(r["plugins"]["transform"].as_str().unwrap().starts_with("bundled:add-weekday@"), "{r}");
    }
    assert_eq!(counts, count_per_user_window(&flood_it_lines(), 60_000_000));
    assert!(dead_letters(&beam.join("dead.ndjson")).is_empty());
}

#[test]
fn poison_goes_to_the_dead_letters_on_beam_as_in_runnel_run() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let good: Vec<String> = flood_it_lines().into_iter().take(400).collect();
    let mut lines = good.clone();
    // A line that is not JSON, an event without its key, and one the
    // plugin panics on, in the middle of one bundle.
    lines.insert(100, "{\"event_name\": not json".into());
    lines.insert(200, good[0].replacen("\"user_pseudo_id\"", "\"someone_else\"", 1));
    let name = serde_json::from_str::<serde_json::Value>(&good[300]).unwrap()["event_name"].as_str().unwrap().to_string();
    lines.insert(300, good[300].replacen(&format!("\"event_name\":\"{name}\""), "\"event_name\":\"poison\"", 1));
    let input = dir.path().join("input.ndjson");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let hostile = runnel::plugin::bundled::built_guest("hostile");
    let tables = format!(
        "[transform]\nplugin = \"{}\"\nconfig = {{ mode = \"panic\", when = \"poison\" }}\n[aggregate]\nplugin = \"count-events\"\n",
        hostile.display()
    );
    let (runnel, beam) = both(dir.path(), &input, &tables, &[]);

    // The good events are all counted, on Beam as in runnel.
    let rows = sorted_lines(&beam.join("panes.ndjson"));
    assert_eq!(rows, sorted_lines(&runnel.join("panes.ndjson")));
    let mut counts = BTreeMap::new();
    for r in read_rows(&beam.join("panes.ndjson")) {
        let key = (r["user_pseudo_id"].as_str().unwrap().to_string(), rfc3339_us(r["window_start"].as_str().unwrap()));
        counts.insert(key, r["event_count"].as_i64().unwrap());
    }
    assert_eq!(counts, count_per_user_window(&good, 60_000_000));

    // The three bad ones are dead letters with runnel's codes and payloads.
    let (on_beam, in_runnel) = (dead_letters(&beam.join("dead.ndjson")), dead_letters(&runnel.join("dead.ndjson")));
    let codes = |d: &[DeadLetter]| d.iter().map(|d| (d.stage.as_str(), d.code.as_str(), d.payload.clone())).collect::<Vec<_>>();
    assert_eq!(codes(&on_beam), codes(&in_runnel));
    let kinds: Vec<_> = on_beam.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(kinds, ["malformed", "missing_key", "plugin_failed"], "{on_beam:#?}");
    let panicked = &on_beam[2];
    assert!(panicked.reason.contains("hostile: panicking on poison"), "the plugin's own message: {}", panicked.reason);
    assert!(panicked.plugin.as_deref().is_some_and(|p| p.contains("hostile")), "the plugin version is recorded");
}

#[test]
fn what_beam_cannot_run_the_same_way_is_refused_before_it_starts() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let input = repo_root().join("examples/data/floodit-events.ndjson.gz");
    let refused = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = runnel_beam(dir.path(), &["--config", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{name} is refused");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let source = format!("[source]\ntype = \"file\"\npath = \"{}\"\n", input.display());
    let file = format!("{source}[sink]\ntype = \"ndjson\"\npath = \"panes.ndjson\"\n");

    let e = refused("synthetic.toml", "[source]\ntype = \"synthetic\"\n");
    assert!(e.contains("exists only in `runnel run`"), "{e}");
    let e = refused("watermark.toml", &format!("{file}[watermark]\nmode = \"bounded\"\nmax_out_of_orderness_s = 5\n"));
    assert!(e.contains("Remove [watermark]"), "{e}");
    // For Pub/Sub the runner's own estimate applies, and the run says so.
    let workshop = runnel_beam(&repo_root(), &["--config", "examples/workshop.toml", "--check"]);
    let e = String::from_utf8_lossy(&workshop.stderr);
    assert!(workshop.status.success() && e.contains("note: [watermark] is runnel's estimator"), "{e}");
    let e = refused("stdout.toml", &format!("{source}[sink]\ntype = \"stdout\"\n"));
    assert!(e.contains("type = \"ndjson\""), "{e}");
    // A plugin built against another contract: the host's own refusal.
    let wrong = runnel::plugin::bundled::built_guest("wrong-version");
    let e = refused("wrong.toml", &format!("{file}[transform]\nplugin = \"{}\"\n", wrong.display()));
    assert!(e.contains("[transform] plugin refused") && e.contains("Rebuild the plugin"), "{e}");
    // And the host's validation of the file itself.
    let e = refused("typo.toml", &format!("{file}[windowing]\nwindow = {{ type = \"fixed\", size = 60 }}\n"));
    assert!(e.contains("size"), "{e}");
}

#[test]
fn the_replay_scenarios_on_beams_test_stream_with_the_plugins_give_beams_goldens() {
    let _one = one_at_a_time();
    // Every scenario (events, watermarks, processing times) through Beam's
    // streaming DirectRunner with add-weekday and count-events as runnel
    // plugins: exactly the panes Beam's own count gives (the goldens, which
    // `runnel replay` reproduces too: host/tests/replay_goldens.rs). Session
    // merges go through the plugin's exported state and `merge`.
    let replay = repo_root().join("tests/replay");
    let mut scenarios: Vec<PathBuf> = std::fs::read_dir(replay.join("scenarios")).unwrap().map(|e| e.unwrap().path()).collect();
    scenarios.sort();
    assert!(scenarios.len() >= 12);
    let mut failures = Vec::new();
    for scenario in &scenarios {
        let args = ["-m", "runnel_beam.replay", scenario.to_str().unwrap(), "--transform", "add-weekday", "--aggregate", "count-events"];
        let out = Command::new(repo_root().join("target/beam-venv/bin/python")).args(args).output().unwrap();
        assert!(out.status.success(), "{}: {}", scenario.display(), String::from_utf8_lossy(&out.stderr));
        let golden = std::fs::read_to_string(replay.join("golden").join(scenario.file_name().unwrap())).unwrap();
        if String::from_utf8_lossy(&out.stdout) != golden {
            failures.push(scenario.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    assert!(failures.is_empty(), "differ from Beam's goldens: {failures:?}");
}

#[test]
fn each_event_keeps_its_own_publish_time_through_the_stage_on_beam() {
    let _one = one_at_a_time();
    // `time = "publish_time"`: an element's event time is the timestamp
    // of the message it came from. Events published a minute apart go
    // through RunStage (the bridge: ingest, add-weekday, decode) as one
    // bundle, a malformed one first so that inputs and outputs do not line
    // up; each output must carry its own input's timestamp (it once carried
    // the bundle's first one, so a backlog fell into one window).
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pipeline.toml");
    std::fs::write(
        &config,
        "[source]\ntype = \"pubsub\"\nsubscription = \"s\"\ntopic = \"t\"\n[event]\ntime = \"publish_time\"\n\
         [transform]\nplugin = \"add-weekday\"\n[sink]\ntype = \"bigquery\"\ndataset = \"d\"\ntable = \"t\"\n",
    )
    .unwrap();
    let mut published = vec![(b"{not json".to_vec(), 0i64)];
    let mut expected = Vec::new();
    for (i, line) in flood_it_lines().into_iter().take(5).enumerate() {
        let seconds = 1_000 + 60 * i as i64;
        let user = serde_json::from_str::<serde_json::Value>(&line).unwrap()["user_pseudo_id"].as_str().unwrap().to_string();
        expected.push(format!("{user} {}", seconds * 1_000_000));
        published.push((line.into_bytes(), seconds));
    }
    let script = r#"
import json, sys
import apache_beam as beam
from apache_beam.transforms.window import TimestampedValue
from runnel_beam.fns import DEAD_LETTERS, RunStage

class Stamped(beam.DoFn):
    def process(self, kv, ts=beam.DoFn.TimestampParam):
        yield f"{kv[0]} {ts.micros}"

published = [(bytes.fromhex(e), t) for e, t in json.loads(sys.argv[2])]
with beam.Pipeline() as p:
    out = (
        p
        | beam.Create(published)
        | beam.Map(lambda e: TimestampedValue(e[0], e[1]))
        | beam.ParDo(RunStage(sys.argv[1], "test", False)).with_outputs(DEAD_LETTERS, main="events")
    )
    out.events | beam.ParDo(Stamped()) | beam.Map(print)
"#;
    let arg = serde_json::to_string(&published.iter().map(|(e, t)| (hex(e), *t)).collect::<Vec<_>>()).unwrap();
    let out = Command::new(repo_root().join("target/beam-venv/bin/python"))
        .args(["-c", script, config.to_str().unwrap(), &arg])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut seen: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn pubsub_into_bigquery_on_beam_counts_every_event_published() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    // The emulators of scripts/test.sh; this test's own topic and table.
    let (ps, bq) = (emulators::env("PUBSUB_EMULATOR_HOST"), emulators::env("BIGQUERY_EMULATOR_HOST"));
    let _ = ureq::delete(&format!("http://{ps}/v1/projects/test-project/subscriptions/beam_sub")).call();
    let _ = ureq::delete(&format!("http://{bq}/bigquery/v2/projects/test-project/datasets/beam_journey?deleteContents=true")).call();
    // The workshop's shape: publish time as event time, the weekday added,
    // a count per user. Panes fire per element: Beam's Python DirectRunner
    // reads Pub/Sub ten messages at a time and sets the watermark to the
    // wall clock, so on a busy machine most of a backlog arrives after its
    // window's on-time pane, and the default trigger held those late
    // elements until the window's end plus the allowed lateness (10 of 60
    // counted in five minutes, on CI and here).
    let config = dir.path().join("pipeline.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\ntype = \"pubsub\"\nsubscription = \"beam_sub\"\ntopic = \"beam-topic\"\n\
             [event]\ntime = \"publish_time\"\n[transform]\nplugin = \"add-weekday\"\n\
             [windowing]\nwindow = {{ type = \"fixed\", size_s = 3600 }}\n\
             trigger = {{ type = \"repeatedly\", of = {{ type = \"after_count\", count = 1 }} }}\n\
             [sink]\ntype = \"bigquery\"\ndataset = \"beam_journey\"\ntable = \"counts\"\n\
             [dead_letters]\npath = \"{}\"\ntopic = \"beam-dead\"\n",
            dir.path().join("dead.ndjson").display()
        ),
    )
    .unwrap();
    let runnel = |args: &[&str]| {
        let out = Command::new(runnel_binary()).args(args).env("GOOGLE_CLOUD_PROJECT", "test-project").output().unwrap();
        assert!(out.status.success(), "runnel {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    runnel(&["setup", "--config", config.to_str().unwrap()]);
    // A subscription on the dead-letter topic (`runnel setup` made the topic).
    let dead_sub = format!("http://{ps}/v1/projects/test-project/subscriptions/beam_dead_sub");
    let _ = ureq::delete(&dead_sub).call();
    ureq::put(&dead_sub).send_json(serde_json::json!({"topic": "projects/test-project/topics/beam-dead"})).unwrap();

    let log = dir.path().join("beam.log");
    let _beam = Killed(
        Command::new(repo_root().join("target/beam-venv/bin/python"))
            .args(["-m", "runnel_beam", "--config", config.to_str().unwrap()])
            .env("GOOGLE_CLOUD_PROJECT", "test-project")
            // Killed at the end, it cannot clean up: its temp files go
            // with the test's folder.
            .env("TMPDIR", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let events = dir.path().join("events.ndjson");
    let sent: Vec<String> = flood_it_lines().into_iter().take(60).collect();
    std::fs::write(&events, sent.join("\n")).unwrap();
    runnel(&["publish", "--config", config.to_str().unwrap(), "--file", events.to_str().unwrap()]);

    // Every event is counted once, in per-user rows of the table.
    let mut per_user = BTreeMap::new();
    for line in &sent {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        *per_user.entry(v["user_pseudo_id"].as_str().unwrap().to_string()).or_insert(0i64) += 1;
    }
    let until = Instant::now() + Duration::from_secs(300);
    let counted = loop {
        let rows = emulators::query("SELECT user_pseudo_id, SUM(event_count) FROM beam_journey.counts GROUP BY user_pseudo_id");
        let counted: BTreeMap<String, i64> = rows.iter().map(|r| (r[0].clone(), r[1].parse().unwrap())).collect();
        if counted.values().sum::<i64>() >= sent.len() as i64 || Instant::now() > until {
            break counted;
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    assert_eq!(counted, per_user, "Beam's log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());

    // Then one message that is not JSON: a dead letter on the topic, with
    // its reason code.
    let poison = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b"{not json");
    ureq::post(&format!("http://{ps}/v1/projects/test-project/topics/beam-topic:publish"))
        .send_json(serde_json::json!({"messages": [{"data": poison}]}))
        .unwrap();
    let until = Instant::now() + Duration::from_secs(60);
    let message = loop {
        let pulled: serde_json::Value = ureq::post(&format!("{dead_sub}:pull"))
            .send_json(serde_json::json!({"maxMessages": 10, "returnImmediately": true}))
            .unwrap()
            .into_json()
            .unwrap();
        if let Some(m) = pulled["receivedMessages"].get(0) {
            break m["message"].clone();
        }
        assert!(Instant::now() < until, "no dead letter on the topic");
        std::thread::sleep(Duration::from_secs(1));
    };
    assert_eq!(message["attributes"]["reason_kind"], "malformed", "{message}");
    let data = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, message["data"].as_str().unwrap()).unwrap();
    let letter: DeadLetter = serde_json::from_slice(&data).unwrap();
    assert_eq!((letter.stage.as_str(), letter.payload.as_deref()), ("transform", Some("{not json")));
}
