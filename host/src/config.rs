//! The pipeline file (TOML): what to read, how to key, window and trigger,
//! which plugins to run, where results and dead letters go. Parsing is
//! strict (unknown keys are errors) and every error says what to change.
//!
//! See `docs/config.md` for the reference, and `examples/*.toml`.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use crate::replay::Windowing;
use crate::window::watermark::WatermarkSpec;
use crate::window::WindowSpec;
use runnel_event::{Pointer, TimeFormat};

/// A whole pipeline file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    pub source: SourceConfig,
    #[serde(default)]
    pub event: EventConfig,
    #[serde(default)]
    pub transform: Option<PluginConfig>,
    #[serde(default = "default_windowing")]
    pub windowing: Windowing,
    #[serde(default)]
    pub watermark: Option<WatermarkSpec>,
    #[serde(default = "default_aggregate")]
    pub aggregate: PluginConfig,
    #[serde(default)]
    pub sink: SinkConfig,
    #[serde(default)]
    pub dead_letters: DeadLetterConfig,
    #[serde(default)]
    pub pipeline: RunConfig,
    #[serde(default)]
    pub sandbox: SandboxConfig,
    /// The admin server; `runnel run` starts it when this table is present
    /// (or with `--admin ADDR`).
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    #[serde(default)]
    pub cloud: crate::cloud::CloudConfig,
    /// The directory relative paths are resolved against (the file's own).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

fn default_windowing() -> Windowing {
    Windowing {
        window: WindowSpec::Fixed { size_s: 60.0 },
        trigger: crate::window::TriggerSpec::Default,
        accumulation: Default::default(),
        allowed_lateness_s: 0.0,
    }
}

fn default_aggregate() -> PluginConfig {
    PluginConfig { plugin: "count-events".into(), config: PluginSettings::default() }
}

/// Where events come from.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    /// NDJSON, one event per line; `.gz` files are decompressed.
    File { path: PathBuf },
    /// Replays the bundled Flood It sample at `rate` events/s with event
    /// timestamps rewritten to now; `events` caps the total (none = forever).
    Synthetic {
        #[serde(default = "default_rate")]
        rate: f64,
        #[serde(default)]
        events: Option<u64>,
    },
    /// A Pub/Sub pull subscription (see `[cloud]` for project and endpoints).
    Pubsub {
        /// The subscription id, e.g. "dj_subscription_dataflow".
        subscription: String,
        /// The topic id (`runnel setup` creates it and the subscription).
        #[serde(default)]
        topic: Option<String>,
        /// Flow control: unacknowledged messages held at most.
        #[serde(default = "default_max_outstanding_messages")]
        max_outstanding_messages: i64,
        /// Flow control: unacknowledged bytes held at most.
        #[serde(default = "default_max_outstanding_mib")]
        max_outstanding_mib: i64,
        /// `runnel setup`: the subscription's ack deadline.
        #[serde(default = "default_ack_deadline_s")]
        ack_deadline_s: i32,
        /// The client extends held messages' leases by at most this much,
        /// so after a crash they are redelivered within about this long.
        #[serde(default = "default_lease_extension_s")]
        lease_extension_s: u64,
        /// Stop (drain: close all windows, write, acknowledge) once no
        /// message arrived for this long (before the first message: at
        /// least 120 s); unset = run until stopped.
        #[serde(default)]
        stop_when_idle_s: Option<f64>,
        /// Messages with the same value of this attribute are one event
        /// (Beam's `id_label`): a publish the publisher retried is two
        /// messages with two ids but one value. Unset, or a message without
        /// it: the message id decides.
        #[serde(default)]
        id_attribute: Option<String>,
        /// How long an acknowledged message's id is remembered, so that a
        /// redelivery within it is acknowledged without being counted
        /// again (Dataflow keeps about 10 minutes). 0 = only held messages
        /// are recognised.
        #[serde(default = "default_dedup_window_s")]
        dedup_window_s: f64,
        /// At most this many acknowledged ids are remembered (about 48
        /// bytes each); beyond it the oldest go first and the bound is
        /// shorter (`runnel status` shows how long it is).
        #[serde(default = "default_dedup_max_ids")]
        dedup_max_ids: usize,
        /// A file the acknowledged ids are also written to (before their
        /// acknowledgements are sent), so a restart after a crash still
        /// recognises them within `dedup_window_s`. Unset: memory only.
        #[serde(default)]
        dedup_file: Option<PathBuf>,
        /// Streaming pulls opened on the subscription (Google documents
        /// about 10 MB/s per stream); they share one flow-control budget
        /// and one duplicate check.
        #[serde(default = "default_streams")]
        streams: usize,
    },
}

