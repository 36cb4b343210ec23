//! The command line: `serve` (default), `apis …`, `clients …`, `users …`, `keys …`, `openapi`. It parses,
//! opens what the command needs, calls the same operations the server uses (`admin`, `keys`)
//! and prints.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use service_kit::telemetry::{LogFormat, TraceExport, init_telemetry};

use crate::admin::{ApiSpec, ApiUpdate, ClientSpec, Grant};
use crate::config::Settings;
use crate::domain::{ClientAuthentication, ClientKeys, GrantType, TOKEN_EXCHANGE};
use crate::startup::{self, Application};
use crate::storage::Database;
use crate::stores::KeyStore as _;

#[derive(Debug, Parser)]
#[command(
    name = "auth-server",
    version,
    about = "OAuth 2.0 authorization server issuing RFC 9068 JWT access tokens"
)]
pub struct Cli {
    /// TOML configuration file (layered over defaults, under `.env` and `AUTH_*` variables).
    #[arg(long, global = true, env = "AUTH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTP (the default).
    Serve,
    /// Manage the APIs (resource servers) tokens are issued for.
    #[command(subcommand)]
    Apis(ApisCommand),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Manage password-grant users (passwords are read from a prompt or stdin, never argv).
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print the OpenAPI document (needs no configuration, database or key).
    Openapi,
}

#[derive(Debug, Subcommand)]
pub enum ApisCommand {
    /// Register an API: its id is the `aud` of its tokens; its scopes are the only ones its
    /// tokens carry.
    Add(AddApi),
    /// List APIs.
    List,
    /// Change an API (what is not given stays); its clients keep their grants, within its new
    /// scopes.
    Update(UpdateApi),
    /// Delete an API that no client names.
    Remove { id: String },
}

#[derive(Debug, Args)]
pub struct AddApi {
    /// Its identifier, the `aud` of its tokens (e.g. players-api).
    #[arg(long)]
    pub id: String,
    /// Its RFC 8707 resource URI (https, or http on localhost): a token request's `resource`
    /// may name the API by it.
    #[arg(long, value_name = "URI")]
    pub resource: Option<String>,
    /// A scope it defines (repeat, or space-separate).
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// Its tokens live at most this many seconds (the server's and the client's limits still
    /// apply: the shortest wins).
    #[arg(long = "token-ttl", value_name = "SECS")]
    pub token_ttl_secs: Option<u32>,
    /// The only grants its tokens may come from (repeat): client_credentials, password,
    /// refresh_token, token-exchange. Default: any grant the client may use.
    #[arg(long = "grant-type")]
    pub grant_types: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpdateApi {
    pub id: String,
    #[arg(long, value_name = "URI", conflicts_with = "no_resource")]
    pub resource: Option<String>,
    /// Remove its resource URI.
    #[arg(long)]
    pub no_resource: bool,
    /// Its scopes, replacing the ones it had (repeat).
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    #[arg(
        long = "token-ttl",
        value_name = "SECS",
        conflicts_with = "no_token_ttl"
    )]
    pub token_ttl_secs: Option<u32>,
    /// Remove its own token lifetime.
    #[arg(long)]
    pub no_token_ttl: bool,
    /// The only grants its tokens may come from, replacing the ones it had (repeat).
    #[arg(long = "grant-type", conflicts_with = "any_grant")]
    pub grant_types: Vec<String>,
    /// Let its tokens come from any grant.
    #[arg(long)]
    pub any_grant: bool,
}

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Register a client; prints its generated secret once.
    Add(Box<AddClient>),
    /// List clients (never their secrets).
    List,
    /// Delete a client (and revoke its refresh tokens).
    Remove { client_id: String },
    /// Replace a client's secret; prints the new one once.
    RotateSecret { client_id: String },
    /// Grant a client a registered API with some of its scopes, or an API to exchange its
    /// callers' tokens into (RFC 8693); what it had stays.
    Grant(GrantArgs),
    /// Take back an API (and the scopes only it defined) or exchange targets from a client.
    Ungrant(UngrantArgs),
}

