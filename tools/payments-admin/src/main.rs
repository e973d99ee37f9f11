//! Operator CLI for the payments service: accounts, API keys and local tables.
//!
//! Runs with the operator's own AWS credentials (default credential chain and region), or
//! against DynamoDB Local with `--endpoint-url` / `DYNAMODB_ENDPOINT`. Every change is logged
//! to stderr as a JSON audit event; `--json` makes stdout machine-readable.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use shared::config::dynamodb_client;
use shared::domain::{
    AccountId, AccountStatus, ApiKey, IdSource, KeyEnvironment, KeyId, RandomSourceFailed,
    Timestamp,
};
use shared::store::dynamo::{create_tables, DynamoStore};
use shared::store::lifecycle::{Revocation, StatusChange};
use shared::store::{IssuedKey, StoreError};

#[derive(Parser)]
#[command(
    name = "payments-admin",
    version,
    about = "Operate the payments API: accounts, API keys, local tables",
    propagate_version = true
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Global {
    /// DynamoDB endpoint, for DynamoDB Local (default: AWS, with the standard credential chain).
    #[arg(long, global = true, env = "DYNAMODB_ENDPOINT")]
    endpoint_url: Option<String>,
    /// Clients table name (the stack's ClientsTableName output).
    #[arg(
        long,
        global = true,
        env = "CLIENTS_TABLE",
        default_value = "payments-clients"
    )]
    clients_table: String,
    /// Payments table name (the stack's PaymentsTableName output).
    #[arg(
        long,
        global = true,
        env = "PAYMENTS_TABLE",
        default_value = "payments-payments"
    )]
    payments_table: String,
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Who is making the change, for the audit log (default: $USER).
    #[arg(long, global = true, env = "PAYMENTS_ADMIN_ACTOR")]
    actor: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Show, deactivate or reactivate an account.
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
    },
    /// List, rotate or revoke API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage tables (local development; in AWS the SAM stack owns the tables).
    Tables {
        #[command(subcommand)]
        command: TablesCommand,
    },
}

#[derive(Subcommand)]
enum AccountsCommand {
    /// Show an account and its keys.
    Show {
        #[arg(value_parser = parse_account_id)]
        account: AccountId,
    },
    /// Deactivate an account: all its keys stop authenticating on the next request.
    Deactivate {
        #[arg(value_parser = parse_account_id)]
        account: AccountId,
    },
    /// Reactivate an account: its live keys authenticate again on the next request.
    Reactivate {
        #[arg(value_parser = parse_account_id)]
        account: AccountId,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List an account's keys (display prefixes, ids, dates, state; never secrets).
    List {
        #[arg(value_parser = parse_account_id)]
        account: AccountId,
    },
    /// Issue a new key and retire the account's current keys after a grace period.
    Rotate {
        #[arg(value_parser = parse_account_id)]
        account: AccountId,
        /// How long the old keys keep working: e.g. 24h (default), 90m, 30s, 7d; 0 = now.
        #[arg(long, value_parser = parse_grace, default_value = "24h")]
        grace: Duration,
        /// Environment of the new key (must match the deployment's API_KEY_ENVIRONMENT).
        #[arg(long, env = "API_KEY_ENVIRONMENT", value_parser = parse_environment)]
        key_environment: KeyEnvironment,
    },
    /// Revoke a key: it stops authenticating on the very next request.
    Revoke {
        #[arg(value_parser = parse_key_id)]
        key: KeyId,
    },
}

#[derive(Subcommand)]
enum TablesCommand {
    /// Create both tables if they do not exist.
    Create,
}

fn parse_account_id(value: &str) -> Result<AccountId, String> {
    AccountId::parse(value).ok_or_else(|| {
        format!("not an account id (expected acct_ and 20 letters or digits): {value}")
    })
}

fn parse_key_id(value: &str) -> Result<KeyId, String> {
    KeyId::parse(value)
        .ok_or_else(|| format!("not a key id (expected key_ and 20 letters or digits): {value}"))
}

fn parse_environment(value: &str) -> Result<KeyEnvironment, String> {
    value.parse()
}

/// `0`, or a whole number followed by s, m, h or d; at most 30 days.
fn parse_grace(value: &str) -> Result<Duration, String> {
    const MAX: Duration = Duration::from_secs(30 * 24 * 3600);
    let bad = || format!("not a duration (examples: 0, 30s, 90m, 24h, 7d): {value}");
    if value == "0" {
        return Ok(Duration::ZERO);
    }
    let split = value.len().checked_sub(1).ok_or_else(bad)?;
    let (number, unit) = value.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => Some(number),
        "m" => number.checked_mul(60),
        "h" => number.checked_mul(3600),
        "d" => number.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(bad)?;
    let grace = Duration::from_secs(seconds);
    if grace > MAX {
        return Err(format!("grace period longer than 30 days: {value}"));
    }
    Ok(grace)
}

struct Output {
    json: bool,
}

impl Output {
    fn print(&self, value: Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", text());
        }
    }
}