impl SourceConfig {
    /// The lease extension the client library uses: `lease_extension_s`,
    /// clamped to 10..=600 s as the library clamps it (`None`: no leases).
    pub fn lease_extension(&self) -> Option<std::time::Duration> {
        match self {
            SourceConfig::Pubsub { lease_extension_s, .. } => Some(std::time::Duration::from_secs((*lease_extension_s).clamp(10, 600))),
            _ => None,
        }
    }

    /// How long after its last lease a message held by a stopped or crashed
    /// run comes again: the longer of the subscription's ack deadline and
    /// the client's lease extension (`None`: a source without leases). The
    /// one rule behind the hold a restart waits ([`Self::restart_hold`]),
    /// the longest a message is held ([`PipelineConfig::max_hold`]) and the
    /// quiet `runnel status` waits for before it says "drained".
    pub fn redelivery_after(&self) -> Option<std::time::Duration> {
        let SourceConfig::Pubsub { ack_deadline_s, .. } = self else { return None };
        let ack_deadline = std::time::Duration::from_secs(u64::try_from(*ack_deadline_s).unwrap_or(0));
        self.lease_extension().map(|lease| lease.max(ack_deadline))
    }

    /// How long a start keeps the watermark still by default, so that what
    /// an earlier run held finds its windows open when it comes back:
    /// [`Self::redelivery_after`] and 5 s.
    pub fn restart_hold(&self) -> Option<std::time::Duration> {
        self.redelivery_after().map(|d| d + std::time::Duration::from_secs(5))
    }
}

/// The most streaming pulls one source opens (the official clients open 5-10).
pub const MAX_STREAMS: usize = 16;

pub(crate) fn default_dedup_window_s() -> f64 {
    600.0
}
pub(crate) fn default_dedup_max_ids() -> usize {
    1_000_000
}
pub(crate) fn default_streams() -> usize {
    1
}

pub(crate) fn default_max_outstanding_messages() -> i64 {
    50_000
}
pub(crate) fn default_max_outstanding_mib() -> i64 {
    256
}
fn default_ack_deadline_s() -> i32 {
    60
}
pub(crate) fn default_lease_extension_s() -> u64 {
    20
}

fn default_rate() -> f64 {
    1000.0
}

/// How each event is keyed and timed, and how large it may be.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EventConfig {
    /// JSON pointer of the key field.
    #[serde(default = "default_key")]
    pub key: String,
    /// JSON pointer of the event-time field, or `publish_time` (the
    /// message's publish time, Beam's Pub/Sub default), or
    /// `attribute:NAME` (a message attribute, in `time_format`), or `arrival`.
    #[serde(default = "default_time")]
    pub time: String,
    /// `us`, `ms`, `s` or `rfc3339`.
    #[serde(default = "default_time_format")]
    pub time_format: String,
    /// Larger events go to the dead letters as `oversized`.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
}

fn default_key() -> String {
    "/user_pseudo_id".into()
}
fn default_time() -> String {
    "/event_timestamp".into()
}
fn default_time_format() -> String {
    "us".into()
}
fn default_max_bytes() -> usize {
    1 << 20
}

impl Default for EventConfig {
    fn default() -> Self {
        Self { key: default_key(), time: default_time(), time_format: default_time_format(), max_bytes: default_max_bytes() }
    }
}

/// Where an event's time comes from, validated.
#[derive(Clone, Debug, PartialEq)]
pub enum EventTime {
    Field(Pointer, TimeFormat),
    PublishTime,
    /// A message attribute, written in the given format.
    Attribute(String, TimeFormat),
    Arrival,
}

impl EventConfig {
    pub fn key_pointer(&self) -> Result<Pointer> {
        Pointer::parse(&self.key).map_err(|e| anyhow::anyhow!("[event] key: {e}"))
    }

