//! `pipewright serve --config FILE`: the build server (webhooks, queue, API and dashboard), until
//! SIGTERM or Ctrl-C.
//!
//! The config is read by [`server_config`] before the async runtime starts: its `env:` secrets leave
//! the environment while the process still has one thread.

use std::path::PathBuf;

use clap::Args;

use super::error::{CliError, Outcome};
use crate::io::store::Store;
use crate::server::config::ServerConfig;

#[derive(Args, Debug)]
pub(super) struct ServeArgs {
    /// The server's config file (listen address, repositories, tokens, secrets)
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Data directory [default: the config's `dataDir`, else $PIPEWRIGHT_DATA_DIR, else
    /// ~/.local/share/pipewright]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Listen here instead of the config's `listen`
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
}

/// Loads the server's config and moves its `env:` secrets from the environment into it. Runs on the
/// main thread before the async runtime exists: no other thread can be reading the environment.
pub(super) fn server_config(args: &ServeArgs) -> Result<ServerConfig, CliError> {
    let label = args.config.display().to_string();
    let bytes = std::fs::read(&args.config).map_err(|e| CliError::unable(format!("cannot read `{label}`: {e}")))?;
    let mut config = crate::server::config::load(&label, &bytes).map_err(|diagnostics| {
        CliError::unable(format!("{label}: the server config has problems")).with_detail(diagnostics.to_string())
    })?;
    let vars = config.capture_environment();
    // SAFETY: `main` has not started the runtime or any other thread yet.
    unsafe { crate::io::secrets::scrub_environment(&vars) };
    Ok(config)
}

pub(super) async fn serve(args: ServeArgs, mut config: ServerConfig) -> Result<Outcome, CliError> {
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let data_dir = args.data_dir.or_else(|| config.data_dir.clone()).unwrap_or_else(Store::default_root);
    let on_lifecycle = |event| match event {
        crate::server::Lifecycle::Listening(addr) => eprintln!("pipewright serve: listening on http://{addr}"),
        crate::server::Lifecycle::Stopping => {
            eprintln!("pipewright serve: stopping (running builds are cancelled and cleaned up)")
        }
    };
    crate::server::serve(config, data_dir, on_lifecycle).await.map_err(|e| CliError::unable(crate::error_chain(&e)))?;
    Ok(Outcome::Success)
}