#[derive(Debug, Args)]
pub struct UngrantArgs {
    pub client_id: String,
    #[arg(long, required_unless_present = "exchange_to")]
    pub api: Option<String>,
    #[arg(long = "exchange-to")]
    pub exchange_to: Vec<String>,
}

#[derive(Debug, Args)]
pub struct GrantArgs {
    pub client_id: String,
    /// A registered API the client may get tokens for.
    #[arg(long, required_unless_present = "exchange_to")]
    pub api: Option<String>,
    /// One of that API's scopes (repeat, or space-separate).
    #[arg(long = "scope", requires = "api")]
    pub scopes: Vec<String>,
    /// A registered API the client may exchange tokens sent to it into (repeat; adds the
    /// token-exchange grant).
    #[arg(long = "exchange-to")]
    pub exchange_to: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AddClient {
    #[arg(long = "id")]
    pub client_id: String,
    /// A scope the client may request (repeat, or space-separate).
    #[arg(long = "scope", required = true)]
    pub scopes: Vec<String>,
    /// An API (audience) the client may request tokens for; the first is the default
    /// (repeat). Its tokens for a registered API carry only that API's scopes.
    #[arg(long = "audience", visible_alias = "api", required = true)]
    pub audiences: Vec<String>,
    /// Allowed grant (repeat): client_credentials (the default without --exchange-to),
    /// password, refresh_token, token-exchange (implied by --exchange-to).
    #[arg(long = "grant-type")]
    pub grant_types: Vec<String>,
    /// An API (audience) the client may get tokens for on behalf of the subject of a token
    /// sent to it (RFC 8693 token exchange; repeat; the first is the default target).
    #[arg(long = "exchange-to")]
    pub exchange_to: Vec<String>,
    /// Its access tokens live at most this many seconds (the server's token_ttl_secs still
    /// bounds them).
    #[arg(long = "token-ttl", value_name = "SECS")]
    pub token_ttl_secs: Option<u32>,
    /// A claim added to every access token it gets, as NAME=VALUE (a string; repeat), e.g.
    /// `--claim tenant=acme`. Never a registered claim (iss, sub, aud, scope, …).
    #[arg(long = "claim", value_name = "NAME=VALUE", value_parser = parse_claim)]
    pub claims: Vec<(String, String)>,
    /// `private_key_jwt` with these public keys (a JWKS file): no secret is generated.
    #[arg(long, conflicts_with_all = ["jwks_uri", "federated_issuer"])]
    pub jwks_file: Option<PathBuf>,
    /// `private_key_jwt` with public keys fetched from this URL: no secret is generated.
    #[arg(long, conflicts_with = "federated_issuer")]
    pub jwks_uri: Option<String>,
    /// Workload identity: a `[[trusted_issuers]]` issuer whose token about
    /// `--federated-subject` authenticates the client; no secret is generated.
    #[arg(long, requires = "federated_subject")]
    pub federated_issuer: Option<String>,
    #[arg(long, requires = "federated_issuer")]
    pub federated_subject: Option<String>,
    /// Its access tokens must be DPoP-bound (RFC 9449).
    #[arg(long)]
    pub dpop_bound: bool,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user; the password is read from the terminal (or the first line of stdin).
    Add {
        username: String,
        /// A scope the user may be granted (repeat, or space-separate).
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    /// List users (never their passwords).
    List,
    /// Disable a user: logins fail and every refresh token of theirs dies at once.
    Disable { username: String },
    /// Enable a disabled user.
    Enable { username: String },
    /// Delete a user and revoke their refresh tokens.
    Remove { username: String },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys and their states.
    List,
    /// Add a new key: published now, signing after key_publish_ahead_secs (or at once with --now).
    Rotate {
        /// Activate at once (emergency: resource servers fetch it on first sight of its kid).
        #[arg(long)]
        now: bool,
    },
    /// Revoke a compromised key: unpublished and untrusted at every instance's next key
    /// refresh; if it is the active key, a new key signs at once.
    Revoke { kid: String },
}

/// Where the CLI reads a password from.
pub trait PasswordSource {
    fn read_password(&mut self, prompt: &str) -> std::io::Result<String>;
}

/// A terminal prompt without echo when stdin is a terminal, else the first line of stdin.
pub struct StdinPassword;

impl PasswordSource for StdinPassword {
    fn read_password(&mut self, prompt: &str) -> std::io::Result<String> {
        use std::io::IsTerminal as _;
        if std::io::stdin().is_terminal() {
            rpassword::prompt_password(prompt)
        } else {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            Ok(line.trim_end_matches(['\r', '\n']).to_owned())
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CliError(pub String);

fn fail(e: impl std::fmt::Display) -> CliError {
    CliError(e.to_string())
}

/// The binary's entry point: logs to stderr, runs the command, turns errors into an exit code.
pub async fn main(cli: Cli) -> ExitCode {
    let _telemetry = init_telemetry(LogFormat::from_env(), trace_export(&cli));
    match run(cli, &mut StdinPassword, &mut std::io::stdout()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("auth-server: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Where `serve` exports spans (`otlp_endpoint`), read before logging starts because the
/// exporter is part of the log subscriber. The settings are read again, with their errors
/// reported, by `run`; the other commands export nothing.
fn trace_export(cli: &Cli) -> Option<TraceExport> {
    if !matches!(cli.command, None | Some(Command::Serve)) {
        return None;
    }
    let settings = service_kit::config::load_settings::<Settings>(cli.config.as_deref()).ok()?;
    TraceExport::from_setting(settings.settings.otlp_endpoint.as_deref(), "auth-server")
}

/// Runs a command; passwords come from `passwords`, what it prints for the user goes to `out`.
pub async fn run(
    cli: Cli,
    passwords: &mut dyn PasswordSource,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Openapi = command {
        // The document depends on the code only.
        let issuer = Settings::default().issuer_str();
        return writeln!(out, "{}", crate::api::openapi_json(&issuer)).map_err(fail);
    }
    let loaded =
        service_kit::config::load_settings::<Settings>(cli.config.as_deref()).map_err(fail)?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let settings = loaded.settings;
    match command {
        Command::Serve => {
            let app = Application::build(settings).await.map_err(fail)?;
            app.run_until_stopped().await.map_err(fail)
        }
        Command::Apis(command) => apis(&settings, command, out).await,
        Command::Clients(command) => clients(&settings, command, out).await,
        Command::Users(command) => users(&settings, command, passwords, out).await,
        Command::Keys(command) => keys(&settings, command, out).await,
        Command::Openapi => unreachable!("handled above"),
    }
}

/// The database the command works on; never created here (see `startup::open_database`).
async fn existing_database(settings: &Settings) -> Result<Database, CliError> {
    startup::open_database(settings, false, startup::availability(settings))
        .await
        .map_err(fail)
}

async fn clients(
    settings: &Settings,
    command: ClientsCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let admin = startup::admin(settings, &existing_database(settings).await?);
    match command {
        ClientsCommand::Add(add) => {
            let add = *add;
            let authentication = if let Some(path) = &add.jwks_file {
                let jwks = std::fs::read_to_string(path)
                    .map_err(|err| fail(format!("cannot read {}: {err}", path.display())))?;
                ClientAuthentication::PrivateKeyJwt(ClientKeys::Jwks(jwks))
            } else if let Some(uri) = add.jwks_uri {
                ClientAuthentication::PrivateKeyJwt(ClientKeys::JwksUri(uri))
            } else if let (Some(issuer), Some(subject)) =
                (add.federated_issuer, add.federated_subject)
            {
                ClientAuthentication::Federated { issuer, subject }
            } else {
                ClientAuthentication::Secret
            };
            let method = authentication.method_name();
            let spec = ClientSpec {
                client_id: add.client_id,
                scopes: add.scopes,
                audiences: add.audiences,
                grant_types: with_exchange(add.grant_types, !add.exchange_to.is_empty()),
                authentication,
                dpop_bound: add.dpop_bound,
                exchange_to: add.exchange_to,
                token_ttl_secs: add.token_ttl_secs,
                claims: add
                    .claims
                    .into_iter()
                    .map(|(name, value)| (name, value.into()))
                    .collect(),
            };
            let secret = admin.add_client(&spec).await.map_err(fail)?;
            writeln!(out, "client_id:     {}", spec.client_id).map_err(fail)?;
            match secret {
                Some(secret) => {
                    writeln!(out, "client_secret: {secret}").map_err(fail)?;
                    eprintln!("The secret is shown once and stored only as an argon2id hash.");
                }
                None => writeln!(out, "auth_method:   {method}").map_err(fail)?,
            }
        }
        ClientsCommand::List => {
            let mut table = Table::new([
                "CLIENT ID",
                "AUTH",
                "SCOPES",
                "AUDIENCES",
                "GRANT TYPES",
                "TOKEN TTL",
                "EXCHANGE TO",
            ]);
            for c in admin.list_clients().await.map_err(fail)? {
                let audiences: Vec<_> = c.audiences.iter().map(|a| a.as_str()).collect();
                let grants: Vec<_> = c.grant_types.iter().map(|g| grant_name(*g)).collect();
                let exchange: Vec<_> = c.exchange_to.iter().map(|a| a.as_str()).collect();
                let mut auth = c.authentication.method_name().to_owned();
                if c.dpop_bound {
                    auth.push_str("+dpop");
                }
                table.row([
                    c.id.to_string(),
                    auth,
                    c.scopes.to_string(),
                    audiences.join(" "),
                    grants.join(" "),
                    c.token_ttl_secs
                        .map_or_else(|| "-".to_owned(), |ttl| format!("{ttl}s")),
                    if exchange.is_empty() {
                        "-".to_owned()
                    } else {
                        exchange.join(" ")
                    },
                ]);
            }
            table.write(out).map_err(fail)?;
        }
        ClientsCommand::Remove { client_id } => {
            admin.remove_client(&client_id).await.map_err(fail)?;
            writeln!(out, "removed client {client_id}").map_err(fail)?;
        }
        ClientsCommand::Grant(grant) => {
            let scopes = grant.scopes.join(" ");
            admin
                .grant(
                    &grant.client_id,
                    &Grant {
                        api: grant.api.clone(),
                        scopes: grant.scopes,
                        exchange_to: grant.exchange_to.clone(),
                    },
                )
                .await
                .map_err(fail)?;
            if let Some(api) = grant.api {
                writeln!(out, "granted {} API {api} [{scopes}]", grant.client_id).map_err(fail)?;
            }
            for api in grant.exchange_to {
                writeln!(out, "granted {} exchange to {api}", grant.client_id).map_err(fail)?;
            }
        }
        ClientsCommand::Ungrant(ungrant) => {
            admin
                .ungrant(
                    &ungrant.client_id,
                    &Grant {
                        api: ungrant.api.clone(),
                        scopes: Vec::new(),
                        exchange_to: ungrant.exchange_to.clone(),
                    },
                )
                .await
                .map_err(fail)?;
            for api in ungrant.api.iter().chain(&ungrant.exchange_to) {
                writeln!(out, "took {api} back from {}", ungrant.client_id).map_err(fail)?;
            }
        }
        ClientsCommand::RotateSecret { client_id } => {
            let secret = admin.rotate_client_secret(&client_id).await.map_err(fail)?;
            writeln!(out, "client_id:     {client_id}").map_err(fail)?;
            writeln!(out, "client_secret: {secret}").map_err(fail)?;
            eprintln!(
                "The previous secret stops working at once. This one is shown once and stored \
                 only as an argon2id hash."
            );
        }
    }
    Ok(())
}

async fn apis(
    settings: &Settings,
    command: ApisCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let admin = startup::admin(settings, &existing_database(settings).await?);
    match command {
        ApisCommand::Add(add) => {
            let api = admin
                .add_api(&ApiSpec {
                    id: add.id,
                    resource: add.resource,
                    scopes: Some(add.scopes),
                    token_ttl_secs: add.token_ttl_secs,
                    grant_types: (!add.grant_types.is_empty()).then_some(add.grant_types),
                })
                .await
                .map_err(fail)?;
            writeln!(out, "added api {}", api.id.as_str()).map_err(fail)?;
        }
        ApisCommand::List => {
            let mut table = Table::new(["API ID", "RESOURCE", "SCOPES", "TOKEN TTL", "GRANTS"]);
            for api in admin.list_apis().await.map_err(fail)? {
                table.row([
                    api.id.as_str().to_owned(),
                    api.resource.clone().unwrap_or_else(|| "-".into()),
                    match &api.scopes {
                        None => "(undeclared)".to_owned(),
                        Some(scopes) if scopes.is_empty() => "-".to_owned(),
                        Some(scopes) => scopes.to_string(),
                    },
                    api.token_ttl_secs
                        .map_or_else(|| "-".to_owned(), |ttl| format!("{ttl}s")),
                    api.grant_types.as_ref().map_or_else(
                        || "any".to_owned(),
                        |grants| {
                            grants
                                .iter()
                                .map(|g| grant_name(*g))
                                .collect::<Vec<_>>()
                                .join(" ")
                        },
                    ),
                ]);
            }
            table.write(out).map_err(fail)?;
        }
        ApisCommand::Update(update) => {
            let changes = ApiUpdate {
                resource: if update.no_resource {
                    Some(None)
                } else {
                    update.resource.map(Some)
                },
                scopes: (!update.scopes.is_empty()).then_some(update.scopes),
                token_ttl_secs: if update.no_token_ttl {
                    Some(None)
                } else {
                    update.token_ttl_secs.map(Some)
                },
                grant_types: if update.any_grant {
                    Some(None)
                } else {
                    (!update.grant_types.is_empty()).then_some(Some(update.grant_types))
                },
            };
            let api = admin.update_api(&update.id, &changes).await.map_err(fail)?;
            writeln!(out, "updated api {}", api.id.as_str()).map_err(fail)?;
        }
        ApisCommand::Remove { id } => {
            admin.remove_api(&id).await.map_err(fail)?;
            writeln!(out, "removed api {id}").map_err(fail)?;
        }
    }
    Ok(())
}

/// A grant's name in listings: the short alias for token exchange.
fn grant_name(grant: GrantType) -> &'static str {
    match grant {
        GrantType::TokenExchange => "token-exchange",
        other => other.as_str(),
    }
}

async fn users(
    settings: &Settings,
    command: UsersCommand,
    passwords: &mut dyn PasswordSource,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let admin = startup::admin(settings, &existing_database(settings).await?);
    match command {
        UsersCommand::Add { username, scopes } => {
            let password = passwords
                .read_password(&format!("Password for {username}: "))
                .map_err(fail)?;
            admin
                .add_user(&username, &scopes, &password)
                .await
                .map_err(fail)?;
            writeln!(out, "added user {username}").map_err(fail)?;
        }
        UsersCommand::List => {
            let mut table = Table::new(["USERNAME", "ACTIVE", "SCOPES"]);
            for u in admin.list_users().await.map_err(fail)? {
                table.row([
                    u.username.to_string(),
                    u.active.to_string(),
                    u.scopes.to_string(),
                ]);
            }
            table.write(out).map_err(fail)?;
        }
        UsersCommand::Disable { username } => {
            let revoked = admin
                .set_user_active(&username, false)
                .await
                .map_err(fail)?;
            writeln!(
                out,
                "disabled user {username}; revoked {revoked} refresh token(s)"
            )
            .map_err(fail)?;
        }
        UsersCommand::Enable { username } => {
            admin.set_user_active(&username, true).await.map_err(fail)?;
            writeln!(out, "enabled user {username}").map_err(fail)?;
        }
        UsersCommand::Remove { username } => {
            admin.remove_user(&username).await.map_err(fail)?;
            writeln!(out, "removed user {username}").map_err(fail)?;
        }
    }
    Ok(())
}

async fn keys(
    settings: &Settings,
    command: KeysCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let db = existing_database(settings).await?;
    match command {
        KeysCommand::List => {
            let mut table = Table::new(["KID", "ALG", "STATE", "CREATED", "ACTIVATES", "RETIRED"]);
            for k in db.keys().list().await.map_err(fail)? {
                table.row([
                    k.kid,
                    k.alg.to_string(),
                    k.state.as_str().to_owned(),
                    utc(k.created_at),
                    utc(k.activate_at),
                    k.retired_at.map_or_else(|| "-".to_owned(), utc),
                ]);
            }
            table.write(out).map_err(fail)?;
        }
        KeysCommand::Revoke { kid } => {
            let ring = startup::key_ring(settings, &db).await.map_err(fail)?;
            let replacement = ring.revoke(&kid).await.map_err(fail)?;
            let refresh = settings.key_refresh_secs;
            writeln!(
                out,
                "{kid} is revoked: every instance stops publishing and trusting it within                  {refresh} s; resource servers refuse its tokens once their cached key set                  expires"
            )
            .map_err(fail)?;
            if let Some(new) = replacement {
                writeln!(out, "{new} is active in its place").map_err(fail)?;
            }
        }
        KeysCommand::Rotate { now } => {
            let ring = startup::key_ring(settings, &db).await.map_err(fail)?;
            let kid = ring.rotate(now).await.map_err(fail)?;
            let refresh = settings.key_refresh_secs;
            if now {
                writeln!(
                    out,
                    "{kid} is active: every instance signs with it within {refresh} s (its next \
                     key refresh); the previous key stays published until its tokens expire"
                )
                .map_err(fail)?;
            } else {
                let ahead = settings.publish_ahead_secs();
                writeln!(
                    out,
                    "{kid} is pending: every instance publishes it within {refresh} s, and it \
                     starts signing at {} (in {ahead} s)",
                    utc(crate::clock::now_secs() + i64::from(ahead))
                )
                .map_err(fail)?;
            }
        }
    }
    Ok(())
}

/// Seconds since the epoch as an RFC 3339 UTC time.
fn utc(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).map_or_else(
        || secs.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

/// Columns as wide as their widest cell, two spaces apart.
struct Table<const N: usize> {
    rows: Vec<[String; N]>,
}

impl<const N: usize> Table<N> {
    fn new(headers: [&str; N]) -> Self {
        Self {
            rows: vec![headers.map(str::to_owned)],
        }
    }

    fn row(&mut self, cells: [String; N]) {
        self.rows.push(cells);
    }

    fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let mut widths = [0usize; N];
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        for row in &self.rows {
            let mut line = String::new();
            for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
                line.push_str(cell);
                if i + 1 < N {
                    let pad = width - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// `--claim NAME=VALUE`.
fn parse_claim(arg: &str) -> Result<(String, String), String> {
    arg.split_once('=')
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .ok_or_else(|| "expected NAME=VALUE".to_owned())
}

/// The grants of `clients add`: those named, or `client_credentials` when none are; with
/// `--exchange-to`, the token-exchange grant and nothing else unless named (an API's exchanging
/// client needs no token of its own).
fn with_exchange(mut grants: Vec<String>, exchange: bool) -> Vec<String> {
    if !exchange {
        if grants.is_empty() {
            grants.push(GrantType::ClientCredentials.as_str().to_owned());
        }
        return grants;
    }
    let named = |g: &String| g.parse::<GrantType>() == Ok(GrantType::TokenExchange);
    if !grants.iter().any(named) {
        grants.push(TOKEN_EXCHANGE.to_owned());
    }
    grants
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_are_as_wide_as_their_widest_cell() {
        let mut table = Table::new(["ID", "SCOPES"]);
        table.row(["a-very-long-client-id".into(), "x".into()]);
        table.row(["b".into(), "y z".into()]);
        let mut out = Vec::new();
        table.write(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ID                     SCOPES\n\
             a-very-long-client-id  x\n\
             b                      y z\n"
        );
    }

    #[test]
    fn times_print_as_rfc3339_utc() {
        assert_eq!(utc(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
