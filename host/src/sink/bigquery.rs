//! The BigQuery sink: panes as rows of a table, by streaming `insertAll`.
//!
//! - Rows are checked against the table's schema before sending (a wrong
//!   type, an unknown column or a missing required one is refused here, with
//!   the reason, instead of failing a whole request); refused rows go to the
//!   dead letters.
//! - Requests respect the API's limits (500 rows, ~9 MB each).
//! - Each row's `insertId` is derived from (key, window, pane index), so a
//!   row written again after a crash or a retry is dropped by BigQuery's
//!   de-duplication.
//! - What is retried is decided by the answer's HTTP status (429, 5xx) and
//!   BigQuery's error reason (`rateLimitExceeded`, `backendError`,
//!   `internalError`), or by the transport's error kind (time-out,
//!   connection), never by message text; with exponential backoff (100 ms
//!   doubling, capped at 30 s) for up to [`RETRY_SPAN`], each request bounded
//!   by [`REQUEST_TIMEOUT`]. Then the write fails and the pipeline stops
//!   without acknowledging its input.
//! - Rows BigQuery marks `stopped` (valid, but held back because another
//!   row of the request was refused) are sent again, not dead-lettered.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{Map, Value as Json};
use std::time::Duration;

use gcp_bigquery_client::model::table_data_insert_all_request::TableDataInsertAllRequest;
use gcp_bigquery_client::model::table_data_insert_all_request_rows::TableDataInsertAllRequestRows;
use gcp_bigquery_client::model::table_data_insert_all_response_insert_errors::TableDataInsertAllResponseInsertErrors;

use super::{row, Columns, Provenance, RejectedRow, Sink};
use crate::cloud::Cloud;
use crate::window::Pane;

const MAX_ROWS: usize = 500;
const MAX_BYTES: usize = 9 << 20;
/// How long a failing insertAll is retried before the write fails.
pub const RETRY_SPAN: Duration = Duration::from_secs(300);
/// Each insertAll request must answer within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Rounds of resending rows BigQuery stopped because of others' errors.
const STOPPED_ROUNDS: usize = 3;

/// A column of the destination table.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    /// BigQuery's type name (STRING, INTEGER, FLOAT, TIMESTAMP, ...).
    pub kind: String,
    pub required: bool,
}

pub struct BigQuerySink {
    rt: &'static tokio::runtime::Runtime,
    client: gcp_bigquery_client::Client,
    project: String,
    dataset: String,
    table: String,
    columns: Columns,
    schema: Vec<Column>,
    window_columns: bool,
    /// Rows written so far.
    pub written: u64,
    /// insertAll requests retried after a 429 or 5xx.
    retried: u64,
}

