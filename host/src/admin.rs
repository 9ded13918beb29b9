//! The admin HTTP server beside a running pipeline (axum, on its own thread
//! and runtime, off the event path).
//!
//! | request | what it does | token |
//! |---|---|---|
//! | `GET /` | the dashboard: top users of each closed minute, throughput, watermark, plugins, dead letters | no |
//! | `GET /healthz` | `ok` while the server runs | no |
//! | `GET /metrics` | Prometheus text format | no |
//! | `GET /api/status` | counters, plugin versions, reload history, recent windows and dead letters (JSON) | no |
//! | `GET /api/events` | the status once a second (server-sent events) | no |
//! | `POST /api/reload[?kind=transform\|aggregate]` | re-reads the pipeline file's plugin files and swaps in changed ones | yes |
//! | `POST /api/plugins/{transform\|aggregate}` | body: a `.wasm`; checks it and swaps it in | yes |
//! | `POST /api/drain` | ends the input: every open window fires and is written, then the run exits | yes |
//!
//! Safe by default: it listens on loopback unless configured otherwise, and
//! a request that changes the pipeline must carry `Authorization: Bearer
//! TOKEN` (`[admin] token` or `RUNNEL_ADMIN_TOKEN`); without a configured
//! token such requests are refused. Uploads are limited in size and go
//! through the same contract check and smoke call as any reload; a refused
//! one changes nothing. Against abuse:
//! - the token is checked before an upload's body is read: an anonymous
//!   client's body is never held (it is dropped as it comes, for at most a
//!   few seconds), and an authorised one must arrive within [`BODY_TIMEOUT`];
//! - at most [`MAX_CONNECTIONS`] connections are served at once, and a
//!   request's headers must arrive within [`HEADER_TIMEOUT`];
//! - the `Host` header must name loopback, the listen address, or one of
//!   `[admin] allowed_hosts` (a web page elsewhere cannot read the status
//!   through DNS rebinding);
//! - listening beyond loopback, `/api/*` and `/metrics` need the token too
//!   (as the bearer header, or `?token=` for the dashboard's event stream),
//!   and the start warns about it, and about a token under 16 characters.

use anyhow::{Context, Result};
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::plugin::contract::Kind;
use crate::plugin::reload::{Outcome, ReloadHandle, ReloadOutcome};
use crate::plugin::PluginSource;
use crate::status::LiveStatus;

/// How long a reload request waits for the pipeline to swap or refuse.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 64;
/// A request's headers must arrive within this.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// An upload's body must arrive within this.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an unauthorised upload's body is read (and dropped) before the answer.
const DISCARD_TIMEOUT: Duration = Duration::from_secs(3);
/// Shorter tokens are warned about at start.
const SHORT_TOKEN: usize = 16;

/// What the server needs from the pipeline.
pub struct AdminContext {
    pub status: LiveStatus,
    pub reload: ReloadHandle,
    /// The pipeline file's plugin files (re-read by `POST /api/reload`).
    pub files: Vec<(Kind, PathBuf)>,
    pub token: Option<String>,
    pub max_upload_bytes: usize,
    /// Host names accepted in `Host` besides loopback and the listen address.
    pub allowed_hosts: Vec<String>,
    /// Set by `POST /api/drain` (see `Pipeline::drain_handle`).
    pub drain: Arc<AtomicBool>,
}

/// A running admin server; dropping it stops it.
pub struct AdminServer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AdminServer {
    /// Binds `listen` (`HOST:PORT`; port 0 picks a free one) and serves.
    pub fn start(listen: &str, ctx: AdminContext) -> Result<Self> {
        let listener = std::net::TcpListener::bind(listen)
            .with_context(|| format!("cannot listen on {listen} for the admin server: pick another [admin] listen address or port"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let exposed = !addr.ip().is_loopback();
        if exposed {
            eprintln!(
                "warning: the admin server listens on {addr}, beyond loopback: anyone who can reach it and holds \
                 the token can change the pipeline; /api/* and /metrics need the token too"
            );
        }
        if ctx.token.as_ref().is_some_and(|t| t.len() < SHORT_TOKEN) {
            eprintln!("warning: the admin token is shorter than {SHORT_TOKEN} characters: use a longer, random one");
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let guard = Guard { exposed, hosts: accepted_hosts(addr, &ctx.allowed_hosts) };
        let app = router(Arc::new(ctx), guard);
        let thread = std::thread::Builder::new()
            .name("runnel-admin".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
                // On shutdown the serving future is dropped, and with the
                // runtime every connection task (an open event stream too).
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("a bound listener");
                    tokio::select! {
                        _ = serve(listener, app) => {}
                        _ = rx => {}
                    }
                });
            })
            .context("cannot start the admin server thread")?;
        Ok(Self { addr, shutdown: Some(tx), thread: Some(thread) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves connections: at most [`MAX_CONNECTIONS`] at once, each with a
/// deadline for its request headers (axum's own `serve` has neither).
async fn serve(listener: tokio::net::TcpListener, app: Router) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = permits.clone().acquire_owned().await.expect("the semaphore is never closed");
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "the admin server could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
            drop(permit);
        });
    }
}

