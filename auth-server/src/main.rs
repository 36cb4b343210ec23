use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    auth_server::cli::main(auth_server::cli::Cli::parse()).await
}
