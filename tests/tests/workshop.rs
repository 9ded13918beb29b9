//! WORKSHOP.md is the test: its commands, read from the document itself (so
//! the two cannot drift apart), run as a participant runs them against the
//! local emulators (started by scripts/test.sh): `runnel setup`, `runnel
//! run`, `runnel publish … --loop` past the end of the file, `runnel try
//! … --config` swapping a participant's plugin in mid-stream, the publisher
//! stopping, `runnel status` until the subscription is drained. Every
//! message published must be counted in the table, none dead-lettered.
//!
//! What the test changes in the document's commands, and why:
//! - `runnel publish`: the file is the first 1,000 events of the bundled
//!   file (so `--loop` passes the end of it twelve times in 60 s at the
//!   document's rate, instead of once in four minutes), and `--limit 12000`
//!   stops it (so the number published is known; a minute of stream leaves
//!   the swap, which starts 6 s in, room on a loaded machine: with 30 s it
//!   once landed after the end);
//! - `runnel try`: the participant's crate is one with the snippets filled
//!   in (the reference solution, `guests/add-weekday`, with `--exercise`),
//!   built beforehand so the swap lands mid-stream.
//!
//! It uses the workshop's own names (topic, subscription, dataset, admin
//! port 9464), its dead-letter file `out/dead-letters.ndjson` and its
//! journal of acknowledged ids `out/acknowledged-ids`, and deletes them
//! first, so it runs alone in this file.

use runnel_tests::emulators::{env as emulator, query};
use runnel_tests::{flood_it_lines, repo_root, runnel_binary};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const EXCERPT: usize = 1_000;
const PUBLISH: u64 = 12_000;

/// The `sh` code blocks of WORKSHOP.md, each as its commands (continued
/// lines joined, comments cut).
fn shell_blocks(doc: &str) -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    let mut pending = String::new();
    for line in doc.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```sh") => current = Some(Vec::new()),
            (Some(_), l) if l.starts_with("```") => blocks.push(current.take().expect("in a block")),
            (Some(block), l) => {
                let l = match l.find(" #") {
                    Some(i) if !l.starts_with('#') => &l[..i],
                    _ if l.starts_with('#') => "",
                    _ => l,
                };
                let l = l.trim_end();
                if let Some(head) = l.strip_suffix('\\') {
                    pending.push_str(head.trim_end());
                    pending.push(' ');
                    continue;
                }
                pending.push_str(l);
                let command = std::mem::take(&mut pending).split_whitespace().collect::<Vec<_>>().join(" ");
                if !command.is_empty() {
                    block.push(command);
                }
            }
            (None, _) => {}
        }
    }
    blocks
}

/// The workshop as the document says it, for the local emulators.
struct Workshop {
    /// `export …` lines of the local path (the emulators' own are set by
    /// the test harness, which started them).
    exports: Vec<String>,
    setup: String,
    run: String,
    publish: String,
    try_swap: String,
    status: String,
    /// The Google Cloud path's environment lines.
    cloud: Vec<String>,
}

fn workshop() -> Workshop {
    let doc = std::fs::read_to_string(repo_root().join("WORKSHOP.md")).expect("WORKSHOP.md");
    let blocks = shell_blocks(&doc);
    let cloud = blocks
        .iter()
        .find(|b| b.iter().any(|c| c.starts_with("gcloud auth application-default login")))
        .expect("WORKSHOP.md has the Google Cloud path")
        .clone();
    let local: Vec<&String> = blocks.iter().filter(|b| **b != cloud).flatten().collect();
    let one = |prefix: &str| -> String {
        let found: Vec<&&String> = local.iter().filter(|c| c.starts_with(prefix)).collect();
        assert_eq!(found.len(), 1, "WORKSHOP.md should have exactly one `{prefix}` command: {found:?}");
        found[0].to_string()
    };
    Workshop {
        exports: local.iter().filter(|c| c.starts_with("export ")).map(|c| c.to_string()).collect(),
        setup: one("runnel setup"),
        run: one("runnel run"),
        publish: one("runnel publish"),
        try_swap: one("runnel try guest-transforms/exercises/02-add-weekday"),
        status: one("runnel status"),
        cloud,
    }
}

