//! `axum-api`: the scouting notes example. Settings from `NOTES_*` environment variables.

use axum_api::{Application, Settings};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let started = async {
        let app = Application::build(Settings::from_env()?).await?;
        println!("scouting notes API on http://127.0.0.1:{}", app.port());
        Ok::<_, axum_api::StartupError>(app)
    };
    match started.await {
        Ok(app) => match app.run_until_stopped().await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(err) => {
                tracing::error!(error = %err, "the server failed");
                std::process::ExitCode::FAILURE
            }
        },
        Err(err) => {
            eprintln!("axum-api: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
