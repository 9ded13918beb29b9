//! `runnel status --config FILE`: the workshop's validation in one command.
//!
//! - **Subscription**: messages waiting in the pull subscription, counted by
//!   peeking (a pull that returns at once; every message is handed back
//!   with an ack deadline of 0, so it is delivered again right away), plus
//!   the messages a running pipeline holds unacknowledged for its open
//!   windows (from its admin server, when one answers).
//! - **Table**: rows in the BigQuery table, distinct keys, and the latest
//!   window end when the table has window columns.
//! - **Dead letters**: counts by stage and reason from the dead-letter file.
//!
//! The peek uses Pub/Sub's REST API, so it works the same against the
//! emulator and Google Cloud (with Application Default Credentials there).

use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

use crate::cloud::Cloud;
use crate::config::{BigQueryTable, PipelineConfig, SourceConfig};

/// Messages pulled per peek request.
const PEEK_BATCH: usize = 1000;

#[derive(Debug, Default, Serialize)]
pub struct Status {
    pub subscription: Option<String>,
    /// Messages waiting to be delivered (at least this many; peeking stops at the limit).
    pub waiting_messages: Option<usize>,
    /// Whether the peek stopped at its limit (there may be more).
    pub waiting_at_limit: bool,
    /// Held unacknowledged by the running pipeline (`None`: no pipeline answered).
    pub held_by_pipeline: Option<u64>,
    pub pipeline: Option<serde_json::Value>,
    pub table: Option<String>,
    pub rows: Option<i64>,
    pub keys: Option<i64>,
    pub last_window_end: Option<String>,
    pub dead_letters: BTreeMap<String, u64>,
    pub dead_letter_file: String,
    /// Seconds since the running pipeline last received a message.
    pub pipeline_quiet_s: Option<f64>,
    /// How long the pipeline must have received nothing before the drain
    /// check can trust an empty peek: the longer of the subscription's ack
    /// deadline and the stream's lease, plus a minute. A message leased to
    /// the client library (or, on the emulator, dispatched to the stream)
    /// but not handed to the pipeline is counted nowhere; within this long
    /// it is either handed over or its lease runs out and it is delivered
    /// again (on the emulator, a subscriber's that stopped or died can come
    /// later still: docs/cloud.md, Draining).
    pub quiet_needed_s: f64,
    /// The share of recent events dropped as late, and the warning.
    pub late_recent: Option<crate::late_share::RecentLateness>,
    /// [`Status::drained`], for `--json` readers.
    pub drained: bool,
}

impl Status {
    /// Whether every input message is acknowledged (what the workshop checks).
    /// With a running pipeline, only once it has been quiet long enough that
    /// no message can be leased to it unseen (see `quiet_needed_s`).
    pub fn drained(&self) -> bool {
        let quiet = match (&self.pipeline, self.pipeline_quiet_s) {
            (None, _) => true,
            (Some(_), None) => true,
            (Some(_), Some(q)) => q >= self.quiet_needed_s,
        };
        self.waiting_messages == Some(0) && self.held_by_pipeline.unwrap_or(0) == 0 && quiet
    }
}

pub struct StatusOptions<'a> {
    pub config: &'a Path,
    /// The running pipeline's admin server, if not the file's `[admin] listen`.
    pub admin: Option<&'a str>,
    /// Stop peeking after this many messages.
    pub peek_limit: usize,
}

