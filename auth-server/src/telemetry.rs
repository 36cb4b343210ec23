//! Logging: human-readable by default, JSON with `LOG_FORMAT=json`; filter from `RUST_LOG`.

use tracing_subscriber::EnvFilter;

/// Quiet by default where libraries are chatty (sqlx logs every query at info).
const DEFAULT_FILTER: &str = "info,sqlx=warn,sea_orm=warn,poem=warn";

pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let format = std::env::var("LOG_FORMAT").unwrap_or_default();
    let _ = match format.as_str() {
        "json" => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        "compact" => builder.compact().try_init(),
        _ => builder.pretty().try_init(),
    };
}
