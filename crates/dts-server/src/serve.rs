//! `dts serve`: opens the store, registers the bootstrap key, starts the engine and the API,
//! and shuts both down on SIGINT/SIGTERM (jobs stay in the store and resume at the next start).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use dts_api::{ApiContext, Throttle};
use dts_bus::BusSink;
use dts_core::AccountId;
use dts_engine::{Engine, EngineConfig, Families};
use dts_store::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::FileConfig;

#[derive(Args)]
pub struct ServeArgs {
    /// Address of the API.
    #[arg(long, env = "DTS_LISTEN")]
    listen: Option<SocketAddr>,
    /// Data directory: metadata store and the key that encrypts secrets.
    #[arg(long, env = "DTS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key; or `tls_cert` in the config).
    #[arg(long, env = "DTS_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "DTS_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// TOML config file (instances, regions, limits).
    #[arg(long, env = "DTS_CONFIG")]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DTS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Registers `DTS_SECRET_ID`/`DTS_SECRET_KEY` for the default account, or generates a first
/// key for an empty store and prints it once.
fn bootstrap_key(store: &Store) -> anyhow::Result<()> {
    match (std::env::var("DTS_SECRET_ID"), std::env::var("DTS_SECRET_KEY")) {
        (Ok(id), Ok(key)) if !id.is_empty() && !key.is_empty() => {
            store.ensure_key(AccountId::DEFAULT, &id, &key)?;
            tracing::info!(secret_id = %id, "API key from the environment registered for account default");
        }
        _ if store.key_count()? == 0 => {
            let key = store.create_key(AccountId::DEFAULT)?;
            println!("Created the first API key (account default); it is shown only this once:");
            println!("  SecretId:  {}", key.secret_id);
            println!("  SecretKey: {}", key.secret_key);
        }
        _ => {}
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("install SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(&args.log_format);
    let file = FileConfig::load(args.config.as_deref())?;
    let listen = args.listen.or(file.listen).unwrap_or_else(|| "127.0.0.1:9860".parse().expect("valid default"));
    let data_dir = args.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("./dts-data"));
    let tls = match (args.tls_cert.or(file.tls_cert), args.tls_key.or(file.tls_key)) {
        (Some(cert), Some(key)) => Some(crate::tls::server_config(&cert, &key)?),
        (None, None) => None,
        _ => anyhow::bail!("HTTPS needs both a certificate and a key (--tls-cert and --tls-key)"),
    };
    let store =
        Arc::new(Store::open(&data_dir).with_context(|| format!("cannot open the store in {}", data_dir.display()))?);
    bootstrap_key(&store)?;

    let wake = Arc::new(Notify::new());
    let shutdown = CancellationToken::new();
    let mysql = dts_mysql::MySqlConnector::default()
        .with_full_load_settings(file.full_load.settings())
        .with_replication_settings(file.replication.settings());
    let (bus, sink_options) = file.change_bus.settings()?;
    let families = Families::new(mysql).with_change_sink(Box::new(BusSink::new(bus.clone(), sink_options)));
    let engine = Engine::new(store.clone(), families, file.instances.clone(), wake.clone(), EngineConfig::default());
    let engine_task = tokio::spawn(engine.run(shutdown.clone()));

    let mut ctx = ApiContext::new(store, file.instances, wake);
    if let Some(regions) = file.regions {
        ctx.regions = regions;
    }
    ctx.change_bus = Some(dts_api::subscription::ChangeBusView::new(bus));
    ctx.throttle = Throttle::new(file.limits.requests_per_second, file.limits.describe_requests_per_second);
    let app = dts_api::router(Arc::new(ctx));
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%listen, scheme, data_dir = %data_dir.display(), "dts serve ready");
    match tls {
        Some(config) => crate::tls::serve(listener, config, app, shutdown_signal()).await?,
        None => axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?,
    }
    shutdown.cancel();
    let _ = engine_task.await;
    tracing::info!("dts serve stopped");
    Ok(())
}
