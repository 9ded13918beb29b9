//! The output stage: the sink built from `[sink]`, the panes written to it
//! (rows it refuses become dead letters), and the summary of each window
//! those panes close, for the status page.

use anyhow::Result;
use std::collections::BTreeMap;
use std::time::Instant;

use crate::cloud::CloudOnce;
use crate::config::{PipelineConfig, SinkKind, SourceConfig};
use crate::deadletter::{DeadLetters, Reason, Stage};
use crate::sink::{bigquery::BigQuerySink, ndjson::NdjsonSink, stdout::StdoutSink, NullSink, Provenance, Sink};
use crate::status::{push_recent, LiveStatus, WindowTop, TOP_KEYS};
use crate::telemetry::Telemetry;
use crate::window::{Pane, Timing, Value};

pub(super) struct Output {
    pub sink: Box<dyn Sink>,
}

impl Output {
    /// The configured sink, or `given` in its place.
    pub fn open(cfg: &PipelineConfig, given: Option<Box<dyn Sink>>, cloud: &mut CloudOnce) -> Result<Self> {
        let sink = match given {
            Some(s) => s,
            None => build(cfg, cloud)?,
        };
        Ok(Self { sink })
    }

    /// Writes panes; rows the sink refuses go to the dead letters.
    pub fn write(
        &mut self,
        panes: &[Pane],
        provenance: &Provenance,
        dead: &mut DeadLetters,
        telemetry: &mut Telemetry,
        status: &LiveStatus,
    ) -> Result<()> {
        if panes.is_empty() {
            return Ok(());
        }
        telemetry.counters.panes += panes.len() as u64;
        let latest = panes.iter().map(|p| p.window.end).max();
        telemetry.counters.last_window_end = telemetry.counters.last_window_end.max(latest);
        record_closed_windows(panes, status);
        let writing = Instant::now();
        let refused = self.sink.write(panes, provenance)?;
        telemetry.latency.sink.observe(writing.elapsed());
        telemetry.sink_rejected += refused.len() as u64;
        telemetry.sink_rows += (panes.len() - refused.len()) as u64;
        for r in refused {
            let source = match panes.get(r.pane) {
                Some(p) => format!("pane {} [{}, {}) #{}", p.key, p.window.start, p.window.end, p.index),
                None => "pane".into(),
            };
            dead.write((Stage::Sink, Reason::SinkRefused), &r.reason, source, Some(&provenance.aggregate), r.row.as_bytes())?;
        }
        Ok(())
    }
}

/// A sink from `[sink]`.
fn build(cfg: &PipelineConfig, cloud: &mut CloudOnce) -> Result<Box<dyn Sink>> {
    let columns = cfg.sink.columns();
    Ok(match &cfg.sink.kind {
        SinkKind::Stdout { top } => Box::new(StdoutSink::new(std::io::stdout(), *top, None)),
        SinkKind::Ndjson { path } => {
            // Behind Pub/Sub, written rows cover acknowledged messages.
            let durable = matches!(cfg.source, SourceConfig::Pubsub { .. });
            Box::new(NdjsonSink::open(&cfg.resolve(path), columns, durable)?)
        }
        SinkKind::Null => Box::new(NullSink),
        SinkKind::Bigquery(t) => Box::new(BigQuerySink::connect(cloud.get()?, &t.dataset, &t.table, columns, t.window_columns)?),
    })
}

/// Keeps the most active keys of each window these panes close.
fn record_closed_windows(panes: &[Pane], status: &LiveStatus) {
    let mut by_window: BTreeMap<(i64, i64), Vec<&Pane>> = BTreeMap::new();
    // A window has closed when its on-time pane fires (or its last).
    for p in panes.iter().filter(|p| p.is_last || p.timing == Timing::OnTime) {
        by_window.entry((p.window.start, p.window.end)).or_default().push(p);
    }
    let time = |us: i64| {
        chrono::DateTime::from_timestamp_micros(us)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_else(|| us.to_string())
    };
    let number = |p: &Pane| match &p.value {
        Some(Value::Int(v)) => *v as f64,
        Some(Value::Float(v)) => *v,
        _ => f64::NEG_INFINITY,
    };
    for ((start, end), mut list) in by_window {
        list.sort_by(|a, b| number(b).total_cmp(&number(a)).then_with(|| a.key.cmp(&b.key)));
        let top =
            list.iter().take(TOP_KEYS).map(|p| (p.key.clone(), p.value.as_ref().map(|v| v.to_json_value()).unwrap_or_default())).collect();
        let closed = WindowTop { start: time(start), end: time(end), keys: list.len(), top };
        status.update(|s| push_recent(&mut s.recent_windows, closed));
    }
}