type Ctx = Arc<AdminContext>;

/// What every request is checked against before it is routed.
#[derive(Clone)]
struct Guard {
    /// Listening beyond loopback: reads need the token too.
    exposed: bool,
    /// Accepted `Host` names (lowercase, without port).
    hosts: Vec<String>,
}

fn accepted_hosts(addr: SocketAddr, extra: &[String]) -> Vec<String> {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "[::1]", "::1"].iter().map(|h| h.to_string()).collect();
    hosts.push(match addr.ip() {
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    });
    hosts.extend(extra.iter().map(|h| h.to_ascii_lowercase()));
    hosts
}

/// The host name of a `Host` header value, without its port.
fn host_name(value: &str) -> String {
    let value = value.trim().to_ascii_lowercase();
    if value.starts_with('[') {
        return value.split(']').next().map(|h| format!("{h}]")).unwrap_or(value);
    }
    value.rsplit_once(':').map(|(h, _)| h.to_string()).unwrap_or(value)
}

fn router(ctx: Ctx, guard: Guard) -> Router {
    let checked = ctx.clone();
    Router::new()
        .route("/", get(|| async { axum::response::Html(DASHBOARD) }))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/api/status", get(status))
        .route("/api/events", get(events))
        .route("/api/reload", post(reload))
        .route("/api/plugins/{kind}", post(upload))
        .route("/api/drain", post(drain))
        .layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
            let (ctx, guard) = (checked.clone(), guard.clone());
            async move {
                let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).map(host_name);
                if !host.as_ref().is_some_and(|h| guard.hosts.contains(h)) {
                    return error(
                        StatusCode::FORBIDDEN,
                        "this Host is not one the admin server answers to: use its address, or add the name to [admin] allowed_hosts",
                    );
                }
                let path = req.uri().path();
                if guard.exposed && (path.starts_with("/api/") || path == "/metrics") {
                    let query_token = req
                        .uri()
                        .query()
                        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")).map(|t| format!("Bearer {t}")));
                    let mut headers = req.headers().clone();
                    if let (None, Some(t)) = (headers.get(header::AUTHORIZATION), query_token) {
                        if let Ok(v) = t.parse() {
                            headers.insert(header::AUTHORIZATION, v);
                        }
                    }
                    if headers.get(header::AUTHORIZATION).is_none() && ctx.token.is_some() {
                        return error(
                            StatusCode::UNAUTHORIZED,
                            "the admin server listens beyond loopback, so reading it needs the token too: send \
                             `Authorization: Bearer TOKEN`, or add ?token=TOKEN to the address",
                        );
                    }
                    if let Err(r) = authorize(&ctx, &headers) {
                        return *r;
                    }
                }
                next.run(req).await
            }
        }))
        .with_state(ctx)
}

/// An error as JSON: `{"error": "..."}`.
fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (code, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

/// The dashboard page: one file, no external assets (works offline).
const DASHBOARD: &str = include_str!("../assets/dashboard.html");

async fn status(State(ctx): State<Ctx>) -> Response {
    Json(ctx.status.snapshot()).into_response()
}

async fn metrics(State(ctx): State<Ctx>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], crate::metrics::render(&ctx.status.snapshot())).into_response()
}

/// The status once a second, as server-sent events.
async fn events(State(ctx): State<Ctx>) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let ticks = tokio::time::interval(Duration::from_secs(1));
    let stream = futures_util::stream::unfold((ctx, ticks), |(ctx, mut ticks)| async move {
        ticks.tick().await;
        let event = Event::default().json_data(ctx.status.snapshot()).unwrap_or_default();
        Some((Ok::<_, std::convert::Infallible>(event), (ctx, ticks)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// Refuses a request that would change the pipeline without the token.
fn authorize(ctx: &AdminContext, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(token) = &ctx.token else {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "changing the pipeline over HTTP is off: set [admin] token in the pipeline file or RUNNEL_ADMIN_TOKEN",
        )));
    };
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if constant_time_eq(g.as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => Err(Box::new(error(StatusCode::UNAUTHORIZED, "wrong admin token"))),
        None => Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "this request changes the pipeline: send `Authorization: Bearer TOKEN` (runnel reload does, from RUNNEL_ADMIN_TOKEN)",
        ))),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn parse_kind(kind: &str) -> Option<Kind> {
    kind.parse().ok()
}

