use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser as _;
use secrecy::ExposeSecret as _;
use tokenlab_core::Clock as _;
use tokenlab_server::config::{Cli, Command, DpopCommand, KeysCommand, Profile, Settings};
use tokenlab_server::keys::files;
use tokenlab_server::proof_cli;
use tokenlab_server::secrets::OsSecrets;
use tokenlab_server::{Application, app::DEMO_USERNAME, clock::SystemClock};
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

// Every request allocates a few hundred small blocks (headers, extensions, boxed futures, the
// session record); glibc's malloc spent about a quarter of a session call's instructions on
// them (#14). mimalloc's thread-local free lists do the same for less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // `RUST_LOG` as `target=level` pairs. A `Targets` filter, not an `EnvFilter`: the latter
    // looks every span up in a map as it is entered and left, in case a directive names a span
    // field, and every request enters its span several times — a cost on the cheapest request of
    // all (`just loadtest`'s middleware ratio) for a feature tokenlab does not use.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| {
            Targets::new()
                .with_default(tracing::Level::INFO)
                .with_target("sqlx", tracing::Level::WARN)
                .with_target("sea_orm", tracing::Level::WARN)
                // tower-sessions opens an info span around every request and every session load,
                // nested in tokenlab's own request span. With the scheme checks' spans (at debug
                // now) they cost a session call about 13 000 of its 146 000 instructions (#14).
                // Its errors come out as tokenlab's.
                .with_target("tower_sessions", tracing::Level::WARN)
                .with_target("tower_sessions_core", tracing::Level::WARN)
        });
    let logs = tracing_subscriber::fmt::layer()
        .fmt_fields(tokenlab_server::observe::PlainFields)
        // Logs go to stderr: stdout carries the `listening on` contract (see `announce`).
        .with_writer(std::io::stderr)
        // Colour for a person at a terminal; plain text for a file or a log collector.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    tracing_subscriber::registry().with(logs.with_filter(filter)).init();
    match Cli::parse().command {
        Command::Serve(settings) => serve(*settings).await,
        Command::Keys(KeysCommand::Generate { dir }) => generate_keys(&dir),
        Command::Dpop(command) => dpop(command),
    }
}

#[allow(clippy::print_stdout)]
fn dpop(command: DpopCommand) -> ExitCode {
    let printed = match command {
        DpopCommand::Key { out } => proof_cli::generate_key(&out, &OsSecrets),
        DpopCommand::Proof { key, method, url, access_token, nonce, clock_offset, iat } => {
            proof_cli::load_key(&key).and_then(|key| {
                let request = proof_cli::ProofRequest {
                    method: &method,
                    url: &url,
                    iat: iat.unwrap_or_else(|| {
                        SystemClock.now().unix_timestamp().saturating_add(clock_offset)
                    }),
                    access_token: access_token.as_deref(),
                    nonce: nonce.as_deref(),
                };
                proof_cli::proof(&key, &request, &OsSecrets)
            })
        }
    };
    match printed {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> ExitCode {
    // The demo password is published (it is the lab's); announcing it is the point.
    let demo_password = (settings.profile == Profile::Demo)
        .then(|| settings.demo_password.expose_secret().to_owned());
    let app = match Application::build(settings, Arc::new(SystemClock)).await {
        Ok(app) => app,
        Err(err) => {
            tracing::error!("cannot start: {err}");
            return ExitCode::FAILURE;
        }
    };
    let addr = match app.local_addr() {
        Ok(addr) => addr,
        Err(err) => {
            tracing::error!("cannot read the bound address: {err}");
            return ExitCode::FAILURE;
        }
    };
    announce(&addr.to_string(), demo_password.as_deref());
    match app.run_until(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("server failed: {err}");
            ExitCode::FAILURE
        }
    }
}

fn generate_keys(dir: &std::path::Path) -> ExitCode {
    match files::generate(dir, SystemClock.now(), &OsSecrets) {
        Ok(generated) => {
            report_generated(&generated);
            ExitCode::SUCCESS
        }
        Err(err) => {
            tracing::error!("cannot generate keys: {err}");
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout)]
fn report_generated(generated: &files::Generated) {
    println!("signing key {} written to {}", generated.kid, generated.signing_file.display());
    if let Some(file) = &generated.refresh_key_file {
        println!("refresh-derivation key written to {}", file.display());
    }
    println!("restart every instance to sign with it; older keys keep verifying until removed");
}

/// The first stdout line is a contract: scripts and tests wait for `listening on http://HOST:PORT`.
#[allow(clippy::print_stdout)]
fn announce(addr: &str, demo_password: Option<&str>) {
    println!("listening on http://{addr}");
    if let Some(password) = demo_password {
        println!("demo account: {DEMO_USERNAME} / {password}");
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for ctrl-c: {err}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!("cannot listen for SIGTERM: {err}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
