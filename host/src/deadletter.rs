//! Dead letters: where bad records go, with why and where they came from.
//!
//! One NDJSON record per refused event:
//! `{"time", "stage", "code", "reason", "source", "plugin", "payload"}` —
//! `stage` is where it was refused (`decode`, `transform`, `window`,
//! `aggregate`, `sink`), `code` a fixed [`Reason`] (what summaries, metric
//! labels and Pub/Sub attributes count by: never text from the event or the
//! plugin), `reason` the detail in words, `source` its provenance
//! (`file.ndjson:17`), `plugin` the plugin version involved, and `payload`
//! the original event as text (or `payload_base64` when it is not UTF-8).
//! A payload over [`MAX_PAYLOAD`] bytes is kept as an excerpt of that size
//! with `payload_size` and `payload_blake3` of the whole (so a record always
//! fits a Pub/Sub message, and a file of dead letters stays small). Nothing
//! refused is ever dropped silently.
//!
//! With `[dead_letters] topic`, each record is also published to a Pub/Sub
//! topic (the record as the message data, `stage` and `reason_kind` (the
//! code) as attributes); [`DeadLetters::flush`] writes, fsyncs and waits for
//! every publish to be confirmed, so no input is acknowledged before its
//! dead letter is safe.

use anyhow::{Context, Result};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The stage that refused a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Decode,
    Transform,
    Window,
    Aggregate,
    Sink,
}

impl Stage {
    pub fn as_str(&self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Transform => "transform",
            Stage::Window => "window",
            Stage::Aggregate => "aggregate",
            Stage::Sink => "sink",
        }
    }
}

/// Why a record was refused: a fixed set, so what counts them (the status
/// summary, metric labels, the topic's attribute) never grows with what
/// an event or a plugin says. The words are in the record's `reason`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Not valid JSON, or not an object.
    Malformed,
    MissingKey,
    /// A key that is not a string or number.
    BadKey,
    MissingTime,
    /// An event time that does not parse in the configured format.
    BadTime,
    /// An event time outside years 1 to 9999.
    TimeOutOfRange,
    /// An event time too far ahead of processing time.
    FutureTime,
    /// Larger than `[event] max_bytes`.
    Oversized,
    /// A transform output larger than `[event] max_bytes`.
    OversizedOutput,
    /// A plugin refused it (its own reason in the detail).
    Refused,
    /// A plugin trapped or panicked on it.
    PluginFailed,
    /// A plugin ran past its time budget on it (computing or waiting).
    TimeBudget,
    /// A plugin ran into a sandbox limit (memory, tables, instances) on it.
    SandboxLimit,
    /// Not run: the plugin ran out of time too often in its batch.
    NotTried,
    /// Not run: the transform is quarantined.
    Quarantined,
    /// A plugin's answer broke the contract (e.g. named an event outside
    /// its batch).
    ContractViolation,
    /// Behind the watermark by more than the allowed lateness.
    Late,
    /// For a window whose trigger has finished.
    WindowClosed,
    /// A row the destination refused.
    SinkRefused,
    /// Written by a runnel that did not record codes.
    #[default]
    Unclassified,
}

impl Reason {
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::MissingKey => "missing_key",
            Reason::BadKey => "bad_key",
            Reason::MissingTime => "missing_time",
            Reason::BadTime => "bad_time",
            Reason::TimeOutOfRange => "time_out_of_range",
            Reason::FutureTime => "future_time",
            Reason::Oversized => "oversized",
            Reason::OversizedOutput => "oversized_output",
            Reason::Refused => "refused",
            Reason::PluginFailed => "plugin_failed",
            Reason::TimeBudget => "time_budget",
            Reason::SandboxLimit => "sandbox_limit",
            Reason::NotTried => "not_tried",
            Reason::Quarantined => "quarantined",
            Reason::ContractViolation => "contract_violation",
            Reason::Late => "late",
            Reason::WindowClosed => "window_closed",
            Reason::SinkRefused => "sink_refused",
            Reason::Unclassified => "unclassified",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: its code, and the detail in words.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    pub code: Reason,
    pub reason: String,
}

