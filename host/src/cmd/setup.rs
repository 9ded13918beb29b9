//! `runnel setup --config FILE`: creates, idempotently, the cloud resources a
//! pipeline file names: the Pub/Sub topic and pull subscription, the
//! BigQuery dataset and table. Prints what it created and what existed.

use anyhow::{anyhow, Context, Result};
use std::path::Path;

use gcp_bigquery_client::model::dataset::Dataset;
use gcp_bigquery_client::model::table::Table;
use gcp_bigquery_client::model::table_field_schema::TableFieldSchema;
use gcp_bigquery_client::model::table_schema::TableSchema;

use crate::cloud::{bigquery_already_exists, pubsub_already_exists, Cloud};
use crate::config::{BigQueryTable, PipelineConfig, SinkConfig, SourceConfig};

/// The table schema a pipeline's rows need.
pub fn table_schema(sink: &SinkConfig, table: &BigQueryTable) -> TableSchema {
    let value = match table.value_type.to_ascii_uppercase().as_str() {
        "FLOAT" | "FLOAT64" => TableFieldSchema::float(&sink.value_column),
        "STRING" => TableFieldSchema::string(&sink.value_column),
        _ => TableFieldSchema::integer(&sink.value_column),
    };
    let mut fields = vec![TableFieldSchema::string(&sink.key_column), value];
    if table.window_columns {
        fields.push(TableFieldSchema::timestamp("window_start"));
        fields.push(TableFieldSchema::timestamp("window_end"));
        fields.push(TableFieldSchema::string("timing"));
        fields.push(TableFieldSchema::integer("pane_index"));
    }
    TableSchema::new(fields)
}

/// Says what a create call did; `exists` tells "it was there" apart from a
/// real failure, by the error's code.
fn report<T, E: std::fmt::Display>(what: &str, result: Result<T, E>, exists: fn(&E) -> bool) -> Result<()> {
    match result {
        Ok(_) => println!("created  {what}"),
        Err(e) if exists(&e) => println!("exists   {what}"),
        Err(e) => return Err(anyhow!("cannot create {what}: {e}")),
    }
    Ok(())
}

pub fn run(config: &Path) -> Result<()> {
    let cfg = PipelineConfig::load(config)?;
    let cloud = Cloud::resolve(&cfg.cloud)?;
    let rt = crate::cloud::runtime()?;
    rt.block_on(async {
        if let SourceConfig::Pubsub { subscription, topic, ack_deadline_s, .. } = &cfg.source {
            let topic = topic.as_deref().context("[source] needs topic = \"...\" for runnel setup to create the subscription on it")?;
            let admin = cloud.topic_admin().await?;
            let r = admin.create_topic().set_name(cloud.topic_path(topic)).send().await;
            report(&format!("Pub/Sub topic {}", cloud.topic_path(topic)), r, pubsub_already_exists)?;
            let subs = cloud.subscription_admin().await?;
            let r = subs
                .create_subscription()
                .set_name(cloud.subscription_path(subscription))
                .set_topic(cloud.topic_path(topic))
                .set_ack_deadline_seconds(*ack_deadline_s)
                .send()
                .await;
            report(&format!("Pub/Sub pull subscription {}", cloud.subscription_path(subscription)), r, pubsub_already_exists)?;
        }
        if let Some(topic) = &cfg.dead_letters.topic {
            let admin = cloud.topic_admin().await?;
            let r = admin.create_topic().set_name(cloud.topic_path(topic)).send().await;
            report(&format!("Pub/Sub dead-letter topic {}", cloud.topic_path(topic)), r, pubsub_already_exists)?;
        }
        if let Some(t) = cfg.sink.bigquery() {
            let (dataset, table) = (&t.dataset, &t.table);
            let bq = cloud.bigquery().await?;
            let r = bq.dataset().create(Dataset::new(&cloud.project, dataset)).await;
            report(&format!("BigQuery dataset {}.{dataset}", cloud.project), r, bigquery_already_exists)?;
            let r = bq.table().create(Table::new(&cloud.project, dataset, table, table_schema(&cfg.sink, t))).await;
            report(&format!("BigQuery table {}.{dataset}.{table}", cloud.project), r, bigquery_already_exists)?;
        }
        Ok(())
    })
}