impl BigQuerySink {
    pub fn connect(cloud: &Cloud, dataset: &str, table: &str, columns: Columns, window_columns: bool) -> Result<Self> {
        let rt = crate::cloud::runtime()?;
        let (client, schema) = rt.block_on(async {
            let client = cloud.bigquery().await?;
            let t = client.table().get(&cloud.project, dataset, table, None).await.map_err(|e| anyhow!("{e}")).with_context(|| {
                format!("cannot read table {}.{dataset}.{table}: create it with `runnel setup --config FILE`", cloud.project)
            })?;
            let fields = t.schema.fields().clone().unwrap_or_default();
            let schema = fields
                .iter()
                .map(|f| Column {
                    name: f.name.clone(),
                    kind: format!("{:?}", f.r#type).to_ascii_uppercase(),
                    required: f.mode.as_deref() == Some("REQUIRED"),
                })
                .collect::<Vec<_>>();
            Ok::<_, anyhow::Error>((client, schema))
        })?;
        Ok(Self {
            rt,
            client,
            project: cloud.project.clone(),
            dataset: dataset.into(),
            table: table.into(),
            columns,
            schema,
            window_columns,
            written: 0,
            retried: 0,
        })
    }

    fn row_for(&self, pane: &Pane, provenance: &Provenance) -> Map<String, Json> {
        table_row(pane, provenance, &self.columns, self.window_columns)
    }
}

/// A pane's row in a BigQuery table: the key and value columns, and the
/// window's columns when the table has them (runnel_beam writes the same).
pub fn table_row(pane: &Pane, provenance: &Provenance, columns: &Columns, window_columns: bool) -> Map<String, Json> {
    let mut r = row(pane, provenance, columns);
    r.remove("plugins");
    r.remove("is_last");
    if !window_columns {
        for c in ["window_start", "window_end", "timing", "pane_index"] {
            r.remove(c);
        }
    }
    r
}

/// Checks a row against a table schema; `Err` says what is wrong.
pub fn validate(row: &Map<String, Json>, schema: &[Column]) -> Result<(), String> {
    for (name, value) in row {
        let Some(col) = schema.iter().find(|c| &c.name == name) else {
            return Err(format!(
                "column {name} is not in the table (columns: {})",
                schema.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
            ));
        };
        let ok = match (col.kind.as_str(), value) {
            (_, Json::Null) => !col.required,
            ("STRING", Json::String(_)) => true,
            ("INTEGER" | "INT64", Json::Number(n)) => n.is_i64() || n.is_u64(),
            ("FLOAT" | "FLOAT64" | "NUMERIC" | "BIGNUMERIC", Json::Number(_)) => true,
            ("BOOLEAN" | "BOOL", Json::Bool(_)) => true,
            ("TIMESTAMP" | "DATETIME", Json::String(s)) => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
            ("JSON", _) => true,
            _ => false,
        };
        if !ok {
            return Err(format!("column {name} is {} in the table, but the value is {value}", col.kind));
        }
    }
    if let Some(missing) = schema.iter().find(|c| c.required && !row.contains_key(&c.name)) {
        return Err(format!("the table requires column {}, which the row lacks", missing.name));
    }
    Ok(())
}

/// A stable insertId for a pane: the same pane written twice gets the same id.
pub fn insert_id(pane: &Pane) -> String {
    let text = format!("{}|{}|{}|{}", pane.key, pane.window.start, pane.window.end, pane.index);
    blake3::hash(text.as_bytes()).to_hex()[..32].to_string()
}

/// Whether a failed insertAll is worth trying again: by HTTP status and
/// BigQuery's error reason, or by the transport's error kind.
fn retryable(err: &gcp_bigquery_client::error::BQError) -> bool {
    use gcp_bigquery_client::error::BQError;
    match err {
        BQError::ResponseError { error } => {
            let code = error.error.code;
            let transient = |r: &str| matches!(r, "rateLimitExceeded" | "backendError" | "internalError");
            code == 429 || (500..600).contains(&code) || error.error.errors.iter().filter_map(|e| e.get("reason")).any(|r| transient(r))
        }
        BQError::RequestError(e) => e.is_timeout() || e.is_connect() || e.is_request(),
        _ => false,
    }
}

/// Splits BigQuery's per-row errors into the rows it stopped only because
/// of another row's error (to send again) and the rows it refused (their
/// index and reason).
fn split_insert_errors(errors: &[TableDataInsertAllResponseInsertErrors]) -> (Vec<usize>, Vec<(usize, String)>) {
    let (mut stopped, mut refused) = (Vec::new(), Vec::new());
    for e in errors {
        let pos = e.index.unwrap_or(-1).max(0) as usize;
        let protos = e.errors.as_deref().unwrap_or_default();
        if !protos.is_empty() && protos.iter().all(|p| p.reason.as_deref() == Some("stopped")) {
            stopped.push(pos);
        } else {
            let reason = protos
                .iter()
                .map(|p| format!("{}: {}", p.reason.clone().unwrap_or_default(), p.message.clone().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join("; ");
            refused.push((pos, reason));
        }
    }
    (stopped, refused)
}

impl BigQuerySink {
    /// One insertAll, retried as [`retryable`] says for up to [`RETRY_SPAN`].
    fn insert(
        &mut self,
        rows: &[TableDataInsertAllRequestRows],
    ) -> Result<gcp_bigquery_client::model::table_data_insert_all_response::TableDataInsertAllResponse> {
        let n = rows.len();
        let mut retried = 0;
        let result = self.rt.block_on(async {
            let started = tokio::time::Instant::now();
            let mut delay = Duration::from_millis(100);
            let mut tries = 0;
            loop {
                let mut request = TableDataInsertAllRequest::new();
                request.add_rows(rows.to_vec()).map_err(|e| anyhow!("{e}"))?;
                let call = self.client.tabledata().insert_all(&self.project, &self.dataset, &self.table, request);
                tries += 1;
                let failure = match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
                    Ok(Ok(r)) => return Ok(r),
                    Ok(Err(e)) if !retryable(&e) => {
                        bail!("writing {n} rows to {}.{}.{} failed: {e}", self.project, self.dataset, self.table)
                    }
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()),
                };
                if started.elapsed() + delay > RETRY_SPAN {
                    bail!(
                        "writing {n} rows to {}.{}.{} failed after {tries} tries over {} s: {failure}",
                        self.project,
                        self.dataset,
                        self.table,
                        started.elapsed().as_secs()
                    );
                }
                tracing::warn!(tries, "BigQuery insertAll failed, retrying in {delay:?}: {failure}");
                retried += 1;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        });
        self.retried += retried;
        result
    }
}

impl Sink for BigQuerySink {
    fn retries(&self) -> u64 {
        self.retried
    }

    fn write(&mut self, panes: &[Pane], provenance: &Provenance) -> Result<Vec<RejectedRow>> {
        let mut rejected = Vec::new();
        let mut batches: Vec<Vec<TableDataInsertAllRequestRows>> = vec![Vec::new()];
        let mut bytes = 0;
        for (i, pane) in panes.iter().enumerate() {
            let r = self.row_for(pane, provenance);
            if let Err(reason) = validate(&r, &self.schema) {
                rejected.push(RejectedRow { pane: i, reason: format!("BigQuery row refused: {reason}"), row: Json::Object(r).to_string() });
                continue;
            }
            let size = Json::Object(r.clone()).to_string().len() + 64;
            let current = batches.last_mut().expect("never empty");
            if current.len() >= MAX_ROWS || bytes + size > MAX_BYTES {
                batches.push(Vec::new());
                bytes = 0;
            }
            bytes += size;
            batches
                .last_mut()
                .expect("never empty")
                .push(TableDataInsertAllRequestRows { insert_id: Some(insert_id(pane)), json: Json::Object(r) });
        }
        for rows in batches.into_iter().filter(|b| !b.is_empty()) {
            let mut rows = rows;
            for round in 0.. {
                let n = rows.len() as u64;
                let response = self.insert(&rows)?;
                let (stopped, refused) = split_insert_errors(response.insert_errors.as_deref().unwrap_or_default());
                for (pos, reason) in &refused {
                    rejected.push(RejectedRow {
                        pane: usize::MAX,
                        reason: format!("BigQuery refused row {pos}: {reason}"),
                        row: rows.get(*pos).map(|r| r.json.to_string()).unwrap_or_default(),
                    });
                }
                self.written += n - (refused.len() + stopped.len()) as u64;
                if stopped.is_empty() {
                    break;
                }
                if round == STOPPED_ROUNDS {
                    bail!("BigQuery kept holding back {} valid rows (`stopped`) after {STOPPED_ROUNDS} resends", stopped.len());
                }
                // Valid rows held back because of another row: send them again.
                rows = stopped.iter().filter_map(|&i| rows.get(i).cloned()).collect();
            }
        }
        Ok(rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Vec<Column> {
        vec![
            Column { name: "user_pseudo_id".into(), kind: "STRING".into(), required: true },
            Column { name: "event_count".into(), kind: "INTEGER".into(), required: false },
            Column { name: "window_start".into(), kind: "TIMESTAMP".into(), required: false },
        ]
    }

    fn row(json: &str) -> Map<String, Json> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn rows_are_checked_against_the_schema() {
        assert!(validate(&row(r#"{"user_pseudo_id":"U","event_count":3}"#), &schema()).is_ok());
        let e = validate(&row(r#"{"user_pseudo_id":"U","event_count":1.5}"#), &schema()).unwrap_err();
        assert!(e.contains("event_count is INTEGER"), "{e}");
        let e = validate(&row(r#"{"user_pseudo_id":"U","extra":1}"#), &schema()).unwrap_err();
        assert!(e.contains("extra is not in the table"), "{e}");
        let e = validate(&row(r#"{"event_count":1}"#), &schema()).unwrap_err();
        assert!(e.contains("requires column user_pseudo_id"), "{e}");
        let e = validate(&row(r#"{"user_pseudo_id":"U","window_start":"yesterday"}"#), &schema()).unwrap_err();
        assert!(e.contains("TIMESTAMP"), "{e}");
    }

    #[test]
    fn retries_are_decided_by_status_and_reason() {
        use gcp_bigquery_client::error::{BQError, NestedResponseError, ResponseError};
        let answer = |code: i64, reason: &str| BQError::ResponseError {
            error: ResponseError {
                error: NestedResponseError {
                    code,
                    errors: vec![[("reason".to_string(), reason.to_string())].into_iter().collect()],
                    // The text says "rate limit", but the status and reason decide.
                    message: "connection rate limit 503".into(),
                    status: String::new(),
                },
            },
        };
        assert!(retryable(&answer(429, "rateLimitExceeded")));
        assert!(retryable(&answer(503, "backendError")));
        assert!(retryable(&answer(400, "backendError")));
        assert!(!retryable(&answer(400, "invalid")));
        assert!(!retryable(&answer(404, "notFound")));
        assert!(!retryable(&BQError::NoToken));
    }

    #[test]
    fn stopped_rows_are_sent_again_and_refused_ones_dead_lettered() {
        use gcp_bigquery_client::model::error_proto::ErrorProto;
        let error = |index, reason: &str| TableDataInsertAllResponseInsertErrors {
            index: Some(index),
            errors: Some(vec![ErrorProto { reason: Some(reason.into()), message: Some(format!("{reason}!")), ..Default::default() }]),
        };
        let (stopped, refused) = split_insert_errors(&[error(0, "stopped"), error(1, "invalid"), error(2, "stopped")]);
        assert_eq!(stopped, [0, 2]);
        assert_eq!(refused, [(1, "invalid: invalid!".to_string())]);
    }

    #[test]
    fn insert_ids_are_stable_per_pane() {
        let pane = |index| Pane {
            key: "U".into(),
            window: crate::window::Window { start: 0, end: 60 },
            timing: crate::window::Timing::OnTime,
            index,
            is_last: false,
            value: None,
            computed_by: None,
        };
        assert_eq!(insert_id(&pane(0)), insert_id(&pane(0)));
        assert_ne!(insert_id(&pane(0)), insert_id(&pane(1)));
    }
}