impl Refusal {
    pub fn new(code: Reason, reason: impl Into<String>) -> Self {
        Self { code, reason: reason.into() }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// Payloads longer than this are kept as an excerpt (with size and digest).
pub const MAX_PAYLOAD: usize = 64 << 10;

/// One dead letter as written.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DeadLetter {
    pub time: String,
    pub stage: Stage,
    #[serde(default)]
    pub code: Reason,
    pub reason: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
    /// Set when `payload` is an excerpt: the whole payload's size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_size: Option<usize>,
    /// Set when `payload` is an excerpt: the whole payload's BLAKE3 (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_blake3: Option<String>,
}

impl DeadLetter {
    /// The record of one refused event, stamped now (an excerpt of the
    /// payload past [`MAX_PAYLOAD`], as text when it is UTF-8).
    pub fn new((stage, code): (Stage, Reason), reason: &str, source: String, plugin: Option<&str>, payload: &[u8]) -> Self {
        let (kept, size, digest) = if payload.len() > MAX_PAYLOAD {
            (&payload[..MAX_PAYLOAD], Some(payload.len()), Some(blake3::hash(payload).to_hex().to_string()))
        } else {
            (payload, None, None)
        };
        let (text, b64) = match std::str::from_utf8(kept) {
            Ok(s) => (Some(s.to_string()), None),
            // An excerpt may end inside a character: keep it as text anyway.
            Err(e) if size.is_some() && e.error_len().is_none() => {
                (Some(String::from_utf8_lossy(&kept[..e.valid_up_to()]).into_owned()), None)
            }
            Err(_) => (None, Some(base64::engine::general_purpose::STANDARD.encode(kept))),
        };
        DeadLetter {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            stage,
            code,
            reason: reason.to_string(),
            source,
            plugin: plugin.map(str::to_string),
            payload: text,
            payload_base64: b64,
            payload_size: size,
            payload_blake3: digest,
        }
    }

    /// Whether the payload is whole (not an excerpt of an oversized event).
    pub fn is_whole(&self) -> bool {
        self.payload_size.is_none()
    }

    /// The original event bytes (an excerpt when not [`is_whole`](Self::is_whole)).
    pub fn payload_bytes(&self) -> Vec<u8> {
        match (&self.payload, &self.payload_base64) {
            (Some(p), _) => p.as_bytes().to_vec(),
            (None, Some(b)) => base64::engine::general_purpose::STANDARD.decode(b).unwrap_or_default(),
            (None, None) => Vec::new(),
        }
    }
}

/// Writes dead letters and counts them by stage and reason kind.
pub struct DeadLetters {
    out: BufWriter<std::fs::File>,
    path: PathBuf,
    counts: BTreeMap<(Stage, Reason), u64>,
    total: u64,
    topic: Option<TopicCopy>,
    /// The latest few, for the dashboard.
    recent: std::collections::VecDeque<crate::telemetry::DeadLetterSample>,
    /// Written since the last fsync.
    dirty: bool,
}

/// Dead letters on their way to a Pub/Sub topic.
struct TopicCopy {
    rt: &'static tokio::runtime::Runtime,
    publisher: google_cloud_pubsub::client::Publisher,
    name: String,
    pending: Vec<google_cloud_pubsub::publisher::PublishFuture>,
}

impl DeadLetters {
    pub fn create(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        crate::files::check_output(path, "the dead-letter file ([dead_letters] path)")?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open the dead-letter file {}: check [dead_letters] path", path.display()))?;
        Ok(Self {
            out: BufWriter::new(file),
            path: path.to_path_buf(),
            counts: BTreeMap::new(),
            total: 0,
            topic: None,
            recent: Default::default(),
            dirty: false,
        })
    }

