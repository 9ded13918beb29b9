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
//! - 429 and 5xx answers are retried with exponential backoff (100 ms
//!   doubling, at most 8 tries); then the write fails and the pipeline stops
//!   without acknowledging its input.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{Map, Value as Json};
use std::time::Duration;

use gcp_bigquery_client::model::table_data_insert_all_request::TableDataInsertAllRequest;
use gcp_bigquery_client::model::table_data_insert_all_request_rows::TableDataInsertAllRequestRows;

use super::{row, Columns, Provenance, RejectedRow, Sink};
use crate::cloud::Cloud;
use crate::window::Pane;

const MAX_ROWS: usize = 500;
const MAX_BYTES: usize = 9 << 20;
const MAX_TRIES: u32 = 8;

/// A column of the destination table.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    /// BigQuery's type name (STRING, INTEGER, FLOAT, TIMESTAMP, ...).
    pub kind: String,
    pub required: bool,
}

pub struct BigQuerySink {
    rt: tokio::runtime::Runtime,
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
            let t = client
                .table()
                .get(&cloud.project, dataset, table, None)
                .await
                .map_err(|e| anyhow!("{e}"))
                .with_context(|| {
                    format!(
                        "cannot read table {}.{dataset}.{table}: create it with `runnel setup --config FILE`",
                        cloud.project
                    )
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
        let mut r = row(pane, provenance, &self.columns);
        r.remove("plugins");
        r.remove("is_last");
        if !self.window_columns {
            for c in ["window_start", "window_end", "timing", "pane_index"] {
                r.remove(c);
            }
        }
        r
    }
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

fn retryable(err: &str) -> bool {
    ["429", "500", "502", "503", "504", "rate limit", "backendError", "timed out", "connection"]
        .iter()
        .any(|s| err.contains(s))
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
                rejected.push(RejectedRow {
                    pane: i,
                    reason: format!("BigQuery row refused: {reason}"),
                    row: Json::Object(r).to_string(),
                });
                continue;
            }
            let size = Json::Object(r.clone()).to_string().len() + 64;
            let current = batches.last_mut().expect("never empty");
            if current.len() >= MAX_ROWS || bytes + size > MAX_BYTES {
                batches.push(Vec::new());
                bytes = 0;
            }
            bytes += size;
            batches.last_mut().expect("never empty").push(TableDataInsertAllRequestRows {
                insert_id: Some(insert_id(pane)),
                json: Json::Object(r),
            });
        }
        for rows in batches.into_iter().filter(|b| !b.is_empty()) {
            let n = rows.len() as u64;
            let mut retried = 0;
            let response = self.rt.block_on(async {
                let mut delay = Duration::from_millis(100);
                let mut tries = 0;
                loop {
                    let mut request = TableDataInsertAllRequest::new();
                    request.add_rows(rows.clone()).map_err(|e| anyhow!("{e}"))?;
                    match self.client.tabledata().insert_all(&self.project, &self.dataset, &self.table, request).await {
                        Ok(r) => return Ok(r),
                        Err(e) => {
                            let text = e.to_string();
                            tries += 1;
                            if tries >= MAX_TRIES || !retryable(&text) {
                                bail!(
                                    "writing {n} rows to {}.{}.{} failed after {tries} tries: {text}",
                                    self.project,
                                    self.dataset,
                                    self.table
                                );
                            }
                            tracing::warn!(tries, "BigQuery insertAll failed, retrying in {delay:?}: {text}");
                            retried += 1;
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(Duration::from_secs(10));
                        }
                    }
                }
            });
            self.retried += retried;
            let response = response?;
            // Rows BigQuery itself refused.
            let mut refused = 0;
            if let Some(errors) = response.insert_errors {
                for e in errors {
                    refused += 1;
                    let reason = e
                        .errors
                        .iter()
                        .flatten()
                        .map(|p| format!("{}: {}", p.reason.clone().unwrap_or_default(), p.message.clone().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join("; ");
                    let pos = e.index.unwrap_or(-1).max(0) as usize;
                    rejected.push(RejectedRow {
                        pane: usize::MAX,
                        reason: format!("BigQuery refused row {pos}: {reason}"),
                        row: rows.get(pos).map(|r| r.json.to_string()).unwrap_or_default(),
                    });
                }
            }
            self.written += n - refused;
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
