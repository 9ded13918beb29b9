//! Dead letters: where bad records go, with why and where they came from.
//!
//! One NDJSON record per refused event:
//! `{"time", "stage", "reason", "source", "plugin", "payload"}` — `stage` is
//! where it was refused (`decode`, `transform`, `window`, `aggregate`,
//! `sink`),
//! `source` its provenance (`file.ndjson:17`), `plugin` the plugin version
//! involved, and `payload` the original event as text (or `payload_base64`
//! when it is not UTF-8). Nothing refused is ever dropped silently.
//!
//! With `[dead_letters] topic`, each record is also published to a Pub/Sub
//! topic (the record as the message data, `stage` and `reason_kind` as
//! attributes); [`DeadLetters::flush`] waits for every publish to be
//! confirmed, so no input is acknowledged before its dead letter is safe.

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

/// One dead letter as written.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DeadLetter {
    pub time: String,
    pub stage: Stage,
    pub reason: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
}

impl DeadLetter {
    /// The original event bytes.
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
    counts: BTreeMap<(Stage, String), u64>,
    total: u64,
    topic: Option<TopicCopy>,
    /// The latest few, for the dashboard.
    recent: std::collections::VecDeque<crate::status::DeadLetterSample>,
}

/// Dead letters on their way to a Pub/Sub topic.
struct TopicCopy {
    rt: tokio::runtime::Runtime,
    publisher: google_cloud_pubsub::client::Publisher,
    name: String,
    pending: Vec<google_cloud_pubsub::publisher::PublishFuture>,
}

/// The kind of a reason for counting: its text up to the first colon.
fn reason_kind(reason: &str) -> String {
    reason.split(':').next().unwrap_or(reason).trim().chars().take(60).collect()
}

impl DeadLetters {
    pub fn create(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| {
                format!("cannot open the dead-letter file {}: check [dead_letters] path", path.display())
            })?;
        Ok(Self {
            out: BufWriter::new(file),
            path: path.to_path_buf(),
            counts: BTreeMap::new(),
            total: 0,
            topic: None,
            recent: Default::default(),
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

    pub fn write(&mut self, stage: Stage, reason: &str, source: String, plugin: Option<&str>, payload: &[u8]) -> Result<()> {
        let (text, b64) = match std::str::from_utf8(payload) {
            Ok(s) => (Some(s.to_string()), None),
            Err(_) => (None, Some(base64::engine::general_purpose::STANDARD.encode(payload))),
        };
        let record = DeadLetter {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            stage,
            reason: reason.to_string(),
            source,
            plugin: plugin.map(str::to_string),
            payload: text,
            payload_base64: b64,
        };
        crate::status::push_recent(
            &mut self.recent,
            crate::status::DeadLetterSample {
                time: record.time.clone(),
                stage: stage.as_str().into(),
                reason: record.reason.clone(),
                source: record.source.clone(),
                payload: String::from_utf8_lossy(payload).chars().take(300).collect(),
            },
        );
        let line = serde_json::to_vec(&record)?;
        self.out.write_all(&line)?;
        self.out.write_all(b"\n")?;
        let kind = reason_kind(reason);
        if let Some(t) = &mut self.topic {
            let message = google_cloud_pubsub::model::Message::new()
                .set_data(line)
                .set_attributes([("stage", stage.as_str().to_string()), ("reason_kind", kind.clone())]);
            t.pending.push(t.publisher.publish(message));
        }
        *self.counts.entry((stage, kind)).or_default() += 1;
        self.total += 1;
        Ok(())
    }

    /// Makes everything written so far durable (before acknowledging input).
    pub fn flush(&mut self) -> Result<()> {
        self.out
            .flush()
            .with_context(|| format!("cannot write dead letters to {}", self.path.display()))?;
        if let Some(t) = &mut self.topic {
            let pending = std::mem::take(&mut t.pending);
            t.rt.block_on(async {
                for p in pending {
                    p.await.with_context(|| {
                        format!("cannot publish a dead letter to {}; nothing is acknowledged until it can", t.name)
                    })?;
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
    pub fn recent(&self) -> &std::collections::VecDeque<crate::status::DeadLetterSample> {
        &self.recent
    }

    /// Counts by (stage, kind of reason).
    pub fn counts(&self) -> &BTreeMap<(Stage, String), u64> {
        &self.counts
    }
}

/// Reads a dead-letter file.
pub fn read(path: &Path) -> Result<Vec<DeadLetter>> {
    crate::ndjson::read(path)
}
