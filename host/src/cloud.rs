//! Google Cloud endpoints and credentials, for the real services or their
//! local emulators.
//!
//! - project: `[cloud] project`, else `GOOGLE_CLOUD_PROJECT`;
//! - Pub/Sub: `[cloud] pubsub_endpoint`, else `PUBSUB_EMULATOR_HOST`
//!   (`host:port` of the emulator), else Google's endpoint;
//! - BigQuery: `[cloud] bigquery_endpoint`, else `BIGQUERY_EMULATOR_HOST`,
//!   else Google's endpoint.
//!
//! Against Google's endpoints the clients use Application Default
//! Credentials (`gcloud auth application-default login`, or a service
//! account); against an emulator, anonymous credentials.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use google_cloud_pubsub::client::{Publisher, Subscriber, SubscriptionAdmin, TopicAdmin};

/// `[cloud]` in a pipeline file.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CloudConfig {
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub pubsub_endpoint: Option<String>,
    #[serde(default)]
    pub bigquery_endpoint: Option<String>,
}

/// Resolved endpoints.
#[derive(Clone, Debug)]
pub struct Cloud {
    pub project: String,
    /// `Some(http://host:port)` for an emulator.
    pub pubsub_emulator: Option<String>,
    pub bigquery_emulator: Option<String>,
}

/// The endpoints, resolved the first time a part of a pipeline needs them
/// and then shared (a pipeline without cloud parts never asks for a project).
pub struct CloudOnce<'a> {
    cfg: &'a CloudConfig,
    cloud: Option<Cloud>,
}

impl<'a> CloudOnce<'a> {
    pub fn new(cfg: &'a CloudConfig) -> Self {
        Self { cfg, cloud: None }
    }

    pub fn get(&mut self) -> Result<&Cloud> {
        let cloud = match self.cloud.take() {
            Some(cloud) => cloud,
            None => Cloud::resolve(self.cfg)?,
        };
        Ok(self.cloud.insert(cloud))
    }
}

fn as_url(host: &str) -> String {
    if host.starts_with("http://") || host.starts_with("https://") {
        host.trim_end_matches('/').to_string()
    } else {
        format!("http://{host}")
    }
}

impl Cloud {
    pub fn resolve(cfg: &CloudConfig) -> Result<Self> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let project = cfg.project.clone().or_else(|| env("GOOGLE_CLOUD_PROJECT")).or_else(|| env("RUNNEL_TEST_PROJECT"));
        let Some(project) = project else {
            bail!(
                "no Google Cloud project: set [cloud] project = \"...\" in the pipeline file or \
                 export GOOGLE_CLOUD_PROJECT"
            );
        };
        Ok(Self {
            project,
            pubsub_emulator: cfg.pubsub_endpoint.clone().or_else(|| env("PUBSUB_EMULATOR_HOST")).map(|h| as_url(&h)),
            bigquery_emulator: cfg.bigquery_endpoint.clone().or_else(|| env("BIGQUERY_EMULATOR_HOST")).map(|h| as_url(&h)),
        })
    }

    pub fn topic_path(&self, topic: &str) -> String {
        format!("projects/{}/topics/{topic}", self.project)
    }

    pub fn subscription_path(&self, subscription: &str) -> String {
        format!("projects/{}/subscriptions/{subscription}", self.project)
    }

    fn anonymous() -> google_cloud_auth::credentials::Credentials {
        google_cloud_auth::credentials::anonymous::Builder::new().build()
    }

    pub async fn subscriber(&self) -> Result<Subscriber> {
        let mut b = Subscriber::builder();
        if let Some(url) = &self.pubsub_emulator {
            b = b.with_endpoint(url.clone()).with_credentials(Self::anonymous());
        }
        b.build().await.context("cannot create the Pub/Sub subscriber")
    }

    pub async fn publisher(&self, topic: &str) -> Result<Publisher> {
        let mut b = Publisher::builder(self.topic_path(topic));
        if let Some(url) = &self.pubsub_emulator {
            b = b.with_endpoint(url.clone()).with_credentials(Self::anonymous());
        }
        b.build().await.context("cannot create the Pub/Sub publisher")
    }

    pub async fn topic_admin(&self) -> Result<TopicAdmin> {
        let mut b = TopicAdmin::builder();
        if let Some(url) = &self.pubsub_emulator {
            b = b.with_endpoint(url.clone()).with_credentials(Self::anonymous());
        }
        b.build().await.context("cannot create the Pub/Sub admin client")
    }

    pub async fn subscription_admin(&self) -> Result<SubscriptionAdmin> {
        let mut b = SubscriptionAdmin::builder();
        if let Some(url) = &self.pubsub_emulator {
            b = b.with_endpoint(url.clone()).with_credentials(Self::anonymous());
        }
        b.build().await.context("cannot create the Pub/Sub admin client")
    }

    pub async fn bigquery(&self) -> Result<gcp_bigquery_client::Client> {
        match &self.bigquery_emulator {
            Some(url) => gcp_bigquery_client::client_builder::ClientBuilder::new()
                .with_v2_base_url(format!("{url}/bigquery/v2"))
                .build_from_authenticator(Arc::new(NoAuth))
                .await
                .context("cannot create the BigQuery client for the emulator"),
            None => gcp_bigquery_client::client_builder::ClientBuilder::new().build_from_application_default_credentials().await.context(
                "cannot create the BigQuery client: no Application Default Credentials \
                     (run `gcloud auth application-default login`, or set BIGQUERY_EMULATOR_HOST \
                     for the local emulator)",
            ),
        }
    }
}

/// The emulator takes any token.
#[derive(Clone)]
struct NoAuth;

#[async_trait::async_trait]
impl gcp_bigquery_client::auth::Authenticator for NoAuth {
    async fn access_token(&self) -> Result<String, gcp_bigquery_client::error::BQError> {
        Ok("emulator".into())
    }
}

/// Whether a Pub/Sub call failed because the resource exists already
/// (idempotent setup): by the gRPC code, or the HTTP status over REST.
pub fn pubsub_already_exists(err: &google_cloud_pubsub::Error) -> bool {
    use google_cloud_gax::error::rpc::Code;
    err.status().is_some_and(|s| s.code == Code::AlreadyExists) || err.http_status_code() == Some(409)
}

/// Whether a BigQuery call failed because the resource exists already.
pub fn bigquery_already_exists(err: &gcp_bigquery_client::error::BQError) -> bool {
    matches!(err, gcp_bigquery_client::error::BQError::ResponseError { error } if error.error.code == 409)
}

/// The one async runtime the cloud clients share (the Pub/Sub source, the
/// BigQuery sink, the dead-letter topic, the commands): the pipeline itself
/// is synchronous and calls in with `block_on`. Two workers: the source's
/// stream task and the clients' lease and flush loops run while the
/// pipeline thread waits in another client's call. Never dropped.
pub fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("runnel-cloud")
        .enable_all()
        .build()
        .context("cannot start the async runtime for the Google Cloud clients")?;
    // Two threads racing here: one runtime wins, the other is dropped unused.
    Ok(RUNTIME.get_or_init(|| rt))
}
