//! The command line: `serve` (default), `clients …`, `keys …`, `openapi`.

use std::path::PathBuf;

use std::io::Write;

use clap::{Args, Parser, Subcommand};

use crate::config::Settings;
use crate::crypto;
use crate::domain::{Audience, ClientId, GrantType, NewClient, ScopeSet, User, Username};
use crate::keys::now_secs;
use crate::startup::{Application, Bootstrap, Services};
use crate::storage::StorageError;

#[derive(Debug, Parser)]
#[command(
    name = "auth-server",
    version,
    about = "OAuth 2.0 authorization server issuing RFC 9068 JWT access tokens"
)]
pub struct Cli {
    /// TOML configuration file (also AUTH_CONFIG).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTP (the default).
    Serve,
    /// Manage OAuth clients.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Manage password-grant users (passwords are read from a prompt or stdin, never argv).
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Register a client; prints its generated secret once.
    Add(AddClient),
    /// List clients (never their secrets).
    List,
    /// Delete a client.
    Remove { client_id: String },
    /// Replace a client's secret; prints the new one once. The old one stops working at once.
    RotateSecret { client_id: String },
}

#[derive(Debug, Args)]
pub struct AddClient {
    #[arg(long = "id")]
    pub client_id: String,
    /// A scope the client may request (repeat, or space-separate).
    #[arg(long = "scope", required = true)]
    pub scopes: Vec<String>,
    /// An audience the client may request tokens for; the first is the default (repeat).
    #[arg(long = "audience", required = true)]
    pub audiences: Vec<String>,
    /// Allowed grant (repeat): client_credentials (default), password, refresh_token.
    #[arg(long = "grant-type", default_value = "client_credentials")]
    pub grant_types: Vec<String>,
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
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CliError(pub String);

fn fail(e: impl std::fmt::Display) -> CliError {
    CliError(e.to_string())
}

/// Runs a command; passwords come from `passwords`, what it prints for the user goes to `out`.
pub async fn run(
    cli: Cli,
    passwords: &mut dyn PasswordSource,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    if matches!(cli.command, Some(Command::Openapi)) {
        // The document depends on code only: default settings, an in-memory database.
        let settings = Settings {
            database_url: "sqlite::memory:".into(),
            ..Settings::default()
        };
        let services = Services::build(&settings, Bootstrap::Skip)
            .await
            .map_err(fail)?;
        writeln!(
            out,
            "{}",
            crate::api::openapi_json(&services.app_state(&settings))
        )
        .map_err(fail)?;
        return Ok(());
    }
    let settings = Settings::load(cli.config.as_deref()).map_err(fail)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(settings).await.map_err(fail)?;
            app.run_until_stopped().await.map_err(fail)
        }
        Command::Clients(command) => clients(&settings, command, out).await,
        Command::Users(command) => users(&settings, command, passwords, out).await,
        Command::Keys(command) => keys(&settings, command, out).await,
        Command::Openapi => unreachable!("handled above"),
    }
}

/// A client or user declared in the configuration is managed there: the server re-applies it
/// at every start, so a CLI change would silently come undone.
fn managed_in_config(what: &str, name: &str, index: Option<usize>) -> Result<(), CliError> {
    match index {
        Some(i) => Err(CliError(format!(
            "{what} {name} is managed by the configuration file ({what}s[{i}]); change it there \
             and restart, or remove it from the file to manage it here"
        ))),
        None => Ok(()),
    }
}

async fn clients(
    settings: &Settings,
    command: ClientsCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let services = Services::build(settings, Bootstrap::Skip)
        .await
        .map_err(fail)?;
    let repo = &services.clients;
    match command {
        ClientsCommand::Add(add) => {
            let id = ClientId::parse(&add.client_id).map_err(fail)?;
            let scopes = ScopeSet::parse(&add.scopes.join(" ")).map_err(fail)?;
            let audiences = add
                .audiences
                .iter()
                .map(|a| Audience::parse(a))
                .collect::<Result<Vec<_>, _>>()
                .map_err(fail)?;
            let grant_types = add
                .grant_types
                .iter()
                .map(|g| g.parse::<GrantType>())
                .collect::<Result<_, _>>()
                .map_err(fail)?;
            let secret = crypto::generate_secret();
            let client = NewClient {
                id,
                secret_hash: crypto::hash_secret(&secret).map_err(fail)?,
                scopes,
                audiences,
                grant_types,
            };
            match repo.insert(&client, now_secs()).await {
                Ok(()) => {}
                Err(StorageError::Conflict) => {
                    return Err(CliError(format!("client {} already exists", client.id)));
                }
                Err(e) => return Err(fail(e)),
            }
            writeln!(out, "client_id:     {}", client.id).map_err(fail)?;
            writeln!(out, "client_secret: {secret}").map_err(fail)?;
            eprintln!("The secret is shown once and stored only as an argon2id hash.");
        }
        ClientsCommand::List => {
            writeln!(
                out,
                "{:<24} {:<32} {:<28} GRANT TYPES",
                "CLIENT ID", "SCOPES", "AUDIENCES"
            )
            .map_err(fail)?;
            for c in repo.list().await.map_err(fail)? {
                let audiences: Vec<_> = c.audiences.iter().map(Audience::as_str).collect();
                let grants: Vec<_> = c.grant_types.iter().map(|g| g.as_str()).collect();
                writeln!(
                    out,
                    "{:<24} {:<32} {:<28} {}",
                    c.id,
                    c.scopes.to_string(),
                    audiences.join(" "),
                    grants.join(" ")
                )
                .map_err(fail)?;
            }
        }
        ClientsCommand::Remove { client_id } => {
            let id = ClientId::parse(&client_id).map_err(fail)?;
            managed_in_config("client", id.as_str(), client_index(settings, &id))?;
            if !repo.remove(&id).await.map_err(fail)? {
                return Err(CliError(format!("no client {id}")));
            }
            writeln!(out, "removed client {id}").map_err(fail)?;
        }
        ClientsCommand::RotateSecret { client_id } => {
            let id = ClientId::parse(&client_id).map_err(fail)?;
            managed_in_config("client", id.as_str(), client_index(settings, &id))?;
            let secret = crypto::generate_secret();
            let hash = crypto::hash_secret(&secret).map_err(fail)?;
            if !repo
                .set_secret_hash(&id, &hash, now_secs())
                .await
                .map_err(fail)?
            {
                return Err(CliError(format!("no client {id}")));
            }
            writeln!(out, "client_id:     {id}").map_err(fail)?;
            writeln!(out, "client_secret: {secret}").map_err(fail)?;
            eprintln!("The previous secret no longer works. This one is shown once.");
        }
    }
    Ok(())
}