    pub fn event_time(&self) -> Result<EventTime> {
        let format = || {
            TimeFormat::from_name(&self.time_format)
                .with_context(|| format!("[event] time_format {:?} is not one of us, ms, s, rfc3339", self.time_format))
        };
        Ok(match self.time.as_str() {
            "publish_time" => EventTime::PublishTime,
            "arrival" => EventTime::Arrival,
            t if t.starts_with("attribute:") => {
                let name = &t["attribute:".len()..];
                if name.is_empty() {
                    bail!("[event] time = \"attribute:NAME\" needs the attribute's name");
                }
                EventTime::Attribute(name.to_string(), format()?)
            }
            field => EventTime::Field(Pointer::parse(field).map_err(|e| anyhow::anyhow!("[event] time: {e}"))?, format()?),
        })
    }
}

/// A plugin reference and its configuration.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// A bundled plugin's name (`count-events`) or a path to a `.wasm` file.
    pub plugin: String,
    #[serde(default)]
    pub config: PluginSettings,
}

/// A plugin's configuration: a string passed as is, or a TOML table passed
/// as JSON.
#[derive(Clone, Debug, Deserialize, Serialize, Default)]
#[serde(untagged)]
pub enum PluginSettings {
    #[default]
    None,
    Text(String),
    Table(toml::Table),
}

impl PluginSettings {
    /// The configuration string the plugin's `init` receives.
    pub fn to_config_string(&self) -> String {
        match self {
            PluginSettings::None => String::new(),
            PluginSettings::Text(s) => s.clone(),
            PluginSettings::Table(t) => serde_json::to_string(t).expect("a TOML table is JSON-representable"),
        }
    }
}

/// Where panes go: the rows' column names, and the kind of sink with its
/// own settings. Parsed from the flat `[sink]` table (`RawSink`) into this
/// shape, so a BigQuery sink always has its dataset and table, an NDJSON
/// sink its path, and a setting of another kind is refused at load.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(try_from = "RawSink", into = "RawSink")]
pub struct SinkConfig {
    pub kind: SinkKind,
    /// The key's column name in rows.
    pub key_column: String,
    /// The aggregate value's column name in rows.
    pub value_column: String,
}

/// The kinds of sink, each with its settings.
#[derive(Clone, Debug, PartialEq)]
pub enum SinkKind {
    /// A readable table: the `top` keys of every window.
    Stdout { top: usize },
    /// One JSON row per pane, to `path`.
    Ndjson { path: PathBuf },
    /// Rows streamed into a BigQuery table.
    Bigquery(BigQueryTable),
    /// Discards rows (for benchmarks).
    Null,
}

/// A BigQuery sink's table.
#[derive(Clone, Debug, PartialEq)]
pub struct BigQueryTable {
    pub dataset: String,
    pub table: String,
    /// Also write window_start, window_end, timing, pane_index.
    pub window_columns: bool,
    /// The value column's type (`runnel setup` creates the table with it).
    pub value_type: String,
}

impl SinkConfig {
    /// The BigQuery table, if panes go to one.
    pub fn bigquery(&self) -> Option<&BigQueryTable> {
        match &self.kind {
            SinkKind::Bigquery(t) => Some(t),
            _ => None,
        }
    }

    /// The rows' column names.
    pub fn columns(&self) -> crate::sink::Columns {
        crate::sink::Columns { key: self.key_column.clone(), value: self.value_column.clone() }
    }
}

impl Default for SinkConfig {
    fn default() -> Self {
        RawSink::default().try_into().expect("the default sink is valid")
    }
}

/// The `[sink]` table as written: one flat table whatever the type.
#[derive(Clone, Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSink {
    #[serde(rename = "type", default)]
    kind: RawSinkKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    top: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dataset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    table: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window_columns: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_type: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum RawSinkKind {
    #[default]
    Stdout,
    Ndjson,
    Bigquery,
    Null,
}

impl TryFrom<RawSink> for SinkConfig {
    type Error = String;

