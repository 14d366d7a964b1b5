//! `dstack server`: start the server and serve until SIGINT or SIGTERM.

use std::path::PathBuf;

use dstack_core::server::{Server, ServerOptions};

use crate::CliError;
use crate::cli::ServerArgs;

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

pub(crate) fn run(args: &ServerArgs) -> Result<(), CliError> {
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "dstack_core={0},dstack={0}",
        args.log_level
    ))
    .map_err(|e| CliError::Invalid(format!("invalid --log-level `{}`: {e}", args.log_level)))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(serve(args))
}

async fn serve(args: &ServerArgs) -> Result<(), CliError> {
    let options = ServerOptions {
        host: args.host.clone(),
        port: args.port,
        admin_token: args.token.clone(),
        server_dir: args
            .dir
            .clone()
            .unwrap_or_else(|| home().join(".dstack").join("server")),
        database_url: args.database_url.clone(),
        cli_config: Some(home().join(".dstack").join("config.yml")),
        runner_exe: std::env::current_exe().ok(),
        upload_limit: args.upload_limit,
        jobs: dstack_core::server::JobIsolation {
            no_sandbox: args.no_sandbox,
            allow_unsandboxed: args.allow_unsandboxed_jobs,
        },
        proxy: dstack_core::server::ProxyOptions {
            connect_timeout: std::time::Duration::from_secs(args.service_timeout),
            read_timeout: std::time::Duration::from_secs(args.service_timeout),
            max_body_bytes: args.proxy_max_body,
            threads: args.proxy_threads,
            client: dstack_core::proxy::ClientLimits {
                header_timeout: seconds(args.proxy_header_timeout),
                idle_timeout: seconds(args.proxy_idle_timeout),
                max_connections_per_client: Some(args.proxy_max_client_connections)
                    .filter(|&n| n > 0),
                max_header_bytes: args.proxy_max_header_size,
                max_headers: args.proxy_max_headers,
            },
        },
    };
    let server = Server::bind(options)
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let url = server.url_for(&args.host);
    println!("The admin token is \"{}\"", server.admin_token());
    if let Some(problem) = server.sandbox_problem() {
        let who = if args.allow_unsandboxed_jobs {
            "every member may run them (--allow-unsandboxed-jobs)"
        } else {
            "only global admins may run jobs (--allow-unsandboxed-jobs lets every member)"
        };
        tracing::warn!("jobs are not fully isolated: {problem}; {who}");
    }
    println!("The server is running at {url}/");
    server
        .serve(shutdown_signal())
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?;
    tracing::info!("the server stopped");
    Ok(())
}

/// A timeout in seconds from a flag; 0 for none.
fn seconds(secs: u64) -> Option<std::time::Duration> {
    (secs > 0).then(|| std::time::Duration::from_secs(secs))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
