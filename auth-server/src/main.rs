use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    auth_server::telemetry::init();
    let cli = auth_server::cli::Cli::parse();
    match auth_server::cli::run(
        cli,
        &mut auth_server::cli::StdinPassword,
        &mut std::io::stdout(),
    )
    .await
    {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("auth-server: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