/// Why a command failed, in the operator's terms.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Random(#[from] RandomSourceFailed),
}

impl Failure {
    /// A stable machine-readable code for `--json` output.
    fn code(&self) -> &'static str {
        match self {
            Failure::Store(err) => match err {
                StoreError::NotFound { .. } => "not_found",
                StoreError::ChangedConcurrently { .. } => "changed_concurrently",
                StoreError::Unavailable(_) => "storage_unavailable",
                StoreError::Throttled(_) => "storage_throttled",
                StoreError::OutcomeUnknown(_) => "outcome_unknown",
                StoreError::TooManyItems { .. } => "too_many_keys",
                StoreError::Corrupt { .. } => "corrupt_item",
                StoreError::ConditionFailed { .. } => "condition_failed",
                StoreError::Unexpected(_) => "storage_error",
            },
            Failure::Random(_) => "random_source_failed",
        }
    }

    /// Whether running the same command again is safe and may succeed.
    fn retry_safe(&self) -> bool {
        matches!(self, Failure::Store(err) if err.is_retryable())
    }

    fn message(&self) -> String {
        match self {
            Failure::Store(StoreError::NotFound { entity, id }) => {
                format!("{entity} {id} not found")
            }
            Failure::Store(StoreError::ChangedConcurrently { .. }) => {
                "the account was changed concurrently; nothing was written, try again".into()
            }
            Failure::Store(StoreError::Unavailable(_) | StoreError::Throttled(_)) => {
                format!("{self}; try again ({self:?})")
            }
            Failure::Store(StoreError::OutcomeUnknown(_)) => format!(
                "the change may or may not have been applied; check with `accounts show` \
                 before trying again ({self:?})"
            ),
            Failure::Store(StoreError::TooManyItems { needed, max }) => format!(
                "the account has too many live keys for one change ({needed} items, at most \
                 {max}); revoke some first"
            ),
            Failure::Store(StoreError::Corrupt {
                entity,
                id,
                attribute,
            }) => format!("stored {entity} {id} is malformed ({attribute}); nothing was changed"),
            other => format!("{other:?}"),
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    init_audit_log();
    let cli = Cli::parse();
    let out = Output {
        json: cli.global.json,
    };
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let message = err.message();
            if out.json {
                println!(
                    "{}",
                    json!({"error": {
                        "code": err.code(),
                        "message": message,
                        "retry_safe": err.retry_safe(),
                    }})
                );
            }
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Audit events (and warnings) as JSON lines on stderr, apart from the command's output.
fn init_audit_log() {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_target(true)
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PAYMENTS_ADMIN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,audit=info")),
        )
        .init();
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let Global {
        endpoint_url,
        clients_table,
        payments_table,
        json,
        actor,
    } = cli.global;
    let out = Output { json };
    let actor = actor
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".to_owned());
    let client = dynamodb_client(endpoint_url.as_deref()).await;
    let store = DynamoStore::new(
        client.clone(),
        clients_table.clone(),
        payments_table.clone(),
    );
    let now = Timestamp::now();

    match cli.command {
        Command::Tables {
            command: TablesCommand::Create,
        } => {
            create_tables(&client, &clients_table, &payments_table).await?;
            out.print(
                json!({"clients_table": clients_table, "payments_table": payments_table}),
                || format!("tables ready: {clients_table} {payments_table}"),
            );
        }
        Command::Accounts { command } => match command {
            AccountsCommand::Show { account } => {
                let (account, keys) = store.account_keys(&account, now).await?;
                let live = keys.iter().filter(|k| k.state.is_live()).count();
                out.print(json!({"account": account, "keys": keys}), || {
                    format!(
                        "{}  {}  status={}  email={}  created={}  keys={} ({} live)",
                        account.id,
                        account.name.as_str(),
                        account.status.as_str(),
                        account.email.as_ref().map_or("-", |e| e.as_str()),
                        account.created_at.to_rfc3339(),
                        keys.len(),
                        live
                    )
                });
            }
            AccountsCommand::Deactivate { account } => {
                set_status(&store, &out, &account, AccountStatus::Inactive, now, &actor).await?
            }
            AccountsCommand::Reactivate { account } => {
                set_status(&store, &out, &account, AccountStatus::Active, now, &actor).await?
            }
        },
        Command::Keys { command } => match command {
            KeysCommand::List { account } => {
                let (_, keys) = store.account_keys(&account, now).await?;
                out.print(json!({"account_id": account, "keys": keys}), || {
                    let mut lines = vec![format!(
                        "{:<24}  {:<12}  {:<8}  {:<24}  {}",
                        "KEY ID", "PREFIX", "STATE", "CREATED", "EXPIRES"
                    )];
                    for key in &keys {
                        lines.push(format!(
                            "{:<24}  {:<12}  {:<8}  {:<24}  {}",
                            key.key_id,
                            key.prefix,
                            key.state,
                            key.created_at.to_rfc3339(),
                            key.expires_at.map_or("-".to_owned(), Timestamp::to_rfc3339)
                        ));
                    }
                    lines.join("\n")
                });
            }
            KeysCommand::Rotate {
                account,
                grace,
                key_environment,
            } => {
                let new_key = ApiKey::generate(key_environment)?;
                let issued = IssuedKey::new(&new_key, IdSource::random().key_id()?, now);
                let rotation = store
                    .rotate_key(&account, &issued, grace, now, &actor)
                    .await?;
                let retiring: Vec<Value> = rotation
                    .retiring
                    .iter()
                    .map(|(id, at)| json!({"key_id": id, "expires_at": at.to_rfc3339()}))
                    .collect();
                out.print(
                    json!({
                        "account_id": rotation.account_id,
                        "key_id": rotation.new_key_id,
                        "api_key": new_key.expose_once(),
                        "retiring": retiring,
                    }),
                    || {
                        let mut lines =
                            vec![
                            format!("new key {} for {}:", rotation.new_key_id, rotation.account_id),
                            format!("  {}", new_key.expose_once()),
                            "  (shown once: hand it to the client now; it cannot be shown again)"
                                .to_owned(),
                        ];
                        for (id, at) in &rotation.retiring {
                            lines
                                .push(format!("old key {id} stops working at {}", at.to_rfc3339()));
                        }
                        lines.join("\n")
                    },
                );
            }
            KeysCommand::Revoke { key } => {
                let (account_id, outcome) = store.revoke_key(&key, now, &actor).await?;
                let already = outcome == Revocation::AlreadyRevoked;
                out.print(
                    json!({"key_id": key, "account_id": account_id, "revoked": true, "already_revoked": already}),
                    || {
                        if already {
                            format!("key {key} was already revoked")
                        } else {
                            format!("key {key} of {account_id} revoked")
                        }
                    },
                );
            }
        },
    }
    Ok(())
}

async fn set_status(
    store: &DynamoStore,
    out: &Output,
    account: &AccountId,
    status: AccountStatus,
    now: Timestamp,
    actor: &str,
) -> Result<(), Failure> {
    let change = store
        .set_account_status(account, status, now, actor)
        .await?;
    let changed = change == StatusChange::Changed;
    out.print(
        json!({"account_id": account, "status": status, "changed": changed}),
        || {
            if changed {
                format!("account {account} is now {}", status.as_str())
            } else {
                format!("account {account} was already {}", status.as_str())
            }
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::store::lifecycle::DEFAULT_ROTATION_GRACE;

    #[test]
    fn grace_durations() {
        assert_eq!(parse_grace("0"), Ok(Duration::ZERO));
        assert_eq!(parse_grace("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_grace("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_grace("24h"), Ok(DEFAULT_ROTATION_GRACE));
        assert_eq!(parse_grace("7d"), Ok(Duration::from_secs(7 * 86_400)));
        for bad in [
            "",
            "h",
            "-1h",
            "1.5h",
            "24",
            "1w",
            "31d",
            "99999999999999999999d",
        ] {
            assert!(parse_grace(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
