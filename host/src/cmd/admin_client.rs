//! The command line's client of a running pipeline's admin server
//! (`runnel reload`, `runnel drain`, `runnel status`): where it listens,
//! its token, and an authorised request.

use anyhow::{bail, Context, Result};
use std::path::Path;

use crate::config::PipelineConfig;

/// The base URL of an admin server given as HOST:PORT or as a URL.
pub fn base_url(address: &str) -> String {
    if address.starts_with("http") {
        address.to_string()
    } else {
        format!("http://{address}")
    }
}

/// The running pipeline's admin server (its base URL) and token, from its
/// pipeline file or `admin` (HOST:PORT or a URL).
pub fn connect(config: &Path, admin: Option<&str>) -> Result<(String, String)> {
    let cfg = PipelineConfig::load(config)?;
    let settings = cfg.admin.clone().unwrap_or_default();
    let address = admin.map(str::to_string).unwrap_or(settings.listen.clone());
    let base = base_url(&address);
    let token = settings
        .token()
        .context("no admin token: set RUNNEL_ADMIN_TOKEN (or [admin] token in the pipeline file) to the running pipeline's token")?;
    Ok((base, token))
}

/// Sends an authorised request to the admin server; its JSON answer, a
/// 422's too (a refused reload answers with its outcomes).
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
