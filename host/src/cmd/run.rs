//! `runnel run --config FILE`: runs a pipeline file, with the admin server
//! beside it when the file has an `[admin]` table or `--admin` is given.

use anyhow::Result;
use std::path::Path;

use crate::admin::{AdminContext, AdminServer};
use crate::config::PipelineConfig;
use crate::pipeline::{Counters, Pipeline};

pub fn run(config: &Path, admin: Option<&str>) -> Result<Counters> {
    let cfg = PipelineConfig::load(config)?;
    let mut pipeline = Pipeline::from_config(&cfg)?;
    stop_on_signals(pipeline.stop_handle())?;
    let _admin = start_admin(&cfg, admin, &pipeline)?;
    let counters = pipeline.run()?;
    super::print_summary(&counters, pipeline.dead_letters());
    Ok(counters)
}

/// SIGTERM (what Cloud Run, GKE and systemd send before killing) or Ctrl-C
/// stops the run gracefully (see [`Pipeline::run`]); a second one exits at
/// once, with status 130.
pub fn stop_on_signals(stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (mut term, mut int) =
        rt.block_on(async { Ok::<_, std::io::Error>((signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?)) })?;
    std::thread::Builder::new().name("runnel-signals".into()).spawn(move || {
        rt.block_on(async move {
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            eprintln!("stopping after this batch (a second signal exits at once) ...");
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            eprintln!("second signal: exiting now");
            std::process::exit(130);
        })
    })?;
    Ok(())
}

/// Starts the admin server for `pipeline` if the config or `listen` asks for one.
pub fn start_admin(cfg: &PipelineConfig, listen: Option<&str>, pipeline: &Pipeline) -> Result<Option<AdminServer>> {
    if cfg.admin.is_none() && listen.is_none() {
        return Ok(None);
    }
    let admin = cfg.admin.clone().unwrap_or_default();
    let ctx = AdminContext {
        status: pipeline.status(),
        reload: pipeline.reload_handle(),
        files: pipeline.plugin_files().to_vec(),
        token: admin.token(),
        max_upload_bytes: admin.max_upload_mib << 20,
        allowed_hosts: admin.allowed_hosts.clone(),
        drain: pipeline.drain_handle(),
    };
    let server = AdminServer::start(listen.unwrap_or(&admin.listen), ctx)?;
    eprintln!("admin server on http://{} (GET /api/status, POST /api/reload, POST /api/drain)", server.addr());
    Ok(Some(server))
}