pub fn run(opts: &StatusOptions) -> Result<Status> {
    let cfg = PipelineConfig::load(opts.config)?;
    let mut status = Status { dead_letter_file: cfg.resolve(&cfg.dead_letters.path).display().to_string(), ..Default::default() };
    let needs_cloud = matches!(cfg.source, SourceConfig::Pubsub { .. }) || cfg.sink.bigquery().is_some();
    let cloud = if needs_cloud { Some(Cloud::resolve(&cfg.cloud)?) } else { None };
    if let Some(redelivery) = cfg.source.redelivery_after() {
        status.quiet_needed_s = redelivery.as_secs_f64() + 60.0;
    }
    if let (SourceConfig::Pubsub { subscription, .. }, Some(cloud)) = (&cfg.source, &cloud) {
        let path = cloud.subscription_path(subscription);
        let (waiting, at_limit) = peek(cloud, &path, opts.peek_limit)?;
        status.subscription = Some(path);
        status.waiting_messages = Some(waiting);
        status.waiting_at_limit = at_limit;
    }
    let admin = opts.admin.map(str::to_string).or_else(|| cfg.admin.as_ref().map(|a| a.listen.clone()));
    if let Some(addr) = admin {
        let url = format!("{}/api/status", super::admin_client::base_url(&addr));
        if let Ok(resp) = ureq::get(&url).timeout(std::time::Duration::from_secs(3)).call() {
            let v: serde_json::Value = resp.into_json().context("the admin server's status is not JSON")?;
            status.held_by_pipeline = v["counters"]["unacked_messages"].as_u64();
            status.last_window_end = v["counters"]["last_window_end"].as_str().map(str::to_string);
            status.pipeline_quiet_s = v["counters"]["source_quiet_s"].as_f64();
            status.late_recent = serde_json::from_value(v["late_recent"].clone()).ok();
            status.pipeline = Some(v);
        }
    }
    if let (Some(t), Some(cloud)) = (cfg.sink.bigquery(), &cloud) {
        let (dataset, table) = (&t.dataset, &t.table);
        let (rows, keys, last) = table_summary(cloud, t, &cfg.sink.key_column)?;
        status.table = Some(format!("{}.{dataset}.{table}", cloud.project));
        status.rows = Some(rows);
        status.keys = Some(keys);
        if last.is_some() {
            status.last_window_end = last;
        }
    }
    let dead_path = cfg.resolve(&cfg.dead_letters.path);
    if dead_path.exists() {
        for d in crate::deadletter::read(&dead_path)? {
            *status.dead_letters.entry(format!("{}: {}", d.stage.as_str(), d.code)).or_default() += 1;
        }
    }
    status.drained = status.drained();
    Ok(status)
}