/// A command of the document, run by `sh` in the repository with the
/// document's exports and the built `runnel` first on the PATH.
fn shell(w: &Workshop, command: &str) -> Command {
    let bin = runnel_binary();
    let path = format!("{}:{}", bin.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let script = format!("{}\nexec {command}", w.exports.join("\n"));
    let mut c = Command::new("sh");
    c.arg("-c").arg(script).current_dir(repo_root()).env("PATH", path).stdin(Stdio::null());
    c
}

fn check(what: &str, out: Output) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "`{what}` failed:\n{text}");
    text
}

/// Deletes what an earlier run of this test left in the emulators.
fn forget_the_workshop_resources() {
    let ps = emulator("PUBSUB_EMULATOR_HOST");
    let bq = emulator("BIGQUERY_EMULATOR_HOST");
    let _ = ureq::delete(&format!("http://{ps}/v1/projects/test-project/subscriptions/dj_subscription_dataflow")).call();
    let _ = ureq::delete(&format!("http://{ps}/v1/projects/test-project/topics/dj-pubsub-topic")).call();
    let _ = ureq::delete(&format!("http://{bq}/bigquery/v2/projects/test-project/datasets/data_journey?deleteContents=true")).call();
    let _ = std::fs::remove_file(repo_root().join("out/dead-letters.ndjson"));
    let _ = std::fs::remove_file(repo_root().join("out/acknowledged-ids"));
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn status_json(w: &Workshop) -> serde_json::Value {
    let out = shell(w, &format!("{} --json", w.status)).output().unwrap();
    serde_json::from_str(&check(&w.status, out).lines().skip_while(|l| !l.starts_with('{')).collect::<Vec<_>>().join("\n"))
        .expect("runnel status --json prints JSON")
}

#[test]
fn following_workshop_md_counts_every_event_it_was_sent() {
    let w = workshop();
    assert!(w.publish.contains("--loop"), "the document publishes in a loop: {}", w.publish);
    forget_the_workshop_resources();
    let dir = tempfile::tempdir().unwrap();
    let excerpt = dir.path().join("excerpt.ndjson");
    std::fs::write(&excerpt, flood_it_lines()[..EXCERPT].join("\n")).unwrap();

    check(&w.setup, shell(&w, &w.setup).output().unwrap());
    // The participant's crate, built before the stream starts so the swap
    // lands mid-stream (`runnel try` builds it again: a no-op then).
    let participant = "guest-transforms/guests/add-weekday";
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(repo_root().join(participant).join("Cargo.toml"))
        .output()
        .unwrap();
    check("cargo build (the participant's crate)", built);

    let run_log = dir.path().join("run.log");
    let pipeline = Killed(
        shell(&w, &w.run)
            .stdout(std::fs::File::create(&run_log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("run.err")).unwrap())
            .spawn()
            .unwrap(),
    );
    let admin = "http://127.0.0.1:9464";
    let until = Instant::now() + Duration::from_secs(120);
    while ureq::get(&format!("{admin}/healthz")).call().is_err() {
        assert!(Instant::now() < until, "`{}` did not start its admin server on 127.0.0.1:9464", w.run);
        std::thread::sleep(Duration::from_millis(200));
    }

    let publish = regex_file(&w.publish, &excerpt) + &format!(" --limit {PUBLISH}");
    let publisher = Killed(shell(&w, &publish).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap());

    // Mid-stream, past the end of the file once: the participant's swap.
    let events_in = || -> u64 {
        ureq::get(&format!("{admin}/api/status"))
            .call()
            .ok()
            .and_then(|r| r.into_json::<serde_json::Value>().ok())
            .and_then(|v| v["counters"]["events_in"].as_u64())
            .unwrap_or(0)
    };
    let until = Instant::now() + Duration::from_secs(120);
    while events_in() < EXCERPT as u64 + 200 {
        assert!(Instant::now() < until, "the pipeline received only {} events in 120 s", events_in());
        std::thread::sleep(Duration::from_millis(200));
    }
    let try_swap = w.try_swap.replacen("guest-transforms/exercises/02-add-weekday", &format!("{participant} --exercise 02-add-weekday"), 1);
    let swapped = check(&try_swap, shell(&w, &try_swap).output().unwrap());
    assert!(swapped.contains("swapped"), "{swapped}");
    let at_swap = events_in();
    assert!(at_swap < PUBLISH, "the swap landed after the stream ended ({at_swap} events in)");

    // The publisher stops by itself at its limit.
    let mut publisher = publisher;
    let published = wait_output(&mut publisher.0, Duration::from_secs(300));
    assert!(published.contains(&format!("published {PUBLISH} messages")), "{published}");

    // Then wait for the drain, as the document says.
    let until = Instant::now() + Duration::from_secs(360);
    let status = loop {
        let s = status_json(&w);
        if s["drained"] == true {
            break s;
        }
        assert!(Instant::now() < until, "not drained 360 s after the publisher stopped:\n{s:#}");
        std::thread::sleep(Duration::from_secs(5));
    };
    drop(pipeline);

    let transform = status["pipeline"]["transform"].as_str().unwrap_or_default();
    assert!(transform.starts_with("upload:add_weekday.wasm@"), "the participant's plugin runs after the swap: {transform}");
    assert_eq!(status["waiting_messages"], 0, "{status:#}");
    assert_eq!(status["held_by_pipeline"], 0, "{status:#}");
    assert_eq!(status["dead_letters"], serde_json::json!({}), "no dead letters: {status:#}");
    assert_eq!(status["late_recent"]["late"], 0, "{status:#}");
    let counted = query("SELECT SUM(event_count), COUNT(*) FROM data_journey.dataflow");
    assert_eq!(counted[0][0], PUBLISH.to_string(), "every message published is counted once in the table");
    assert!(
        !repo_root().join("out/dead-letters.ndjson").exists()
            || std::fs::read_to_string(repo_root().join("out/dead-letters.ndjson")).unwrap().trim().is_empty()
    );
}

/// The publish command with its `--file` replaced by `file`.
fn regex_file(command: &str, file: &Path) -> String {
    let mut words: Vec<String> = command.split(' ').map(str::to_string).collect();
    let i = words.iter().position(|w| w == "--file").expect("runnel publish --file FILE");
    words[i + 1] = file.display().to_string();
    words.join(" ")
}

fn wait_output(child: &mut Child, limit: Duration) -> String {
    let until = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut text = String::new();
            use std::io::Read;
            child.stdout.take().unwrap().read_to_string(&mut text).unwrap();
            child.stderr.take().unwrap().read_to_string(&mut text).unwrap();
            assert!(status.success(), "the publisher failed: {text}");
            return text;
        }
        assert!(Instant::now() < until, "the publisher did not finish within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The Google Cloud path uses the same commands and the same file: with
/// its environment (no emulator), the file resolves to the project it
/// names and Google's endpoints, and the commands parse.
#[test]
fn the_google_cloud_path_uses_the_same_file_and_commands() {
    let w = workshop();
    let project = w
        .cloud
        .iter()
        .find_map(|c| c.strip_prefix("export GOOGLE_CLOUD_PROJECT="))
        .expect("the Google Cloud path sets GOOGLE_CLOUD_PROJECT");
    let cfg = runnel::config::PipelineConfig::load(&repo_root().join("examples/workshop.toml")).unwrap();
    let cloud = runnel::cloud::Cloud::resolve(&runnel::cloud::CloudConfig { project: Some(project.into()), ..cfg.cloud.clone() }).unwrap();
    assert_eq!(cloud.project, project);
    // Every runnel command of the document parses (asking for its help
    // stops before it would reach Google Cloud).
    for command in [&w.setup, &w.run, &w.publish, &w.try_swap, &w.status] {
        let out = shell(&w, &format!("{command} --help")).env_remove("PUBSUB_EMULATOR_HOST").output().unwrap();
        check(command, out);
    }
}