    /// Also publishes every dead letter to `topic`.
    pub fn publish_to(&mut self, cloud: &crate::cloud::Cloud, topic: &str) -> Result<()> {
        let rt = crate::cloud::runtime()?;
        let publisher = rt.block_on(cloud.publisher(topic))?;
        self.topic = Some(TopicCopy { rt, publisher, name: cloud.topic_path(topic), pending: Vec::new() });
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records one refused event: where (`stage`), why (`code`, with the
    /// detail in `reason`), where it came from, and the event itself.
    pub fn write(
        &mut self,
        (stage, code): (Stage, Reason),
        reason: &str,
        source: String,
        plugin: Option<&str>,
        payload: &[u8],
    ) -> Result<()> {
        let record = DeadLetter::new((stage, code), reason, source, plugin, payload);
        let kept = &payload[..payload.len().min(MAX_PAYLOAD)];
        crate::telemetry::push_recent(
            &mut self.recent,
            crate::telemetry::DeadLetterSample {
                time: record.time.clone(),
                stage: stage.as_str().into(),
                reason: record.reason.clone(),
                source: record.source.clone(),
                payload: String::from_utf8_lossy(&kept[..kept.len().min(1200)]).chars().take(300).collect(),
            },
        );
        let line = serde_json::to_vec(&record)?;
        let path = &self.path;
        let named = |e: std::io::Error| anyhow::Error::new(e).context(format!("cannot write dead letters to {}", path.display()));
        self.out.write_all(&line).map_err(named)?;
        self.out.write_all(b"\n").map_err(named)?;
        self.dirty = true;
        if let Some(t) = &mut self.topic {
            let message = google_cloud_pubsub::model::Message::new()
                .set_data(line)
                .set_attributes([("stage", stage.as_str().to_string()), ("reason_kind", code.as_str().to_string())]);
            t.pending.push(t.publisher.publish(message));
        }
        *self.counts.entry((stage, code)).or_default() += 1;
        self.total += 1;
        Ok(())
    }

    /// Makes everything written so far durable (before acknowledging input):
    /// written, fsynced, and confirmed by the topic.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().with_context(|| format!("cannot write dead letters to {}", self.path.display()))?;
        if std::mem::take(&mut self.dirty) {
            self.out.get_ref().sync_data().with_context(|| format!("cannot fsync the dead letters in {}", self.path.display()))?;
        }
        if let Some(t) = &mut self.topic {
            let pending = std::mem::take(&mut t.pending);
            t.rt.block_on(async {
                for p in pending {
                    p.await.with_context(|| format!("cannot publish a dead letter to {}; nothing is acknowledged until it can", t.name))?;
                }
                anyhow::Ok(())
            })?;
        }
        Ok(())
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// The latest dead letters, newest last.
    pub fn recent(&self) -> &std::collections::VecDeque<crate::telemetry::DeadLetterSample> {
        &self.recent
    }

    /// Counts by (stage, kind of reason).
    pub fn counts(&self) -> &BTreeMap<(Stage, Reason), u64> {
        &self.counts
    }
}

/// Reads a dead-letter file; a cut-off last record (see [`read_all`]) is
/// left out.
pub fn read(path: &Path) -> Result<Vec<DeadLetter>> {
    Ok(read_all(path)?.0)
}

/// Reads a dead-letter file, and says whether its last line was cut off.
///
/// A crash mid-write leaves a last line with no newline that is not a whole
/// record: it is skipped and its byte length returned, so the rest can still
/// be read (and replayed). Any other line that does not parse is an error
/// naming the file and line.
pub fn read_all(path: &Path) -> Result<(Vec<DeadLetter>, Option<usize>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (whole, last) = match text.rfind('\n') {
        Some(i) => (&text[..=i], &text[i + 1..]),
        None => ("", text.as_str()),
    };
    let mut records = Vec::new();
    for (i, line) in whole.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        records.push(serde_json::from_str(line).with_context(|| format!("{} line {}", path.display(), i + 1))?);
    }
    let mut torn = None;
    if !last.trim().is_empty() {
        match serde_json::from_str(last) {
            Ok(record) => records.push(record),
            Err(_) => torn = Some(last.len()),
        }
    }
    Ok((records, torn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_by_fixed_code_whatever_the_reasons_say() {
        let dir = tempfile::tempdir().unwrap();
        let mut dead = DeadLetters::create(&dir.path().join("dead.ndjson")).unwrap();
        for i in 0..3_000 {
            let reason = format!("event_timestamp {i}: not an integer number of microseconds");
            dead.write((Stage::Decode, Reason::BadTime), &reason, format!("f:{i}"), None, b"{}").unwrap();
        }
        dead.flush().unwrap();
        assert_eq!(dead.counts().len(), 1, "3,000 distinct texts, one code");
        assert_eq!(dead.counts()[&(Stage::Decode, Reason::BadTime)], 3_000);
        let read = read(&dir.path().join("dead.ndjson")).unwrap();
        assert_eq!(read.len(), 3_000);
        assert!(read.iter().all(|d| d.code == Reason::BadTime));
        assert_eq!(read[7].reason, "event_timestamp 7: not an integer number of microseconds");
    }

    #[test]
    fn an_oversized_payload_is_kept_as_an_excerpt_with_its_size_and_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.ndjson");
        let mut dead = DeadLetters::create(&path).unwrap();
        let huge = format!("{{\"pad\":\"{}é\"}}", "x".repeat(MAX_PAYLOAD - 10)).into_bytes();
        dead.write((Stage::Decode, Reason::Oversized), "oversized", "m/1".into(), None, &huge).unwrap();
        dead.write((Stage::Decode, Reason::Malformed), "not valid JSON", "m/2".into(), None, b"{small").unwrap();
        dead.flush().unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() < (MAX_PAYLOAD as u64) + 1024);
        let read = read(&path).unwrap();
        assert!(!read[0].is_whole());
        assert_eq!(read[0].payload_size, Some(huge.len()));
        assert_eq!(read[0].payload_blake3.as_deref(), Some(blake3::hash(&huge).to_hex().as_str()));
        assert!(read[0].payload.as_ref().unwrap().len() <= MAX_PAYLOAD);
        assert!(read[1].is_whole());
        assert_eq!(read[1].payload_bytes(), b"{small");
    }

    #[test]
    fn a_cut_off_last_line_is_skipped_and_said() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.ndjson");
        let mut dead = DeadLetters::create(&path).unwrap();
        dead.write((Stage::Decode, Reason::Malformed), "not valid JSON", "m/1".into(), None, b"{").unwrap();
        dead.flush().unwrap();
        drop(dead);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"time\":\"2026-");
        std::fs::write(&path, &text).unwrap();
        let (records, torn) = read_all(&path).unwrap();
        assert_eq!((records.len(), torn), (1, Some(14)));
        // A bad line that is not the last is an error naming it.
        std::fs::write(&path, format!("{{\"time\":\"2026-\n{text}")).unwrap();
        let e = read_all(&path).unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
    }
}