/// Sends a version to the pipeline and waits for its verdict.
async fn swap(ctx: &AdminContext, kind: Kind, source: PluginSource) -> Result<ReloadOutcome, Response> {
    let reply = ctx.reload.request_with_reply(kind, source);
    tokio::task::spawn_blocking(move || reply.recv_timeout(REPLY_TIMEOUT))
        .await
        .expect("the waiting task does not panic")
        .map_err(|_| error(StatusCode::SERVICE_UNAVAILABLE, "the pipeline did not answer: it has ended, or is stalled"))
}

fn outcome_response(outcomes: Vec<ReloadOutcome>) -> Response {
    let refused = outcomes.iter().any(|o| o.outcome == Outcome::Refused);
    let code = if refused { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    (code, Json(outcomes)).into_response()
}

/// Asks the pipeline to drain; it does so between batches, and exits.
async fn drain(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&ctx, &headers) {
        return *r;
    }
    let already = ctx.drain.swap(true, Ordering::SeqCst);
    let message = if already { "already draining" } else { "draining: every open window fires and is written, then the run exits" };
    (StatusCode::ACCEPTED, Json(serde_json::json!({ "draining": true, "message": message }))).into_response()
}

#[derive(Deserialize)]
struct ReloadQuery {
    kind: Option<String>,
}

async fn reload(State(ctx): State<Ctx>, headers: HeaderMap, Query(q): Query<ReloadQuery>) -> Response {
    if let Err(r) = authorize(&ctx, &headers) {
        return *r;
    }
    let only = match q.kind.as_deref().map(|k| parse_kind(k).ok_or(k)) {
        None => None,
        Some(Ok(k)) => Some(k),
        Some(Err(k)) => return error(StatusCode::BAD_REQUEST, format!("no plugin kind {k:?}: use transform or aggregate")),
    };
    let files: Vec<_> = ctx.files.iter().filter(|(k, _)| only.is_none_or(|o| o == *k)).cloned().collect();
    if files.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "this pipeline has no plugin files to re-read (it runs bundled plugins): upload a .wasm with `runnel reload --transform FILE` or `--aggregate FILE`",
        );
    }
    let mut outcomes = Vec::new();
    for (kind, path) in files {
        let source = match PluginSource::from_file(&path) {
            Ok(s) => s,
            Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, format!("{e:#}")),
        };
        match swap(&ctx, kind, source).await {
            Ok(o) => outcomes.push(o),
            Err(r) => return r,
        }
    }
    outcome_response(outcomes)
}

/// Reads and drops up to `limit` bytes of a body.
async fn discard(body: Body, limit: usize) {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut seen = 0usize;
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len();
        if seen > limit {
            return;
        }
    }
}

/// The body if it fits in `limit` bytes. A larger one is still read to its
/// end (up to a bound) and thrown away, so the client gets the answer
/// instead of a connection closed under it.
async fn read_limited(body: Body, limit: usize) -> Option<Vec<u8>> {
    use futures_util::StreamExt;
    let drain_bound = limit.saturating_mul(4).max(64 << 20);
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.ok()?;
        seen += chunk.len();
        if seen <= limit {
            out.extend_from_slice(&chunk);
        } else if seen > drain_bound {
            return None;
        }
    }
    (seen <= limit).then_some(out)
}

async fn upload(State(ctx): State<Ctx>, headers: HeaderMap, UrlPath(kind): UrlPath<String>, body: Body) -> Response {
    // The token first: an anonymous client's body is never held. It is
    // read and thrown away for a few seconds, up to the upload limit, so a
    // client still sending gets the answer rather than a broken pipe; then
    // the answer goes out whatever is left.
    if let Err(r) = authorize(&ctx, &headers) {
        let _ = tokio::time::timeout(DISCARD_TIMEOUT, discard(body, ctx.max_upload_bytes)).await;
        return *r;
    }
    // An authorised body is read (or, past the limit, drained) before the
    // answer, so a client still sending is not cut off with a broken pipe.
    let Ok(bytes) = tokio::time::timeout(BODY_TIMEOUT, read_limited(body, ctx.max_upload_bytes)).await else {
        return error(StatusCode::REQUEST_TIMEOUT, format!("the upload did not arrive within {} s", BODY_TIMEOUT.as_secs()));
    };
    let Some(kind) = parse_kind(&kind) else {
        return error(StatusCode::NOT_FOUND, format!("no plugin kind {kind:?}: POST to /api/plugins/transform or /api/plugins/aggregate"));
    };
    let Some(bytes) = bytes else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the upload is larger than the limit of {} MiB ([admin] max_upload_mib); plugins built with the guest profile are far smaller",
                ctx.max_upload_bytes >> 20
            ),
        );
    };
    let name =
        headers.get("x-plugin-name").and_then(|v| v.to_str().ok()).filter(|n| !n.is_empty() && n.len() <= 200).unwrap_or("plugin.wasm");
    let source = PluginSource::from_bytes(format!("upload:{name}"), bytes);
    match swap(&ctx, kind, source).await {
        Ok(o) => outcome_response(vec![o]),
        Err(r) => r,
    }
}
