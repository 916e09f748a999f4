//! `depot serve`: the registry on one process, with the first-start demo data, the banner,
//! the background purge and a graceful shutdown.

use crate::http::{Timeouts, serve as serve_http};
use depot::config::{Config, StoreConfig};
use depot::delivery::webhooks::{RetryPolicy, Webhooks};
use depot::registry::PURGE_BATCH;
use depot::telemetry::init_logging;
use depot::{Serving, registry, router};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

pub async fn serve(config: Config) -> ExitCode {
    init_logging();
    let store = match config.store.config() {
        Ok(store) => store,
        Err(e) => {
            eprintln!("depot serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    let serving = Serving {
        transfers: config.transfers.clone(),
        public_url: config.public_url.clone(),
        commit_inline_max: None,
        identity: config.identity.clone(),
        metrics_endpoint: config.metrics,
    };
    let registry = match registry(&store, &serving).await {
        Ok(r) => Arc::new(r),
        Err(e) => {
            eprintln!(
                "depot serve: cannot open the store ({}): {e}",
                store.describe()
            );
            return ExitCode::FAILURE;
        }
    };
    let demo = match registry.admin().bootstrap_demo().await {
        Ok(demo) => demo,
        Err(e) => {
            eprintln!("depot serve: cannot create the demo data: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("depot serve: cannot listen on {}: {e}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    let bound = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let base = match &config.public_url {
        Some(_) => config.base_url(),
        None => format!("http://{bound}"),
    };
    print_banner(&base, &store, demo.as_ref());
    if config.purge_interval > 0 {
        tokio::spawn(purge_loop(
            registry.clone(),
            std::time::Duration::from_secs(config.purge_interval),
            config.events.audit_retention_days,
        ));
    }
    tokio::spawn(count_loop(registry.clone()));
    if let Some(hooks) = registry.hook_store_of() {
        let retry = RetryPolicy {
            first: config.events.hook_retry_first,
            ..RetryPolicy::default()
        };
        let webhooks = Webhooks::new(hooks.clone(), retry).with_metrics(registry.metrics_handle());
        tokio::spawn(webhooks.run(config.events.hook_interval));
    }
    let timeouts = Timeouts {
        header: Duration::from_secs(config.header_timeout),
        body_idle: Duration::from_secs(config.body_idle_timeout),
    };
    let served = serve_http(
        listener,
        router(registry.clone()),
        timeouts,
        shutdown_signal(),
    )
    .await;
    // Downloads counted and not yet written go with the process unless written now.
    registry.flush_downloads(true).await;
    if let Err(e) = served {
        eprintln!("depot serve: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Write download counts that waited a minute for a download to carry them.
async fn count_loop(registry: Arc<depot::Registry>) {
    let mut ticks = tokio::time::interval(depot::registry::FLUSH_EVERY);
    loop {
        ticks.tick().await;
        registry.flush_downloads(false).await;
    }
}

/// Run the cleanup policies that are due, then remove the bytes and records of deleted
/// packages every `every`, the same purge the AWS shape runs on a schedule; and the staged
/// bytes of abandoned upload sessions (what the bucket's lifecycle rule does on AWS).
async fn purge_loop(registry: Arc<depot::Registry>, every: Duration, keep_days: u32) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        match registry.run_due_cleanups().await {
            Ok(done) if done.packages + done.files > 0 => {
                tracing::info!(
                    packages = done.packages,
                    files = done.files,
                    "cleanup policies ran"
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "cleanup policies failed; retrying at the next interval")
            }
        }
        let retention_start =
            depot::domain::Timestamp::now().plus_seconds(-86_400 * i64::from(keep_days));
        match registry.meta().forget_events(retention_start).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(forgotten = n, "events older than the audit retention"),
            Err(e) => tracing::error!(error = %e, "forgetting old events failed"),
        }
        match registry.expire_uploads().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "expired staged uploads"),
            Err(e) => tracing::error!(error = %e, "expiring staged uploads failed"),
        }
        loop {
            match registry.purge(PURGE_BATCH).await {
                Ok(p) if p.packages + p.files == 0 => break,
                Ok(_) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "purge failed; retrying at the next interval");
                    break;
                }
            }
        }
    }
}

/// The `depot admin` flags that reach the same store.
fn admin_flags(store: &StoreConfig) -> String {
    match store {
        StoreConfig::Local { data_dir } => format!("--data-dir {}", data_dir.display()),
        StoreConfig::Aws { table, bucket, .. } => {
            format!("--store aws --table {table} --bucket {bucket}")
        }
    }
}

fn print_banner(base: &str, store: &StoreConfig, demo: Option<&depot::admin::Demo>) {
    println!("depot is serving {base} ({})", store.describe());
    match demo {
        Some(demo) => {
            let url = format!(
                "{base}/api/v4/projects/{}/packages/generic/my_package/0.0.1/file.txt",
                demo.project.id
            );
            println!();
            println!(
                "First start: created group \"demo\", project \"{}\" (id {}), user \"{}\" (group owner)",
                demo.project.path_with_namespace, demo.project.id, demo.user.username
            );
            println!("and a personal access token with api scope (shown only this once):");
            println!();
            println!("  {}", demo.token);
            println!();
            println!("Browse it: {base}/ (sign in with this token)");
            println!("Upload a file:");
            println!("  echo 'hello depot' > file.txt");
            println!(
                "  curl --header \"PRIVATE-TOKEN: {}\" --upload-file file.txt \"{url}\"",
                demo.token
            );
            println!("Download it:");
            println!(
                "  curl --header \"PRIVATE-TOKEN: {}\" \"{url}\"",
                demo.token
            );
        }
        None => {
            println!(
                "New token: depot admin {} token create personal --user <user> --scopes api",
                admin_flags(store)
            );
        }
    }
    println!();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
