//! The admin server beside a running pipeline: health and status are open;
//! uploads and reloads need the token, are size-limited, go through the
//! contract check, and a refused one changes nothing. `runnel reload`
//! (its library half) swaps a plugin in; no event is lost meanwhile.

use runnel::config::PipelineConfig;
use runnel::pipeline::{Overrides, Pipeline};
use runnel::plugin::bundled::{self, built_guest};
use runnel::source::file::FileSource;
use runnel_tests::{count_per_user_window, pane_counts, read_rows, two_days, PacedSource};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TOKEN: &str = "s3cret-admin-token";

fn status(base: &str) -> serde_json::Value {
    ureq::get(&format!("{base}/api/status")).call().unwrap().into_json().unwrap()
}

/// POSTs `body` to `path`; the status code and the JSON answer.
fn post(base: &str, path: &str, token: Option<&str>, body: &[u8]) -> (u16, serde_json::Value) {
    let mut req = ureq::post(&format!("{base}{path}"));
    if let Some(t) = token {
        req = req.set("authorization", &format!("Bearer {t}"));
    }
    let resp = match req.send_bytes(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    (resp.status(), resp.into_json().unwrap())
}

#[test]
fn the_admin_server_guards_changes_and_swaps_uploaded_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let lines = two_days();
    let input = dir.path().join("input.ndjson");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let config_path = runnel_tests::admin_pipeline_file(dir.path(), &input, TOKEN, "max_upload_mib = 1\n");
    let cfg = PipelineConfig::load(&config_path).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let finished = done.clone();
    // The stream goes slowly until the client below is done with it.
    let source = PacedSource::new(FileSource::open(&input).unwrap(), Duration::ZERO, move |_| {
        if !finished.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let mut pipeline = Pipeline::with_overrides(&cfg, Overrides { source: Some(Box::new(source)), ..Default::default() }).unwrap();
    let server = runnel::cmd::run::start_admin(&cfg, None, &pipeline).unwrap().expect("[admin] is configured");
    let addr = server.addr().to_string();
    assert!(addr.starts_with("127.0.0.1:"), "loopback by default: {addr}");
    let base = format!("http://{addr}");
    let weekday = dir.path().join("add-weekday.wasm");
    std::fs::write(&weekday, bundled::find("add-weekday").unwrap()).unwrap();

    let client = {
        let config_path = config_path.clone();
        std::thread::spawn(move || {
            let result = std::panic::catch_unwind(|| {
                assert_eq!(ureq::get(&format!("{base}/healthz")).call().unwrap().into_string().unwrap(), "ok\n");
                let before = status(&base);
                assert!(before["transform"].as_str().unwrap().starts_with("bundled:identity@"), "{before}");
                assert_eq!(before["running"], true);
                let wasm = std::fs::read(&weekday).unwrap();

                // Without the token, or with a wrong one: refused, nothing changes.
                let (code, body) = post(&base, "/api/plugins/transform", None, &wasm);
                assert_eq!(code, 401, "{body}");
                assert!(body["error"].as_str().unwrap().contains("Bearer"), "{body}");
                assert_eq!(post(&base, "/api/plugins/transform", Some("guess"), &wasm).0, 401);
                assert_eq!(post(&base, "/api/reload", None, b"").0, 401);
                let after = status(&base);
                assert_eq!(after["transform"], before["transform"]);
                assert_eq!(after["counters"]["reloads"], 0);
                assert!(after["reloads"].as_array().unwrap().is_empty());

                // Too big, with the token: refused with what to do.
                let (code, body) = post(&base, "/api/plugins/transform", Some(TOKEN), &vec![0u8; 2 << 20]);
                assert_eq!(code, 413, "{body}");
                assert!(body["error"].as_str().unwrap().contains("max_upload_mib"), "{body}");

                // The wrong contract: refused by the pipeline, the old one stays.
                let wrong = std::fs::read(built_guest("wrong-version")).unwrap();
                let (code, body) = post(&base, "/api/plugins/transform", Some(TOKEN), &wrong);
                assert_eq!(code, 422, "{body}");
                assert_eq!(body[0]["outcome"], "refused");
                assert!(body[0]["message"].as_str().unwrap().contains("the running version stays"), "{body}");

                // No plugin files to re-read: bundled plugins only.
                let (code, body) = post(&base, "/api/reload", Some(TOKEN), b"");
                assert_eq!(code, 400, "{body}");

                // `runnel reload --transform add-weekday.wasm`.
                let outcomes = runnel::cmd::reload::run(&runnel::cmd::reload::ReloadOptions {
                    config: config_path,
                    admin: Some(addr),
                    transform: Some(weekday),
                    aggregate: None,
                })
                .unwrap();
                assert_eq!(outcomes.len(), 1);
                assert_eq!(outcomes[0].outcome, runnel::plugin::reload::Outcome::Swapped, "{outcomes:?}");
                let now = status(&base);
                assert!(now["transform"].as_str().unwrap().starts_with("upload:add-weekday.wasm@"), "{now}");
                assert_eq!(now["counters"]["reloads"], 1);
                assert_eq!(now["counters"]["refused_reloads"], 1);
            });
            done.store(true, Ordering::SeqCst);
            result
        })
    };
    let counters = pipeline.run().unwrap();
    if let Err(panic) = client.join().unwrap() {
        std::panic::resume_unwind(panic);
    }
    drop(server);
    assert_eq!(counters.reloads, 1);
    let rows = read_rows(&dir.path().join("panes.ndjson"));
    assert_eq!(pane_counts(&rows), count_per_user_window(&lines, 60_000_000), "no event lost or counted twice");
}

/// Sends raw request bytes; the status line of the answer, if one comes
/// within `wait`.
fn raw(addr: &str, request: &[u8], wait: Duration) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(request).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).ok()?;
    String::from_utf8_lossy(&buf[..n]).lines().next().map(str::to_string)
}