/// Counts the messages a pull would deliver now, then hands them back.
fn peek(cloud: &Cloud, subscription: &str, limit: usize) -> Result<(usize, bool)> {
    let (base, token) = match &cloud.pubsub_emulator {
        Some(url) => (url.clone(), None),
        None => ("https://pubsub.googleapis.com".to_string(), Some(access_token("https://www.googleapis.com/auth/pubsub")?)),
    };
    let post = |verb: &str, body: serde_json::Value| -> Result<serde_json::Value> {
        let mut req = ureq::post(&format!("{base}/v1/{subscription}:{verb}")).timeout(std::time::Duration::from_secs(30));
        if let Some(t) = &token {
            req = req.set("authorization", &format!("Bearer {t}"));
        }
        let resp = req.send_json(body).map_err(|e| match e {
            ureq::Error::Status(404, _) => anyhow::anyhow!("subscription {subscription} does not exist: run `runnel setup --config FILE`"),
            e => anyhow::anyhow!("cannot reach Pub/Sub at {base}: {e}"),
        })?;
        resp.into_json().context("Pub/Sub's answer is not JSON")
    };
    // Hold what was pulled until the count is done, so nothing is counted twice.
    let mut ack_ids: Vec<String> = Vec::new();
    let mut result = Ok(());
    while ack_ids.len() < limit {
        let want = PEEK_BATCH.min(limit - ack_ids.len());
        match post("pull", serde_json::json!({"maxMessages": want, "returnImmediately": true})) {
            Ok(body) => {
                let got: Vec<String> = body["receivedMessages"]
                    .as_array()
                    .map(|ms| ms.iter().filter_map(|m| m["ackId"].as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                if got.is_empty() {
                    break;
                }
                ack_ids.extend(got);
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    for chunk in ack_ids.chunks(PEEK_BATCH) {
        post("modifyAckDeadline", serde_json::json!({"ackIds": chunk, "ackDeadlineSeconds": 0}))
            .context("cannot hand peeked messages back; they will be delivered again after their ack deadline")?;
    }
    result?;
    Ok((ack_ids.len(), ack_ids.len() >= limit))
}

/// An OAuth access token from Application Default Credentials.
fn access_token(scope: &str) -> Result<String> {
    let creds = google_cloud_auth::credentials::Builder::default().with_scopes([scope]).build_access_token_credentials().context(
        "no Application Default Credentials: run `gcloud auth application-default login`, or set PUBSUB_EMULATOR_HOST for the emulator",
    )?;
    let rt = crate::cloud::runtime()?;
    let token = rt.block_on(creds.access_token()).context("cannot get an access token from Application Default Credentials")?;
    Ok(token.token)
}

/// Rows, distinct keys and the latest window end of the table.
fn table_summary(cloud: &Cloud, t: &BigQueryTable, key: &str) -> Result<(i64, i64, Option<String>)> {
    let last = if t.window_columns { "CAST(MAX(window_end) AS STRING)" } else { "CAST(NULL AS STRING)" };
    let sql = format!("SELECT COUNT(*), COUNT(DISTINCT {key}), {last} FROM `{}.{}`", t.dataset, t.table);
    let rt = crate::cloud::runtime()?;
    rt.block_on(async {
        let bq = cloud.bigquery().await?;
        let resp =
            bq.job().query(&cloud.project, gcp_bigquery_client::model::query_request::QueryRequest::new(sql)).await.with_context(|| {
                format!("cannot query {}.{}: run `runnel setup --config FILE` if it does not exist", t.dataset, t.table)
            })?;
        let mut rs = gcp_bigquery_client::model::query_response::ResultSet::new_from_query_response(resp);
        anyhow::ensure!(rs.next_row(), "the count query returned no row");
        let n = |i| rs.get_i64(i).ok().flatten().unwrap_or(0);
        Ok((n(0), n(1), rs.get_string(2).ok().flatten()))
    })
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(sub) = &self.subscription {
            let more = if self.waiting_at_limit { " or more" } else { "" };
            writeln!(f, "subscription {sub}")?;
            writeln!(f, "  waiting to be delivered: {}{more}", self.waiting_messages.unwrap_or(0))?;
        }
        match (&self.pipeline, self.held_by_pipeline) {
            (Some(p), held) => {
                let c = &p["counters"];
                writeln!(
                    f,
                    "running pipeline: {} events in, {} panes, {} dead letters, {} messages held unacknowledged",
                    c["events_in"],
                    c["panes"],
                    c["dead_letters"],
                    held.unwrap_or(0)
                )?;
                writeln!(
                    f,
                    "  transform {}, aggregate {}",
                    p["transform"].as_str().unwrap_or("none"),
                    p["aggregate"].as_str().unwrap_or("?")
                )?;
                if let Ok(d) = serde_json::from_value::<crate::source::dedup::DedupStats>(c["source_dedup"].clone()) {
                    writeln!(
                        f,
                        "  duplicates dropped: {} ({} redelivered while held, {} after acknowledgement); {} ids remembered, \
                         the oldest {:.0} s ago (bound {:.0} s)",
                        d.dropped(),
                        d.duplicates_held,
                        d.duplicates_acknowledged,
                        d.ids_remembered,
                        d.oldest_s,
                        d.window_s
                    )?;
                }
                if let Some(late) = &self.late_recent {
                    writeln!(
                        f,
                        "  dropped as late in the last {} s: {:.1}% ({} of {} events)",
                        late.span_s,
                        late.share * 100.0,
                        late.late,
                        late.elements
                    )?;
                    if let Some(w) = &late.warning {
                        writeln!(f, "  WARNING: {w}")?;
                    }
                }
            }
            (None, _) => writeln!(f, "running pipeline: none answered (no [admin] table, or not running)")?,
        }
        if let Some(t) = &self.table {
            writeln!(f, "table {t}: {} rows, {} keys", self.rows.unwrap_or(0), self.keys.unwrap_or(0))?;
        }
        if let Some(w) = &self.last_window_end {
            writeln!(f, "  latest window written ends {w}")?;
        }
        let total: u64 = self.dead_letters.values().sum();
        writeln!(f, "dead letters ({}): {total}", self.dead_letter_file)?;
        for (k, n) in &self.dead_letters {
            writeln!(f, "  {n} at {k}")?;
        }
        if self.subscription.is_some() {
            let quiet = self.pipeline_quiet_s.unwrap_or(f64::INFINITY);
            if self.drained() {
                write!(f, "every message is acknowledged")?;
            } else if self.waiting_messages == Some(0) && self.held_by_pipeline.unwrap_or(0) == 0 && quiet < self.quiet_needed_s {
                write!(
                    f,
                    "not drained yet: nothing is waiting or held, but the pipeline received a message {quiet:.0} s ago, and \
                     messages leased to it but not handed over yet are invisible to this check; ask again once it has \
                     received nothing for {:.0} s",
                    self.quiet_needed_s
                )?;
            } else {
                write!(f, "messages are still waiting or held: not drained yet")?;
            }
        }
        Ok(())
    }
}