    fn try_from(raw: RawSink) -> Result<Self, String> {
        let name = match raw.kind {
            RawSinkKind::Stdout => "stdout",
            RawSinkKind::Ndjson => "ndjson",
            RawSinkKind::Bigquery => "bigquery",
            RawSinkKind::Null => "null",
        };
        // A setting of another kind of sink is a mistake worth saying.
        let foreign: Vec<&str> = [
            ("path", raw.path.is_some() && raw.kind != RawSinkKind::Ndjson),
            ("top", raw.top.is_some() && raw.kind != RawSinkKind::Stdout),
            ("dataset", raw.dataset.is_some() && raw.kind != RawSinkKind::Bigquery),
            ("table", raw.table.is_some() && raw.kind != RawSinkKind::Bigquery),
            ("window_columns", raw.window_columns.is_some() && raw.kind != RawSinkKind::Bigquery),
            ("value_type", raw.value_type.is_some() && raw.kind != RawSinkKind::Bigquery),
        ]
        .into_iter()
        .filter_map(|(k, wrong)| wrong.then_some(k))
        .collect();
        if !foreign.is_empty() {
            return Err(format!(
                "[sink] type = \"{name}\" has no {}: remove it, or set the type it belongs to \
                 (path: ndjson; top: stdout; dataset, table, window_columns, value_type: bigquery)",
                foreign.join(", ")
            ));
        }
        let kind = match raw.kind {
            RawSinkKind::Stdout => SinkKind::Stdout { top: raw.top.unwrap_or(5) },
            RawSinkKind::Ndjson => {
                SinkKind::Ndjson { path: raw.path.ok_or("[sink] type = \"ndjson\" needs a path, e.g. path = \"out/panes.ndjson\"")? }
            }
            RawSinkKind::Bigquery => match (raw.dataset, raw.table) {
                (Some(dataset), Some(table)) => SinkKind::Bigquery(BigQueryTable {
                    dataset,
                    table,
                    window_columns: raw.window_columns.unwrap_or(false),
                    value_type: raw.value_type.unwrap_or_else(|| "INTEGER".into()),
                }),
                _ => {
                    return Err("[sink] type = \"bigquery\" needs dataset and table, e.g. dataset = \"data_journey\", \
                                table = \"dataflow\""
                        .into())
                }
            },
            RawSinkKind::Null => SinkKind::Null,
        };
        Ok(SinkConfig {
            kind,
            key_column: raw.key_column.unwrap_or_else(|| "user_pseudo_id".into()),
            value_column: raw.value_column.unwrap_or_else(|| "event_count".into()),
        })
    }
}

impl From<SinkConfig> for RawSink {
    fn from(s: SinkConfig) -> Self {
        let mut raw = RawSink { key_column: Some(s.key_column), value_column: Some(s.value_column), ..Default::default() };
        match s.kind {
            SinkKind::Stdout { top } => raw.top = Some(top),
            SinkKind::Ndjson { path } => {
                raw.kind = RawSinkKind::Ndjson;
                raw.path = Some(path);
            }
            SinkKind::Bigquery(t) => {
                raw.kind = RawSinkKind::Bigquery;
                raw.dataset = Some(t.dataset);
                raw.table = Some(t.table);
                raw.window_columns = Some(t.window_columns);
                raw.value_type = Some(t.value_type);
            }
            SinkKind::Null => raw.kind = RawSinkKind::Null,
        }
        raw
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// The NDJSON file every dead letter is written to (`runnel dlq replay`
    /// reads it).
    #[serde(default = "default_dead_letter_path")]
    pub path: PathBuf,
    /// Also publish each dead letter to this Pub/Sub topic (see `[cloud]`);
    /// publishing is confirmed before any input is acknowledged.
    #[serde(default)]
    pub topic: Option<String>,
}

fn default_dead_letter_path() -> PathBuf {
    "dead-letters.ndjson".into()
}

impl Default for DeadLetterConfig {
    fn default() -> Self {
        Self { path: default_dead_letter_path(), topic: None }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Events per plugin call.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
}

fn default_batch_size() -> usize {
    256
}

impl Default for RunConfig {
    fn default() -> Self {
        Self { batch_size: default_batch_size() }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    /// Wall-clock budget of one plugin call (one batch).
    #[serde(default = "default_call_timeout_ms")]
    pub call_timeout_ms: u64,
    /// Wall-clock budget for starting a plugin instance (instantiation and
    /// its `init`), apart from a batch's: a Python plugin starts an
    /// interpreter there.
    #[serde(default = "default_start_timeout_ms")]
    pub start_timeout_ms: u64,
    /// Memory one plugin instance may use.
    #[serde(default = "default_max_memory_mib")]
    pub max_memory_mib: usize,
    /// After this many batches in a row in which a transform version failed
    /// (trapped, ran out of time or memory), it is quarantined and the
    /// version before it restored.
    #[serde(default = "default_quarantine_after")]
    pub quarantine_after: u32,
    /// Watch the plugin files and hot-reload a changed one.
    #[serde(default = "default_true")]
    pub watch_plugins: bool,
    /// How often the plugin files are looked at.
    #[serde(default = "default_watch_interval_ms")]
    pub watch_interval_ms: u64,
    /// Keep precompiled plugins on disk (`cache_dir`), so a restart or a
    /// reload of a known version skips compilation.
    #[serde(default = "default_true")]
    pub cache: bool,
    /// Where precompiled plugins go (default: `RUNNEL_CACHE_DIR`, else the
    /// user's cache directory + `/runnel`).
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
}

fn default_quarantine_after() -> u32 {
    5
}
fn default_true() -> bool {
    true
}
fn default_watch_interval_ms() -> u64 {
    250
}

fn default_call_timeout_ms() -> u64 {
    1000
}
fn default_start_timeout_ms() -> u64 {
    10_000
}
fn default_max_memory_mib() -> usize {
    64
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            call_timeout_ms: default_call_timeout_ms(),
            start_timeout_ms: default_start_timeout_ms(),
            max_memory_mib: default_max_memory_mib(),
            quarantine_after: default_quarantine_after(),
            watch_plugins: true,
            watch_interval_ms: default_watch_interval_ms(),
            cache: true,
            cache_dir: None,
        }
    }
}

impl SandboxConfig {
    pub fn limits(&self) -> crate::plugin::runtime::Limits {
        crate::plugin::runtime::Limits {
            call_timeout: std::time::Duration::from_millis(self.call_timeout_ms),
            start_timeout: std::time::Duration::from_millis(self.start_timeout_ms),
            max_memory_bytes: self.max_memory_mib << 20,
        }
    }

