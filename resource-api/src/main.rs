//! `resource-api`: see `resource_api::cli`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    resource_api::cli::run().await
}
