//! The command line: `resource-api [--config FILE] [serve|openapi]`.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use service_kit::telemetry::{LogFormat, TraceExport, init_telemetry};

use crate::{Application, Settings};

#[derive(Parser)]
#[command(name = "resource-api", version, about = "The players API")]
pub struct Cli {
    /// TOML configuration file (layered over defaults, under `.env` and `API_*` variables).
    #[arg(long, global = true, env = "API_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Print the OpenAPI document (JSON) and exit.
    Openapi,
}

/// Runs the command line; the exit code says how it went.
pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    let loaded = match service_kit::config::load_settings::<Settings>(cli.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("resource-api: {err}");
            return ExitCode::from(2);
        }
    };
    // The exporter is part of the log subscriber: it starts with logging, once the settings
    // say where to (`otlp_endpoint`), for `serve` only.
    let traces = match cli.command {
        None | Some(Command::Serve) => {
            TraceExport::from_setting(loaded.settings.otlp_endpoint.as_deref(), "resource-api")
        }
        Some(Command::Openapi) => None,
    };
    let _telemetry = init_telemetry(LogFormat::from_env(), traces);
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let settings = loaded.settings;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi => {
            println!("{}", crate::api::spec_document(&settings));
            ExitCode::SUCCESS
        }
        Command::Serve => serve(settings).await,
    }
}

async fn serve(settings: Settings) -> ExitCode {
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(err) => {
            tracing::error!(error = %err, "could not start");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "server stopped");
            ExitCode::FAILURE
        }
    }
}
