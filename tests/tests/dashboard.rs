//! The dashboard in a real headless Chromium while a pipeline streams the
//! bundled events: the top-users table of a closed minute equals the
//! pipeline's own panes for it, an uploaded plugin's version shows up, a
//! screenshot is saved (target/test-artifacts/dashboard.png), and
//! `/metrics` parses as Prometheus text with counters that add up.

use runnel::config::PipelineConfig;
use runnel::pipeline::{Overrides, Pipeline};
use runnel::plugin::with_build_tag;
use runnel::source::file::FileSource;
use runnel_tests::{read_rows, repo_root};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "dashboard-token";

/// Runs headless Chromium on `url` with `extra` flags; its stdout.
fn chromium(profile: &Path, url: &str, extra: &[&str]) -> String {
    let out = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
        .args(["--disable-component-update", "--disable-sync", "--disable-quic", "--virtual-time-budget=3000"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium runs (scripts/test.sh installs Debian's chromium)");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The text of the element with `id` in a dumped DOM.
fn by_id<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in the page"));
    let open = start + dom[start..].find('>').unwrap() + 1;
    &dom[open..open + dom[open..].find('<').unwrap()]
}

/// The top-users table: its window start and its (key, value) rows.
fn top_users(dom: &str) -> (String, Vec<(String, i64)>) {
    let table = &dom[dom.find("id=\"top-users\"").expect("the table")..];
    let table = &table[..table.find("</table>").unwrap()];
    let start = table.split("data-window-start=\"").nth(1).map(|s| s[..s.find('"').unwrap()].to_string()).unwrap_or_default();
    let rows = table
        .split("<td class=\"key\">")
        .skip(1)
        .map(|r| {
            let key = &r[..r.find('<').unwrap()];
            let value = r.split("<td class=\"value\">").nth(1).unwrap();
            (key.to_string(), value[..value.find('<').unwrap()].parse().unwrap())
        })
        .collect();
    (start, rows)
}

#[test]
fn the_dashboard_shows_the_pipelines_own_results_live() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines: Vec<String> = runnel_tests::flood_it_lines();
    lines.insert(500, "{\"not\": json".into());
    lines.insert(5000, "[1, 2, 3]".into());
    let input = dir.path().join("input.ndjson");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let panes_path = dir.path().join("panes.ndjson");
    let text = runnel::cmd::demo::DEMO_TOML.replace("data/floodit-events.ndjson.gz", &input.display().to_string());
    let mut cfg = PipelineConfig::parse(&text).unwrap();
    cfg.dead_letters.path = dir.path().join("dead.ndjson");
    cfg.watermark = Some(runnel::window::watermark::WatermarkSpec::Bounded {
        max_out_of_orderness_s: 5.0,
        idle_timeout_s: None,
        startup_hold_s: None,
        max_future_s: 300.0,
    });
    cfg.admin = Some(runnel::config::AdminConfig {
        listen: "127.0.0.1:0".into(),
        token: Some(TOKEN.into()),
        max_upload_mib: 16,
        allowed_hosts: Vec::new(),
    });
    let sink = runnel::sink::ndjson::NdjsonSink::create(
        &panes_path,
        runnel::sink::Columns { key: "user_pseudo_id".into(), value: "event_count".into() },
    )
    .unwrap();
    // A live pace while the browser looks, then as fast as it goes.
    let browsed = Arc::new(AtomicBool::new(false));
    let seen = browsed.clone();
    let source = runnel_tests::PacedSource::new(FileSource::open(&input).unwrap(), Duration::ZERO, move |_| {
        if !seen.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let mut pipeline =
        Pipeline::with_overrides(&cfg, Overrides { source: Some(Box::new(source)), sink: Some(Box::new(sink)), ..Default::default() })
            .unwrap();
    let server = runnel::cmd::run::start_admin(&cfg, None, &pipeline).unwrap().unwrap();
    let base = format!("http://{}", server.addr());
    let status = pipeline.status();

    let browser = {
        let base = base.clone();
        let profile = dir.path().join("chromium-profile");
        let artifacts = repo_root().join("target/test-artifacts");
        std::thread::spawn(move || {
            // Wait until a few minutes have closed.
            let until = Instant::now() + Duration::from_secs(120);
            while status.snapshot().recent_windows.len() < 3 && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(100));
            }
            // The page polls with `?poll` (a headless dump waits for the
            // network to go quiet, which an event stream never does); the
            // event stream itself is checked below.
            let page = format!("{base}/?poll");
            let first = chromium(&profile, &page, &["--dump-dom"]);
            let (window, rows) = top_users(&first);
            assert!(!window.is_empty() && !rows.is_empty(), "the table shows a closed window");
            assert!(by_id(&first, "transform-version").starts_with("bundled:add-weekday@"));

            // Upload a new transform through the admin API; the page shows it.
            let wasm = with_build_tag(runnel::plugin::bundled::find("add-weekday").unwrap(), "dashboard");
            let resp = ureq::post(&format!("{base}/api/plugins/transform"))
                .set("authorization", &format!("Bearer {TOKEN}"))
                .set("x-plugin-name", "dashboard-upload.wasm")
                .send_bytes(&wasm)
                .unwrap();
            let body: serde_json::Value = resp.into_json().unwrap();
            assert_eq!(body[0]["outcome"], "swapped", "{body}");
            let second = chromium(&profile, &page, &["--dump-dom"]);
            let version = by_id(&second, "transform-version").to_string();
            assert!(version.starts_with("upload:dashboard-upload.wasm@"), "{version}");
            assert!(second.contains("transform swapped"), "the reload history lists it");

            std::fs::create_dir_all(&artifacts).unwrap();
            let shot = artifacts.join("dashboard.png");
            chromium(&profile, &page, &["--window-size=1280,1000", &format!("--screenshot={}", shot.display())]);

            // The live updates: server-sent events carrying the status.
            let mut stream = std::io::BufReader::new(ureq::get(&format!("{base}/api/events")).call().unwrap().into_reader());
            let mut line = String::new();
            while !line.starts_with("data:") {
                line.clear();
                std::io::BufRead::read_line(&mut stream, &mut line).unwrap();
            }
            let event: serde_json::Value = serde_json::from_str(line.trim_start_matches("data:").trim()).unwrap();
            assert!(event["counters"]["events_in"].as_u64().unwrap() > 0);
            assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "a screenshot of the page");
            (window, rows, version)
        })
    };
    let browser_result = std::thread::spawn(move || {
        let r = browser.join();
        browsed.store(true, Ordering::SeqCst);
        r
    });
    let counters = pipeline.run().unwrap();
    let (window, rows, version) = browser_result.join().unwrap().unwrap_or_else(|e| std::panic::resume_unwind(e));

    // The table equals the pipeline's own panes for that window, top first.
    let mut panes: Vec<(String, i64)> = read_rows(&panes_path)
        .iter()
        .filter(|r| r["window_start"] == window.as_str())
        .map(|r| (r["user_pseudo_id"].as_str().unwrap().to_string(), r["event_count"].as_i64().unwrap()))
        .collect();
    panes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    panes.truncate(10);
    assert_eq!(rows, panes, "the page's top users of {window}");
    assert!(version.contains('@'));

    // /metrics parses, and its counters add up and agree with the run.
    let text = ureq::get(&format!("{base}/metrics")).call().unwrap().into_string().unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let mut values: BTreeMap<String, f64> = BTreeMap::new();
    for s in &scrape.samples {
        if let prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) = s.value {
            *values.entry(s.metric.clone()).or_default() += v;
        }
    }
    let v = |name: &str| values.get(name).copied().unwrap_or_else(|| panic!("{name} in /metrics"));
    assert_eq!(v("runnel_events_in_total"), counters.events_in as f64);
    assert_eq!(v("runnel_events_in_total"), 50_002.0);
    assert_eq!(v("runnel_dead_letters_total"), 2.0);
    assert_eq!(
        v("runnel_events_in_total"),
        v("runnel_elements_total") + v("runnel_dead_letters_total") + v("runnel_events_filtered_total"),
        "events in = out + dead letters + filtered"
    );
    assert_eq!(v("runnel_panes_total"), counters.panes as f64);
    assert_eq!(v("runnel_sink_rows_total"), counters.panes as f64);
    assert_eq!(v("runnel_reloads_total"), 1.0);
    assert_eq!(v("runnel_up"), 0.0, "the run has ended");
    assert!(scrape.samples.iter().any(|s| s.metric == "runnel_stage_seconds" && s.labels.get("stage") == Some("transform")));
    drop(server);
}