async fn users(
    settings: &Settings,
    command: UsersCommand,
    passwords: &mut dyn PasswordSource,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let services = Services::build(settings, Bootstrap::Skip)
        .await
        .map_err(fail)?;
    let repo = &services.users;
    let now = now_secs();
    match command {
        UsersCommand::Add { username, scopes } => {
            let username = Username::parse(&username).map_err(fail)?;
            let scopes = ScopeSet::parse(&scopes.join(" ")).map_err(fail)?;
            let password = passwords
                .read_password(&format!("Password for {username}: "))
                .map_err(fail)?;
            if password.len() < 8 {
                return Err(CliError(
                    "the password must have at least 8 characters".into(),
                ));
            }
            let user = User {
                username,
                password_hash: crypto::hash_secret(&password).map_err(fail)?,
                scopes,
                active: true,
            };
            match repo.insert(&user, now).await {
                Ok(()) => writeln!(out, "added user {}", user.username).map_err(fail)?,
                Err(StorageError::Conflict) => {
                    return Err(CliError(format!("user {} already exists", user.username)));
                }
                Err(e) => return Err(fail(e)),
            }
        }
        UsersCommand::List => {
            writeln!(out, "{:<32} {:<8} SCOPES", "USERNAME", "ACTIVE").map_err(fail)?;
            for u in repo.list().await.map_err(fail)? {
                writeln!(out, "{:<32} {:<8} {}", u.username, u.active, u.scopes).map_err(fail)?;
            }
        }
        UsersCommand::Disable { username } => {
            let name = Username::parse(&username).map_err(fail)?;
            managed_in_config("user", name.as_str(), user_index(settings, &name))?;
            if !repo.set_active(&name, false, now).await.map_err(fail)? {
                return Err(CliError(format!("no user {name}")));
            }
            let revoked = services
                .token_state
                .revoke_user(name.as_str(), now)
                .await
                .map_err(fail)?;
            writeln!(
                out,
                "disabled user {name}; revoked {revoked} refresh token(s)"
            )
            .map_err(fail)?;
        }
        UsersCommand::Enable { username } => {
            let name = Username::parse(&username).map_err(fail)?;
            managed_in_config("user", name.as_str(), user_index(settings, &name))?;
            if !repo.set_active(&name, true, now).await.map_err(fail)? {
                return Err(CliError(format!("no user {name}")));
            }
            writeln!(out, "enabled user {name}").map_err(fail)?;
        }
        UsersCommand::Remove { username } => {
            let name = Username::parse(&username).map_err(fail)?;
            managed_in_config("user", name.as_str(), user_index(settings, &name))?;
            services
                .token_state
                .revoke_user(name.as_str(), now)
                .await
                .map_err(fail)?;
            if !repo.remove(&name).await.map_err(fail)? {
                return Err(CliError(format!("no user {name}")));
            }
            writeln!(out, "removed user {name}").map_err(fail)?;
        }
    }
    Ok(())
}

fn client_index(settings: &Settings, id: &ClientId) -> Option<usize> {
    settings
        .clients
        .iter()
        .position(|c| c.client_id == id.as_str())
}

fn user_index(settings: &Settings, name: &Username) -> Option<usize> {
    settings
        .users
        .iter()
        .position(|u| u.username == name.as_str())
}

async fn keys(
    settings: &Settings,
    command: KeysCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let services = Services::build(settings, Bootstrap::Skip)
        .await
        .map_err(fail)?;
    match command {
        KeysCommand::List => {
            writeln!(
                out,
                "{:<44} {:<6} {:<8} {:<11} {:<11} RETIRED",
                "KID", "ALG", "STATE", "CREATED", "ACTIVATES"
            )
            .map_err(fail)?;
            for k in services.keys.list().await.map_err(fail)? {
                writeln!(
                    out,
                    "{:<44} {:<6} {:<8} {:<11} {:<11} {}",
                    k.kid,
                    k.alg.as_str(),
                    k.state.as_str(),
                    k.created_at,
                    k.activate_at,
                    k.retired_at
                        .map_or_else(|| "-".to_owned(), |t| t.to_string())
                )
                .map_err(fail)?;
            }
        }
        KeysCommand::Rotate { now } => {
            let kid = services.keys.rotate(now).await.map_err(fail)?;
            if now {
                writeln!(
                    out,
                    "{kid} is active now; the previous key stays published until its tokens expire"
                )
                .map_err(fail)?;
            } else {
                writeln!(
                    out,
                    "{kid} is published now and starts signing in {} s",
                    settings.publish_ahead_secs()
                )
                .map_err(fail)?;
            }
        }
    }
    Ok(())
}
