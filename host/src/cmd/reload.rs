//! `runnel reload`: asks a running pipeline (through its admin server) to
//! swap in new plugin versions, and prints what became of each.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

use crate::config::PipelineConfig;
use crate::plugin::reload::Outcome;

/// One outcome as the admin server answers it (`ReloadOutcome` on the wire).
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Answer {
    pub kind: String,
    pub plugin: String,
    pub outcome: Outcome,
    pub message: String,
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}: {}", self.kind, self.plugin, self.outcome, self.message)
    }
}

pub struct ReloadOptions {
    /// The running pipeline's file (its `[admin]` address and token).
    pub config: PathBuf,
    /// The admin server's address, if not the file's.
    pub admin: Option<String>,
    /// New versions to upload; with neither, the pipeline re-reads its
    /// plugin files.
    pub transform: Option<PathBuf>,
    pub aggregate: Option<PathBuf>,
}

/// Sends the request(s); returns each outcome as the server gave it.
pub fn run(opts: &ReloadOptions) -> Result<Vec<Answer>> {
    let (base, token) = admin_server(&opts.config, opts.admin.as_deref())?;
    let mut outcomes = Vec::new();
    let uploads: Vec<_> = [("transform", &opts.transform), ("aggregate", &opts.aggregate)]
        .into_iter()
        .filter_map(|(k, p)| p.as_ref().map(|p| (k, p)))
        .collect();
    if uploads.is_empty() {
        outcomes.extend(send(ureq::post(&format!("{base}/api/reload")), &token, None)?);
    }
    for (kind, path) in uploads {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let req = ureq::post(&format!("{base}/api/plugins/{kind}")).set("x-plugin-name", &name);
        outcomes.extend(send(req, &token, Some(&bytes))?);
    }
    Ok(outcomes)
}

/// The running pipeline's admin server (its base URL) and token, from its
/// pipeline file or `admin` (HOST:PORT or a URL).
pub fn admin_server(config: &Path, admin: Option<&str>) -> Result<(String, String)> {
    let cfg = PipelineConfig::load(config)?;
    let settings = cfg.admin.clone().unwrap_or_default();
    let address = admin.map(str::to_string).unwrap_or(settings.listen.clone());
    let base = if address.starts_with("http") { address } else { format!("http://{address}") };
    let token = settings
        .token()
        .context("no admin token: set RUNNEL_ADMIN_TOKEN (or [admin] token in the pipeline file) to the running pipeline's token")?;
    Ok((base, token))
}

fn send(req: ureq::Request, token: &str, body: Option<&[u8]>) -> Result<Vec<Answer>> {
    let v = post(req, token, body)?;
    let answers = if v.is_array() { serde_json::from_value(v) } else { serde_json::from_value(v).map(|a| vec![a]) };
    answers.context("the admin server's answer is not a list of outcomes: is it a runnel of the same version?")
}

/// Sends an authorised request to the admin server; its JSON answer (a
/// refusal's, 422, too: it lists outcomes).
pub fn post(req: ureq::Request, token: &str, body: Option<&[u8]>) -> Result<serde_json::Value> {
    let url = req.url().to_string();
    let req = req.set("authorization", &format!("Bearer {token}")).timeout(std::time::Duration::from_secs(90));
    let resp = match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    };
    let resp = match resp {
        Ok(r) => r,
        Err(ureq::Error::Status(422, r)) => r,
        Err(ureq::Error::Status(code, r)) => {
            let text = r.into_string().unwrap_or_default();
            let message =
                serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|v| v["error"].as_str().map(str::to_string)).unwrap_or(text);
            bail!("the admin server refused ({code}): {message}");
        }
        Err(e) => bail!("cannot reach the admin server at {url}: {e}; is `runnel run` running with an [admin] table (or --admin)?"),
    };
    resp.into_json().context("the admin server's answer is not JSON")
}
