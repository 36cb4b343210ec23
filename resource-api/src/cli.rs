//! The command line: `resource-api [--config FILE] [serve|openapi]`.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::{Application, Settings, telemetry};

#[derive(Parser)]
#[command(name = "resource-api", version, about = "The players API")]
pub struct Cli {
    /// TOML configuration file (layered over defaults, under `API_*` environment variables).
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
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("resource-api: {err}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi => match crate::api::spec_document(&settings) {
            Ok(spec) => {
                println!("{spec}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("resource-api: {err}");
                ExitCode::from(2)
            }
        },
        Command::Serve => serve(settings).await,
    }
}

async fn serve(settings: Settings) -> ExitCode {
    // LOG_FORMAT=json works for both services; `log_format` in the config is the same knob.
    let format = match std::env::var("LOG_FORMAT").as_deref() {
        Ok("json") => crate::config::LogFormat::Json,
        Ok("text") => crate::config::LogFormat::Text,
        _ => settings.log_format,
    };
    telemetry::init_tracing(format);
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