    /// The directory for precompiled plugins, if caching on disk.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        if !self.cache {
            return None;
        }
        self.cache_dir.clone().or_else(crate::plugin::runtime::default_cache_dir)
    }
}

/// The admin HTTP server of `runnel run` (health, status, reloads).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address to listen on; loopback unless you mean otherwise.
    #[serde(default = "default_admin_listen")]
    pub listen: String,
    /// Bearer token that requests changing the pipeline (reload, upload)
    /// must carry; `RUNNEL_ADMIN_TOKEN` sets it too. Without one, such
    /// requests are refused.
    #[serde(default)]
    pub token: Option<String>,
    /// Largest plugin upload accepted.
    #[serde(default = "default_max_upload_mib")]
    pub max_upload_mib: usize,
    /// Host names requests may be addressed to besides loopback ones and
    /// the listen address (a web page on another site cannot read the
    /// status through DNS rebinding).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

fn default_admin_listen() -> String {
    "127.0.0.1:9464".into()
}
fn default_max_upload_mib() -> usize {
    16
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self { listen: default_admin_listen(), token: None, max_upload_mib: default_max_upload_mib(), allowed_hosts: Vec::new() }
    }
}

impl AdminConfig {
    /// The token from the file, else from `RUNNEL_ADMIN_TOKEN`.
    pub fn token(&self) -> Option<String> {
        self.token.clone().or_else(|| std::env::var("RUNNEL_ADMIN_TOKEN").ok()).filter(|t| !t.is_empty())
    }
}

