//! Helpers for runnel's end-to-end tests: the bundled data, independent
//! (engine-free) computations to check results against, and reading outputs.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is in the root").to_path_buf()
}

/// The bundled Flood It events, one JSON text per line.
pub fn flood_it_lines() -> Vec<String> {
    let path = repo_root().join("examples/data/floodit-events.ndjson.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("bundled data")).read_to_string(&mut text).expect("gzip");
    text.lines().map(str::to_string).collect()
}

/// Events per (user, window start in µs) for fixed windows of `size_us`,
/// computed directly from the events with plain grouping (no runnel code).
pub fn count_per_user_window(lines: &[String], size_us: i64) -> BTreeMap<(String, i64), i64> {
    let mut counts = BTreeMap::new();
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).expect("valid event");
        let user = v["user_pseudo_id"].as_str().expect("user").to_string();
        let ts = v["event_timestamp"].as_i64().expect("timestamp");
        let start = ts - ts.rem_euclid(size_us);
        *counts.entry((user, start)).or_insert(0) += 1;
    }
    counts
}

/// Reads NDJSON rows.
pub fn read_rows(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON row"))
        .collect()
}

/// RFC 3339 text (as sinks write window bounds) to µs.
pub fn rfc3339_us(text: &str) -> i64 {
    runnel_event::parse_event_time(runnel_event::Raw::from_json(&format!("\"{text}\"")), runnel_event::TimeFormat::Rfc3339)
        .expect("an RFC 3339 time")
}

/// The `runnel` binary of this build (beside the test executable's
/// `deps/` folder), built first if it is not there yet.
pub fn runnel_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/PROFILE/deps/TEST");
    let bin = profile_dir.join("runnel");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = std::process::Command::new(cargo).args(["build", "-p", "runnel", "--bin", "runnel"]).status().is_ok_and(|s| s.success());
        assert!(ok && bin.exists(), "could not build the runnel binary at {}", bin.display());
    }
    bin
}

