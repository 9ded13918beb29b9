//! # runnel: a streaming pipeline host
//!
//! Click events in (a file, a synthetic stream, Google Cloud Pub/Sub),
//! a per-event transform and a per-key aggregation as WebAssembly plugins,
//! event-time windows and triggers with Apache Beam's semantics, results out.
//!
//! ## Layout
//! One module per stage of an event's way through the host. No module
//! imports one that imports it back (`tests/tests/layout.rs` checks it):
//! types several modules share live in leaf modules (`telemetry`, `batch`).
//!
//! - [`config`]: the pipeline file (TOML), validated with actionable errors;
//! - [`cloud`]: Google Cloud endpoints and credentials, or local emulators;
//! - [`batch`]: the event batch (events packed into one buffer), what
//!   sources produce and plugins read;
//! - [`source`]: where events come from (file, synthetic, Pub/Sub), with
//!   provenance; `source::dedup` counts a Pub/Sub message once however
//!   often it is delivered;
//! - [`ack`]: when an input message may be acknowledged;
//! - [`decode`]: the host's one-pass native read of an event's key, event
//!   time and the fields a transform declared (`decode::Reader`);
//! - [`plugin`]: the wasmtime engine, contract checks, transform and
//!   aggregate callers (the transform caller sends a guest only its declared
//!   fields and applies the edits it answers with), the sandbox (`plugin::sandbox`: per-instance limits,
//!   WASI waits bounded by the call budget, typed limit errors), the
//!   authenticated cache of compiled plugins (`plugin::cache`), the bundled
//!   guests;
//! - [`window`]: assigners, triggers, watermarks, the per-(key, window)
//!   engine and its panes;
//! - [`accumulate`]: running the engine's accumulator operations against an
//!   aggregate (the WebAssembly one, or a native count): `Pending`, the one
//!   engine driver that run, replay, grade and room share;
//! - [`sink`]: stdout table, NDJSON, BigQuery, null;
//! - [`deadletter`]: where bad records go, with a fixed reason code, the
//!   detail and provenance;
//! - [`late_share`]: the share of recent events dropped as late, and the
//!   warning that names what to change;
//! - [`ndjson`]: reading NDJSON files (dead letters, panes, goldens);
//! - [`files`]: the files a pipeline file names, read and opened so that a
//!   wrong one is an error naming it (a plugin only from a regular file of
//!   bounded size, no output to a FIFO), a leaf module;
//! - [`pipeline`]: the driver loop over stages that own their state:
//!   `ingest` (source, size limit, acknowledgements), `transform` (plugin
//!   versions, quarantine, native stand-in), `windowing` (event time
//!   checked, the watermark told, elements admitted or dead-lettered, each
//!   message's hold recorded), `aggregate` (WASM versions or native) and
//!   `output` (sink, closed-window summary); it swaps plugin versions
//!   between batches;
//! - [`status`]: what a running pipeline tells the outside (counters,
//!   versions, reload history);
//! - [`admin`]: the HTTP server beside a running pipeline (status, reloads,
//!   metrics, the dashboard page);
//! - [`telemetry`]: the counters, latency histograms and dead-letter
//!   samples every stage records into (a leaf: it imports no other module);
//! - [`metrics`]: the Prometheus exposition of the status;
//! - [`grade`]: grading workshop exercises by swapping guests;
//! - [`room`]: many participants' plugins side by side on one stream;
//! - [`replay`]: the deterministic harness behind `runnel replay` and the
//!   Beam conformance tests;
//! - [`cmd`]: the command-line commands (`main.rs` only parses arguments),
//!   `cmd::build` among them: plugins from Rust crates and Python folders;
//!   `cmd::beam` hands a pipeline file to the `runnel_beam` package
//!   (beam/ in the repository: this crate's plugin runtime as a Python
//!   extension, running the same file and plugins on Apache Beam).

pub mod accumulate;
pub mod ack;
pub mod admin;
pub mod batch;
pub mod bench;
pub mod cloud;
pub mod cmd;
pub mod config;
pub mod deadletter;
pub mod decode;
pub mod files;
pub mod grade;
pub mod late_share;
pub mod metrics;
pub mod ndjson;
pub mod pipeline;
pub mod plugin;
pub mod replay;
pub mod room;
pub mod sink;
pub mod source;
pub mod status;
pub mod telemetry;
pub mod window;