impl PipelineConfig {
    /// Reads and validates a pipeline file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read pipeline file {}: check the path (examples/ has working ones)", path.display()))?;
        let mut cfg = Self::parse(&text).with_context(|| format!("in pipeline file {}", path.display()))?;
        cfg.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(cfg)
    }

    /// Parses and validates pipeline TOML.
    pub fn parse(text: &str) -> Result<Self> {
        let cfg: Self = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        self.event.key_pointer()?;
        self.event.event_time()?;
        self.windowing.engine_config().map_err(|e| anyhow::anyhow!("[windowing]: {e}"))?;
        if let Some(w) = &self.watermark {
            crate::window::watermark::WatermarkEstimator::new(w).map_err(|e| anyhow::anyhow!("[watermark]: {e}"))?;
        }
        if self.pipeline.batch_size == 0 || self.pipeline.batch_size > 65_536 {
            bail!("[pipeline] batch_size must be between 1 and 65536, got {}", self.pipeline.batch_size);
        }
        if self.event.max_bytes == 0 {
            bail!("[event] max_bytes must be positive");
        }
        if self.sandbox.call_timeout_ms == 0 || self.sandbox.start_timeout_ms == 0 || self.sandbox.max_memory_mib == 0 {
            bail!("[sandbox] call_timeout_ms, start_timeout_ms and max_memory_mib must be positive");
        }
        if self.sandbox.quarantine_after == 0 || self.sandbox.watch_interval_ms == 0 {
            bail!("[sandbox] quarantine_after and watch_interval_ms must be positive");
        }
        if let Some(a) = &self.admin {
            a.listen
                .parse::<std::net::SocketAddr>()
                .map_err(|_| anyhow::anyhow!("[admin] listen must be HOST:PORT, e.g. \"127.0.0.1:9464\", got {:?}", a.listen))?;
        }
        if let SourceConfig::Synthetic { rate, .. } = &self.source {
            if !(rate.is_finite() && *rate > 0.0) {
                bail!("[source] rate must be a positive number of events per second, got {rate}");
            }
        }
        if let SourceConfig::Pubsub { dedup_window_s, streams, id_attribute, .. } = &self.source {
            if !(dedup_window_s.is_finite() && *dedup_window_s >= 0.0) {
                bail!("[source] dedup_window_s must be a number of seconds, 0 or more (600 is Dataflow's), got {dedup_window_s}");
            }
            if !(1..=MAX_STREAMS).contains(streams) {
                bail!("[source] streams must be between 1 and {MAX_STREAMS} streaming pulls, got {streams}");
            }
            if id_attribute.as_deref().is_some_and(str::is_empty) {
                bail!(
                    "[source] id_attribute must name a message attribute (e.g. \"runnel_id\", what `runnel publish` sets), or be left out"
                );
            }
        }
        if matches!(self.source, SourceConfig::Pubsub { .. }) && self.windowing.window == WindowSpec::Global {
            bail!(
                "[windowing] window = {{ type = \"global\" }} never closes, so a Pub/Sub message in it could never be \
                 acknowledged (runnel acknowledges a message once every window it is in is written): the subscription \
                 would stall at max_outstanding_messages. Use fixed, sliding or session windows with Pub/Sub"
            );
        }
        Ok(())
    }

    /// How long a Pub/Sub message may be held before its windows retire and
    /// it is acknowledged (`None`: no bound, for sessions): the widest
    /// window, the allowed lateness, how far the watermark trails, how long
    /// a quiet input waits before it advances, and the start-up hold. The
    /// client library's lease of a held message is set to outlast it, so a
    /// message is never redelivered while still held.
    pub fn max_hold(&self) -> Option<std::time::Duration> {
        let window = match self.windowing.window {
            WindowSpec::Fixed { size_s } | WindowSpec::Sliding { size_s, .. } => size_s,
            WindowSpec::Session { .. } | WindowSpec::Global => return None,
        };
        let (bound, idle, hold) = match self.watermark_spec() {
            WatermarkSpec::Bounded { max_out_of_orderness_s, idle_timeout_s, startup_hold_s, .. } => {
                (max_out_of_orderness_s, idle_timeout_s.unwrap_or(0.0), startup_hold_s.unwrap_or(0.0))
            }
            WatermarkSpec::EndOfInput => return None,
        };
        let redelivery = self.source.restart_hold().map_or(0.0, |d| d.as_secs_f64());
        let seconds = window + self.windowing.allowed_lateness_s + bound + idle + hold.max(redelivery);
        Some(std::time::Duration::from_secs_f64(seconds.max(0.0)))
    }

    /// The watermark strategy: configured, or the source's natural one
    /// (exact end-of-input for files, a bounded estimate for live sources).
    pub fn watermark_spec(&self) -> WatermarkSpec {
        self.watermark.clone().unwrap_or(match self.source {
            SourceConfig::File { .. } => WatermarkSpec::EndOfInput,
            SourceConfig::Synthetic { .. } | SourceConfig::Pubsub { .. } => WatermarkSpec::default(),
        })
    }

    /// What decides lateness in this pipeline, for the warning raised when
    /// many events are dropped as late (see [`crate::late_share`]).
    pub fn lateness_advice(&self) -> String {
        let bound = match self.watermark_spec() {
            WatermarkSpec::Bounded { max_out_of_orderness_s, .. } => format!("{max_out_of_orderness_s} s"),
            WatermarkSpec::EndOfInput => "end of input".into(),
        };
        let settings = format!(
            "raise [watermark] max_out_of_orderness_s (now {bound}) or [windowing] allowed_lateness_s (now {} s)",
            self.windowing.allowed_lateness_s
        );
        if self.event.time.starts_with('/') {
            format!(
                "event time comes from the events ([event] time = \"{}\"); if they are replayed faster than they \
                 happened or out of order, window in publish time ([event] time = \"publish_time\"), or {settings}",
                self.event.time
            )
        } else {
            settings
        }
    }

    /// Resolves a path from the file relative to the file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redelivery_bound_is_the_longer_of_ack_deadline_and_the_lease_the_client_really_uses() {
        let pubsub = |ack_deadline_s: i32, lease_extension_s: u64| {
            let text = format!(
                "[source]\ntype = \"pubsub\"\nsubscription = \"s\"\nack_deadline_s = {ack_deadline_s}\nlease_extension_s = {lease_extension_s}\n"
            );
            PipelineConfig::parse(&text).unwrap().source
        };
        let secs = |d: Option<std::time::Duration>| d.map(|d| d.as_secs());
        assert_eq!(secs(pubsub(60, 20).redelivery_after()), Some(60), "the ack deadline is longer");
        assert_eq!(secs(pubsub(10, 30).redelivery_after()), Some(30), "the lease extension is longer");
        assert_eq!(secs(pubsub(5, 1).lease_extension()), Some(10), "the client extends by 10 s at least");
        assert_eq!(secs(pubsub(5, 1).redelivery_after()), Some(10));
        assert_eq!(secs(pubsub(10, 5000).lease_extension()), Some(600), "and by 600 s at most");
        assert_eq!(secs(pubsub(10, 20).restart_hold()), Some(25));
        assert_eq!(SourceConfig::File { path: "x".into() }.redelivery_after(), None);
    }

    #[test]
    fn exactly_once_settings_are_checked_with_what_to_write() {
        let pubsub = |extra: &str| PipelineConfig::parse(&format!("[source]\ntype = \"pubsub\"\nsubscription = \"s\"\n{extra}\n"));
        let defaults = pubsub("").unwrap();
        let SourceConfig::Pubsub { dedup_window_s, dedup_max_ids, streams, id_attribute, dedup_file, .. } = &defaults.source else {
            unreachable!()
        };
        assert_eq!((*dedup_window_s, *dedup_max_ids, *streams), (600.0, 1_000_000, 1), "Dataflow's ten minutes, one stream");
        assert!(id_attribute.is_none() && dedup_file.is_none());
        for (extra, says) in [
            ("streams = 0", "streams must be between 1 and 16"),
            ("streams = 17", "streams must be between 1 and 16"),
            ("dedup_window_s = -1", "dedup_window_s must be a number of seconds"),
            ("id_attribute = \"\"", "id_attribute must name a message attribute"),
        ] {
            let e = format!("{:#}", pubsub(extra).unwrap_err());
            assert!(e.contains(says), "{extra}: {e}");
        }
        assert!(pubsub("streams = 4\nid_attribute = \"runnel_id\"\ndedup_window_s = 0").is_ok());
    }

    #[test]
    fn each_sink_kind_carries_its_own_settings_and_refuses_others() {
        let file = "[source]\ntype = \"file\"\npath = \"x.ndjson\"\n[sink]\n";
        let bq = PipelineConfig::parse(&format!("{file}type = \"bigquery\"\ndataset = \"d\"\ntable = \"t\"\n")).unwrap();
        let t = bq.sink.bigquery().expect("a BigQuery sink");
        assert_eq!((t.dataset.as_str(), t.table.as_str(), t.window_columns, t.value_type.as_str()), ("d", "t", false, "INTEGER"));
        let nd = PipelineConfig::parse(&format!("{file}type = \"ndjson\"\npath = \"o.ndjson\"\nkey_column = \"k\"\n")).unwrap();
        assert_eq!(nd.sink.kind, SinkKind::Ndjson { path: "o.ndjson".into() });
        assert_eq!(nd.sink.key_column, "k");
        assert_eq!(PipelineConfig::parse(file).unwrap().sink.kind, SinkKind::Stdout { top: 5 });
        for (extra, says) in [
            ("type = \"bigquery\"\ndataset = \"d\"\ntable = \"t\"\npath = \"o\"\n", "type = \"bigquery\" has no path"),
            ("type = \"ndjson\"\npath = \"o\"\ntop = 3\n", "type = \"ndjson\" has no top"),
            ("type = \"null\"\ndataset = \"d\"\n", "type = \"null\" has no dataset"),
            ("type = \"bigquery\"\ndataset = \"d\"\n", "needs dataset and table"),
            ("type = \"ndjson\"\n", "needs a path"),
        ] {
            let e = format!("{:#}", PipelineConfig::parse(&format!("{file}{extra}")).unwrap_err());
            assert!(e.contains(says), "{extra}: {e}");
        }
        // Written back as the flat table it was read from.
        let back: SinkConfig = toml::from_str(&toml::to_string(&bq.sink).unwrap()).unwrap();
        assert_eq!(back, bq.sink);
    }

    #[test]
    fn minimal_file_uses_workshop_defaults() {
        let cfg = PipelineConfig::parse("[source]\ntype = \"file\"\npath = \"x.ndjson\"\n").unwrap();
        assert_eq!(cfg.event.key, "/user_pseudo_id");
        assert_eq!(cfg.aggregate.plugin, "count-events");
        assert_eq!(cfg.sink.value_column, "event_count");
        assert_eq!(cfg.watermark_spec(), WatermarkSpec::EndOfInput);
    }

    #[test]
    fn a_held_message_is_leased_for_as_long_as_its_windows_can_hold_it() {
        let pubsub = "[source]\ntype = \"pubsub\"\nsubscription = \"s\"\nack_deadline_s = 60\nlease_extension_s = 20\n";
        let cfg = PipelineConfig::parse(&format!(
            "{pubsub}[windowing]\nwindow = {{ type = \"fixed\", size_s = 3600 }}\nallowed_lateness_s = 1800\n\
             [watermark]\nmode = \"bounded\"\nmax_out_of_orderness_s = 600\nidle_timeout_s = 30\n"
        ))
        .unwrap();
        // 3600 + 1800 + 600 + 30 + (60 + 5): past the client's default hour.
        assert_eq!(cfg.max_hold(), Some(std::time::Duration::from_secs(6095)));
        let sessions = PipelineConfig::parse(&format!("{pubsub}[windowing]\nwindow = {{ type = \"session\", gap_s = 30 }}\n")).unwrap();
        assert_eq!(sessions.max_hold(), None, "sessions can grow without bound");
        let e = PipelineConfig::parse(&format!("{pubsub}[windowing]\nwindow = {{ type = \"global\" }}\n")).unwrap_err().to_string();
        assert!(e.contains("never closes"), "{e}");
    }

    #[test]
    fn errors_name_the_problem() {
        let e = PipelineConfig::parse("[source]\ntype = \"kafka\"\n").unwrap_err().to_string();
        assert!(e.contains("kafka"), "{e}");
        let e =
            PipelineConfig::parse("[source]\ntype = \"file\"\npath = \"x\"\n[event]\ntime_format = \"hours\"\n").unwrap_err().to_string();
        assert!(e.contains("time_format"), "{e}");
        let e = PipelineConfig::parse("[source]\ntype = \"file\"\npath = \"x\"\n[windowing]\nwindow = { type = \"fixed\", size_s = -1 }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("size_s"), "{e}");
        let e = PipelineConfig::parse("[source]\ntype = \"file\"\npath = \"x\"\n[sourc]\n").unwrap_err().to_string();
        assert!(e.contains("sourc"), "{e}");
    }

    #[test]
    fn plugin_tables_become_json() {
        let cfg = PipelineConfig::parse(
            "[source]\ntype = \"file\"\npath = \"x\"\n[transform]\nplugin = \"filter-events\"\nconfig = { event_names = [\"a\"] }\n",
        )
        .unwrap();
        assert_eq!(cfg.transform.unwrap().config.to_config_string(), r#"{"event_names":["a"]}"#);
    }
}