/// Waits until `check` says the condition holds (`Ok`), asking every 100 ms
/// for at most `deadline`; past it, fails naming the condition and what
/// `check` saw last (its `Err`). The one way a test waits: on a stated
/// condition, never on a fixed sleep.
pub fn wait_for<T, E: std::fmt::Display>(condition: &str, deadline: std::time::Duration, mut check: impl FnMut() -> Result<T, E>) -> T {
    let until = std::time::Instant::now() + deadline;
    loop {
        match check() {
            Ok(v) => return v,
            Err(saw) if std::time::Instant::now() >= until => panic!("waited {deadline:?} for {condition}; last saw: {saw}"),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    }
}

/// A `runnel run` process and its admin server, seen from a test.
pub mod running {
    use std::path::Path;
    use std::process::{Child, Command, Stdio};

    /// A loopback port free now.
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    /// `runnel run` on the pipeline file, errors only, its stderr kept.
    pub fn spawn(config: &Path) -> Child {
        Command::new(crate::runnel_binary())
            .args(["--log", "error", "run", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The running pipeline's `/api/status` (`None` while it does not answer).
    pub fn status(port: u16) -> Option<serde_json::Value> {
        ureq::get(&format!("http://127.0.0.1:{port}/api/status")).call().ok().and_then(|r| r.into_json::<serde_json::Value>().ok())
    }

    /// A counter of the running pipeline's status (0 while it does not answer).
    pub fn counter(port: u16, name: &str) -> u64 {
        status(port).and_then(|v| v["counters"][name].as_u64()).unwrap_or(0)
    }

    /// Sends a signal (`-STOP`, `-CONT`, `-TERM`) to a process.
    pub fn signal(child: &Child, signal: &str) {
        assert!(Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap().success(), "kill {signal}");
    }
}

/// The local emulators scripts/test.sh starts, seen from the tests.
pub mod emulators {
    use std::time::Duration;

    /// An emulator's `host:port` from the environment.
    pub fn env(var: &str) -> String {
        std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set: run the tests with scripts/test.sh, which starts the emulators"))
    }

    /// Runs SQL on the BigQuery emulator; each row as its cells' text.
    pub fn query(sql: &str) -> Vec<Vec<String>> {
        let url = format!("http://{}/bigquery/v2/projects/test-project/queries", env("BIGQUERY_EMULATOR_HOST"));
        let body: serde_json::Value = ureq::post(&url)
            .send_json(serde_json::json!({"query": sql, "useLegacySql": false}))
            .expect("the BigQuery emulator answers")
            .into_json()
            .expect("JSON");
        body["rows"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|r| r["f"].as_array().unwrap().iter().map(|c| c["v"].as_str().unwrap_or("").to_string()).collect())
            .collect()
    }

    /// Writes and sets up (topic and subscription on the emulator) a
    /// pipeline file `dir/p.toml` that holds every message until it is
    /// drained or stopped: the subscription `{name}_sub_{tag}` with leases
    /// of `lease_s`, `source_extra` lines in `[source]`, windows of a minute
    /// behind a watermark bound of two days, panes to `dir/panes.ndjson`,
    /// dead letters to `dir/dead.ndjson`, and an admin server on `port`.
    pub fn holding_pipeline(dir: &std::path::Path, name: &str, lease_s: u32, source_extra: &str, port: u16) -> std::path::PathBuf {
        let tag = format!(
            "{}_{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
        );
        let text = format!(
            r#"
[cloud]
project = "test-project"
[source]
type = "pubsub"
topic = "{name}_topic_{tag}"
subscription = "{name}_sub_{tag}"
ack_deadline_s = {lease_s}
lease_extension_s = {lease_s}
{source_extra}
[windowing]
window = {{ type = "fixed", size_s = 60 }}
[watermark]
mode = "bounded"
max_out_of_orderness_s = 172800
idle_timeout_s = 3600
max_future_s = 315360000
[sink]
type = "ndjson"
path = "{panes}"
[dead_letters]
path = "{dead}"
[admin]
listen = "127.0.0.1:{port}"
token = "{name}-test-admin-token"
"#,
            panes = dir.join("panes.ndjson").display(),
            dead = dir.join("dead.ndjson").display(),
        );
        let config = dir.join("p.toml");
        std::fs::write(&config, text).unwrap();
        runnel::cmd::setup::run(&config).unwrap();
        config
    }

    /// The first `n` bundled events, and a file `dir/input.ndjson` holding them.
    pub fn input_file(dir: &std::path::Path, n: usize) -> (Vec<String>, std::path::PathBuf) {
        let lines: Vec<String> = crate::flood_it_lines().into_iter().take(n).collect();
        let input = dir.join("input.ndjson");
        std::fs::write(&input, lines.join("\n")).unwrap();
        (lines, input)
    }

    /// Messages the subscription would deliver again, pulled once the ack
    /// deadline of anything left unacknowledged has passed.
    pub fn redelivered(subscription: &str, ack_deadline: Duration) -> usize {
        std::thread::sleep(ack_deadline + Duration::from_secs(2));
        let url = format!("http://{}/v1/projects/test-project/subscriptions/{subscription}:pull", env("PUBSUB_EMULATOR_HOST"));
        let body: serde_json::Value = ureq::post(&url)
            .send_json(serde_json::json!({"maxMessages": 1000, "returnImmediately": true}))
            .expect("the Pub/Sub emulator answers")
            .into_json()
            .expect("JSON");
        body["receivedMessages"].as_array().map(Vec::len).unwrap_or(0)
    }
}

/// A source that hands out another source's batches slowly, calling a hook
/// before each one (with the batch number, from 1): a pipeline run that
/// lasts long enough to be changed while it runs.
pub struct PacedSource<S> {
    pub inner: S,
    pub delay: std::time::Duration,
    pub before_batch: Box<dyn FnMut(usize) + Send>,
    batches: usize,
}

impl<S> PacedSource<S> {
    pub fn new(inner: S, delay: std::time::Duration, before_batch: impl FnMut(usize) + Send + 'static) -> Self {
        Self { inner, delay, before_batch: Box::new(before_batch), batches: 0 }
    }
}

impl<S: runnel::source::Source> runnel::source::Source for PacedSource<S> {
    fn next_batch(&mut self, max: usize) -> anyhow::Result<Option<runnel::source::SourceBatch>> {
        self.batches += 1;
        (self.before_batch)(self.batches);
        std::thread::sleep(self.delay);
        self.inner.next_batch(max)
    }
}

/// The bundled events, then the same events a day later: 100,000 in order.
pub fn two_days() -> Vec<String> {
    let day1 = flood_it_lines();
    let day2: Vec<String> = day1
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let ts = v["event_timestamp"].as_i64().unwrap();
            l.replacen(&format!("\"event_timestamp\":{ts}"), &format!("\"event_timestamp\":{}", ts + 86_400_000_000), 1)
        })
        .collect();
    day1.into_iter().chain(day2).collect()
}

/// Per-(user, window) counts from a pane file, asserting one pane per window.
pub fn pane_counts(rows: &[serde_json::Value]) -> BTreeMap<(String, i64), i64> {
    let mut counts = BTreeMap::new();
    for r in rows {
        let key = (r["user_pseudo_id"].as_str().unwrap().to_string(), rfc3339_us(r["window_start"].as_str().unwrap()));
        assert!(counts.insert(key, r["event_count"].as_i64().unwrap()).is_none(), "one pane per window: {r}");
    }
    counts
}

/// Writes `dir/pipeline.toml`: `input` → identity → events per user per
/// minute (watermark trailing the newest event by 0 s) → `dir/panes.ndjson`,
/// with an admin server on a free loopback port taking `token`; `admin_extra`
/// goes into the `[admin]` table.
pub fn admin_pipeline_file(dir: &Path, input: &Path, token: &str, admin_extra: &str) -> PathBuf {
    let path = dir.join("pipeline.toml");
    let text = format!(
        "[source]\ntype = \"file\"\npath = \"{}\"\n[transform]\nplugin = \"identity\"\n\
         [watermark]\nmode = \"bounded\"\nmax_out_of_orderness_s = 0\n\
         [sink]\ntype = \"ndjson\"\npath = \"panes.ndjson\"\n[dead_letters]\npath = \"dead.ndjson\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{token}\"\n{admin_extra}",
        input.display()
    );
    std::fs::write(&path, text).expect("a writable temporary directory");
    path
}

/// A Python plugin (`folder` under guest-transforms/python, holding
/// app.py), built by `runnel build`'s code unless a build newer than its
/// sources, the SDK and the contract is there (scripts/test.sh builds them
/// all before the tests, so no test shares the machine with a build).
pub fn python_plugin(folder: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<BTreeMap<String, PathBuf>> = std::sync::Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(folder) {
        return path.clone();
    }
    let root = repo_root();
    let out = root.join("target/test-artifacts/python").join(format!("{}.wasm", folder.replace('/', "-")));
    let dir = root.join("guest-transforms/python").join(folder);
    let newest = |d: &Path| std::fs::read_dir(d).into_iter().flatten().flatten().filter_map(|e| e.metadata().ok()?.modified().ok()).max();
    let sources = [dir.clone(), root.join("guest-transforms/python/runnel_sdk"), root.join("wit")];
    let made = std::fs::metadata(&out).and_then(|m| m.modified()).ok();
    if made.is_some() && sources.iter().filter_map(|d| newest(d)).all(|t| Some(t) <= made) {
        built.insert(folder.to_string(), out.clone());
        return out;
    }
    runnel::cmd::build::python(&dir, &out).unwrap_or_else(|e| panic!("building the Python plugin {folder} failed: {e:#}"));
    built.insert(folder.to_string(), out.clone());
    out
}