#[test]
fn anonymous_uploads_are_never_held_and_foreign_hosts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.ndjson");
    std::fs::write(&input, two_days().join("\n")).unwrap();
    let config_path = runnel_tests::admin_pipeline_file(dir.path(), &input, TOKEN, "");
    let cfg = PipelineConfig::load(&config_path).unwrap();
    let pipeline = Pipeline::from_config(&cfg).unwrap();
    let server = runnel::cmd::run::start_admin(&cfg, None, &pipeline).unwrap().unwrap();
    let addr = server.addr().to_string();

    // 16 MiB announced, none sent, no token: the answer comes anyway (the
    // server does not wait for, nor hold, an anonymous body).
    let upload = format!("POST /api/plugins/transform HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 16777216\r\n\r\n");
    let answer = raw(&addr, upload.as_bytes(), Duration::from_secs(20)).expect("an answer before the body");
    assert!(answer.contains(" 401"), "{answer}");

    // A page on another site, rebinding its name to loopback, is refused.
    let foreign = raw(&addr, b"GET /api/status HTTP/1.1\r\nHost: attacker.example:9464\r\n\r\n", Duration::from_secs(20));
    assert!(foreign.as_deref().is_some_and(|a| a.contains(" 403")), "{foreign:?}");
    let local = format!("GET /api/status HTTP/1.1\r\nHost: localhost:{}\r\n\r\n", server.addr().port());
    assert!(raw(&addr, local.as_bytes(), Duration::from_secs(20)).unwrap().contains(" 200"));
    assert!(raw(&addr, format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(), Duration::from_secs(20))
        .unwrap()
        .contains(" 200"));
}

/// A pipeline over the bundled events with its admin server started from
/// the file as `runnel run` does, `listen` replacing loopback's port 0.
fn admin_server(dir: &std::path::Path, listen: &str) -> (Pipeline, runnel::admin::AdminServer) {
    let input = dir.join("input.ndjson");
    std::fs::write(&input, two_days().join("\n")).unwrap();
    let config_path = runnel_tests::admin_pipeline_file(dir, &input, TOKEN, "");
    let text = std::fs::read_to_string(&config_path).unwrap().replace("listen = \"127.0.0.1:0\"", &format!("listen = \"{listen}\""));
    std::fs::write(&config_path, text).unwrap();
    let cfg = PipelineConfig::load(&config_path).unwrap();
    let pipeline = Pipeline::from_config(&cfg).unwrap();
    let server = runnel::cmd::run::start_admin(&cfg, None, &pipeline).unwrap().unwrap();
    (pipeline, server)
}

#[test]
fn slow_clients_cannot_hold_the_admin_server() {
    use runnel::admin::{HEADER_TIMEOUT, MAX_CONNECTIONS};
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let (_pipeline, server) = admin_server(dir.path(), "127.0.0.1:0");
    let addr = server.addr().to_string();
    // Every connection the server takes, each with headers it never ends.
    let started = std::time::Instant::now();
    let mut slow: Vec<std::net::TcpStream> = (0..MAX_CONNECTIONS)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n").unwrap();
            s
        })
        .collect();
    // One more is not served while they hold every slot...
    let waiting = raw(&addr, format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(), Duration::from_secs(2));
    assert_eq!(waiting, None, "at most {MAX_CONNECTIONS} connections are served at once");
    // ...and each of them is closed once its headers are overdue.
    for s in &mut slow {
        s.set_read_timeout(Some(HEADER_TIMEOUT + Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).expect("closed (or answered) when its headers are overdue, not left open");
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(n == 0 || answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    assert!(started.elapsed() >= HEADER_TIMEOUT, "not before the header deadline");
    drop(slow);
    let served = raw(&addr, format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(), Duration::from_secs(20));
    assert!(served.is_some_and(|a| a.contains(" 200")), "served again once the slow ones are gone");
}

#[test]
fn beyond_loopback_reading_needs_the_token_too() {
    let dir = tempfile::tempdir().unwrap();
    let (_pipeline, server) = admin_server(dir.path(), "0.0.0.0:0");
    let port = server.addr().port();
    let base = format!("http://127.0.0.1:{port}");
    let code = |path: &str, token: Option<&str>| {
        let mut req = ureq::get(&format!("{base}{path}"));
        if let Some(t) = token {
            req = req.set("authorization", &format!("Bearer {t}"));
        }
        match req.call() {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(code, _)) => code,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(code("/healthz", None), 200, "health stays open (for load balancers)");
    for path in ["/api/status", "/api/events", "/metrics"] {
        assert_eq!(code(path, None), 401, "{path} without the token");
        assert_eq!(code(path, Some("wrong-token-of-some-length")), 401, "{path} with a wrong token");
    }
    assert_eq!(code("/api/status", Some(TOKEN)), 200);
    assert_eq!(code(&format!("/metrics?token={TOKEN}"), None), 200, "a scraper can put the token in the address");
    let refused = ureq::get(&format!("{base}/api/status")).call().unwrap_err();
    let ureq::Error::Status(_, r) = refused else { panic!("{refused}") };
    let text = r.into_string().unwrap();
    assert!(text.contains("?token="), "says how to send the token: {text}");

    // On loopback the same reads are open.
    let dir = tempfile::tempdir().unwrap();
    let (_pipeline, local) = admin_server(dir.path(), "127.0.0.1:0");
    assert_eq!(ureq::get(&format!("http://{}/api/status", local.addr())).call().unwrap().status(), 200);
}

#[test]
fn a_drain_ends_the_input_and_writes_every_open_window() {
    let dir = tempfile::tempdir().unwrap();
    let lines = runnel_tests::flood_it_lines();
    let input = dir.path().join("input.ndjson");
    std::fs::write(&input, lines.join("\n")).unwrap();
    // In-order events and no out-of-orderness: windows close as the stream
    // flows, and at any moment the last minute of each user is still open.
    let config_path = runnel_tests::admin_pipeline_file(dir.path(), &input, TOKEN, "");
    let mut cfg = PipelineConfig::load(&config_path).unwrap();
    cfg.pipeline.batch_size = 500;
    let address = Arc::new(std::sync::OnceLock::<String>::new());
    let (addr, config) = (address.clone(), config_path.clone());
    // The pipeline's own thread asks, before reading its 3rd and 5th batches.
    let source = PacedSource::new(FileSource::open(&input).unwrap(), Duration::ZERO, move |batch| {
        let base = format!("http://{}", addr.get().unwrap());
        if batch == 3 {
            let (code, body) = post(&base, "/api/drain", None, b"");
            assert_eq!(code, 401, "a drain needs the token: {body}");
        }
        if batch == 5 {
            let said = runnel::cmd::drain::run(&config, Some(addr.get().unwrap())).unwrap();
            assert!(said.starts_with("draining"), "{said}");
        }
    });
    let mut pipeline = Pipeline::with_overrides(&cfg, Overrides { source: Some(Box::new(source)), ..Default::default() }).unwrap();
    let server = runnel::cmd::run::start_admin(&cfg, None, &pipeline).unwrap().expect("[admin] is configured");
    address.set(server.addr().to_string()).unwrap();
    let counters = pipeline.run().unwrap();
    drop(server);

    // The run ended after the 5th batch, long before the file's end, and
    // every event it read is in a written pane: the windows still open at
    // the drain fired too.
    assert_eq!(counters.events_in, 5 * 500, "the input ends at the drain, not at the file's end");
    let counted = &lines[..counters.events_in as usize];
    let rows = read_rows(&dir.path().join("panes.ndjson"));
    assert_eq!(pane_counts(&rows), count_per_user_window(counted, 60_000_000), "every event read is in a written pane");
}
