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
    AccountId, AccountStatus, Actor, ApiKey, IdSource, IpAllowList, IpRange, KeyEnvironment,
    KeyGrant, KeyId, KeyKind, KeyName, Permission, Permissions, RandomSourceFailed, RateLimit,
    RateLimitSetting, Timestamp,
};
use shared::store::dynamo::{create_tables, DynamoStore, Tables};
use shared::store::lifecycle::{
    AdminError, ChangeOutcome, KeyMint, KeySummary, Origin, Refusal, Revocation,
};
use shared::store::{Entity, IssuedKey, StoreError};

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
    /// Audit table name (the stack's AuditTableName output).
    #[arg(
        long,
        global = true,
        env = "AUDIT_TABLE",
        default_value = "payments-audit"
    )]
    audit_table: String,
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Who is making the change, recorded in the audit trail (default: $USER).
    #[arg(long, global = true, env = "PAYMENTS_ADMIN_ACTOR", value_parser = parse_actor)]
    actor: Option<Actor>,
}

#[derive(Subcommand)]
enum Command {
    /// Show, deactivate or reactivate an account.
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
    },
    /// List, create, roll, rotate or revoke API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Read an account's audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
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
    /// Set an account's request rate limit (requests per second, across all its keys and
    /// routes), or `default` for the stack's DefaultRateLimit. Applies on the next request.
    SetLimit {
        #[arg(value_parser = parse_account_id)]
        account: AccountId,
        /// Requests per second (1 to 100000), or `default`.
        #[arg(value_parser = parse_rate_limit)]
        limit: RateLimitSetting,
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
        /// How long the old keys keep working: e.g. 24h (default), 90m, 30s, 7d, 1h30m; 0 =
        /// now; at most 30 days.
        #[arg(long, value_parser = parse_grace, default_value = "24h")]
        grace: Duration,
        /// Environment of the new key (default: that of the account's keys). Refused if it
        /// differs from theirs, or from API_KEY_ENVIRONMENT when that is set.
        #[arg(long, value_parser = parse_environment)]
        key_environment: Option<KeyEnvironment>,
    },
    /// Create a restricted key (rk_) for an account: the permissions given (and the read
    /// permission each write implies), usable from the IP ranges given (default: anywhere).
    Create {
        #[arg(value_parser = parse_account_id)]
        account: AccountId,
        /// The holder's name for the key (1 to 100 characters).
        #[arg(long, value_parser = parse_key_name)]
        name: KeyName,
        /// A permission: payments:read, payments:write, keys:read or keys:write. Repeat it
        /// for several.
        #[arg(long = "permission", required = true, value_parser = parse_permission)]
        permissions: Vec<Permission>,
        /// An IPv4 or IPv6 address or CIDR range the key may be used from. Repeat it for
        /// several (at most 16); none: anywhere.
        #[arg(long = "allowed-ip", value_parser = parse_ip_range)]
        allowed_ips: Vec<IpRange>,
        /// How long the key works, e.g. 90d or 12h (default: until revoked).
        #[arg(long, value_parser = parse_lifetime)]
        expires_in: Option<Duration>,
        /// Environment of the new key (default: that of the account's keys). Refused if it
        /// differs from theirs, or from API_KEY_ENVIRONMENT when that is set.
        #[arg(long, value_parser = parse_environment)]
        key_environment: Option<KeyEnvironment>,
    },
    /// Roll one key by its id: a new key of its kind, name, permissions and IP ranges, and
    /// the rolled key stops after the grace period. Only an active key (no end ahead) can
    /// be.
    Roll {
        #[arg(value_parser = parse_key_id)]
        key: KeyId,
        /// How long the rolled key keeps working: e.g. 0 (default: at once), 30s, 90m, 24h,
        /// 7d; at most 30 days.
        #[arg(long, value_parser = parse_grace, default_value = "0")]
        grace: Duration,
    },
    /// Revoke a key: it stops authenticating on the very next request.
    Revoke {
        #[arg(value_parser = parse_key_id)]
        key: KeyId,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// An account's audit events, newest first.
    List {
        #[arg(value_parser = parse_account_id)]
        account: AccountId,
        /// At most this many events (1 to 10000).
        #[arg(long, default_value = "100", value_parser = parse_limit)]
        limit: usize,
    },
}

#[derive(Subcommand)]
enum TablesCommand {
    /// Create the tables if they do not exist.
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

fn parse_key_name(value: &str) -> Result<KeyName, String> {
    KeyName::parse(value.to_owned()).map_err(|err| err.message)
}

fn parse_permission(value: &str) -> Result<Permission, String> {
    Permission::parse(value).ok_or_else(|| {
        let all: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
        format!("not a permission (one of {}): {value}", all.join(", "))
    })
}

fn parse_ip_range(value: &str) -> Result<IpRange, String> {
    IpRange::parse(value).map_err(|err| err.message)
}

/// A key's lifetime, as humantime reads it; at least a second, at most about 10 years.
fn parse_lifetime(value: &str) -> Result<Duration, String> {
    const MAX: Duration = Duration::from_secs(3650 * 24 * 3600);
    let lifetime = humantime::parse_duration(value)
        .map_err(|_| format!("not a duration (examples: 12h, 30d, 365d): {value}"))?;
    if lifetime.is_zero() || lifetime > MAX {
        return Err(format!("a lifetime from 1s to 3650d: {value}"));
    }
    Ok(lifetime)
}

fn parse_environment(value: &str) -> Result<KeyEnvironment, String> {
    value.parse()
}

fn parse_actor(value: &str) -> Result<Actor, String> {
    Actor::parse(value).map_err(|err| err.to_string())
}

fn parse_limit(value: &str) -> Result<usize, String> {
    value
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| format!("not a limit (a whole number from 1 to 10000): {value}"))
}

fn parse_rate_limit(value: &str) -> Result<RateLimitSetting, String> {
    if value == "default" {
        return Ok(RateLimitSetting::Default);
    }
    RateLimit::parse(value)
        .map(RateLimitSetting::Own)
        .map_err(|_| {
            format!(
                "not a rate limit (requests per second, 1 to {}, or default): {value}",
                RateLimit::MAX
            )
        })
}

/// A duration as humantime reads it (`0`, `30s`, `90m`, `24h`, `7d`, `1h30m`); at most 30
/// days.
fn parse_grace(value: &str) -> Result<Duration, String> {
    const MAX: Duration = Duration::from_secs(30 * 24 * 3600);
    let grace = humantime::parse_duration(value)
        .map_err(|_| format!("not a duration (examples: 0, 30s, 90m, 24h, 7d): {value}"))?;
    if grace > MAX {
        return Err(format!("grace period longer than 30 days: {value}"));
    }
    Ok(grace)
}

struct Output {
    json: bool,
}

impl Output {
    /// `{"error": {"code", "message", "retry_safe"}}` on stdout.
    fn print_failure(&self, failure: &Failure, message: &str) {
        self.print(
            json!({"error": {
                "code": failure.code(),
                "message": message,
                "retry_safe": failure.retry_safe(),
            }}),
            || message.to_owned(),
        );
    }

    fn print(&self, value: Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", text());
        }
    }
}

shared::string_enum!(
    /// The `code` of a `--json` failure, as docs/operations.md lists them.
    FailureCode {
        NotFound = "not_found",
        ChangedConcurrently = "changed_concurrently",
        StorageUnavailable = "storage_unavailable",
        StorageThrottled = "storage_throttled",
        OutcomeUnknown = "outcome_unknown",
        TooManyItems = "too_many_items",
        CorruptItem = "corrupt_item",
        ConditionFailed = "condition_failed",
        StorageError = "storage_error",
        TooManyLiveKeys = "too_many_live_keys",
        KeyNotActive = "key_not_active",
        WouldLockOut = "would_lock_out",
        InsufficientPermissions = "insufficient_permissions",
        GraceTooShort = "grace_too_short",
        KeyEnvironmentMismatch = "key_environment_mismatch",
        RandomSourceFailed = "random_source_failed",
        Usage = "usage",
    }
);

/// Why a command failed, in the operator's terms.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Random(#[from] RandomSourceFailed),
    /// Contradictory or invalid configuration, found after argument parsing (exit 2).
    #[error("{0}")]
    Usage(String),
}

impl From<AdminError> for Failure {
    fn from(err: AdminError) -> Self {
        match err {
            AdminError::Store(err) => Failure::Store(err),
            AdminError::Refused(refusal) => Failure::Refused(refusal),
            AdminError::Random(err) => Failure::Random(err),
        }
    }
}

impl Failure {
    /// A stable machine-readable code for `--json` output.
    fn code(&self) -> FailureCode {
        match self {
            Failure::Store(err) => match err {
                StoreError::NotFound { .. } => FailureCode::NotFound,
                StoreError::ChangedConcurrently { .. } => FailureCode::ChangedConcurrently,
                StoreError::Unavailable(_) => FailureCode::StorageUnavailable,
                StoreError::Throttled(_) => FailureCode::StorageThrottled,
                StoreError::OutcomeUnknown(_) => FailureCode::OutcomeUnknown,
                StoreError::TooManyItems { .. } => FailureCode::TooManyItems,
                StoreError::Corrupt { .. } => FailureCode::CorruptItem,
                StoreError::ConditionFailed { .. } => FailureCode::ConditionFailed,
                StoreError::Unexpected(_) => FailureCode::StorageError,
            },
            Failure::Refused(Refusal::TooManyLiveKeys { .. }) => FailureCode::TooManyLiveKeys,
            Failure::Refused(Refusal::KeyNotFound) => FailureCode::NotFound,
            Failure::Refused(Refusal::KeyNotActive { .. }) => FailureCode::KeyNotActive,
            Failure::Refused(Refusal::WouldLockOut) => FailureCode::WouldLockOut,
            Failure::Refused(
                Refusal::MissingPermission(_)
                | Refusal::IpRangesNotWithin
                | Refusal::SecretKeyOutOfReach
                | Refusal::OutlivesActingKey { .. },
            ) => FailureCode::InsufficientPermissions,
            Failure::Refused(Refusal::SelfRollTooSoon) => FailureCode::GraceTooShort,
            Failure::Refused(Refusal::EnvironmentMismatch { .. }) => {
                FailureCode::KeyEnvironmentMismatch
            }
            Failure::Random(_) => FailureCode::RandomSourceFailed,
            Failure::Usage(_) => FailureCode::Usage,
        }
    }

    fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Usage(_) => ExitCode::from(2),
            _ => ExitCode::FAILURE,
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
                "the change may or may not have been applied; check with `keys list` or \
                 `audit list` before trying again ({self:?})"
            ),
            Failure::Store(StoreError::Corrupt {
                entity,
                id,
                attribute,
            }) => format!("stored {entity} {id} is malformed ({attribute}); nothing was changed"),
            Failure::Refused(refusal) => format!("{refusal}; nothing was written"),
            Failure::Usage(message) => message.clone(),
            other => format!("{other:?}"),
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    init_audit_log();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage(err),
    };
    let out = Output {
        json: cli.global.json,
    };
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let message = err.message();
            if out.json {
                out.print_failure(&err, &message);
            }
            eprintln!("error: {message}");
            err.exit_code()
        }
    }
}

/// Arguments clap could not read: its own message on stderr (with the usage), and, when
/// `--json` is among them, the same `usage` failure on stdout that any other failure
/// prints. `--help` and `--version` print as usual.
fn usage(err: clap::Error) -> ExitCode {
    if err.use_stderr() && std::env::args().skip(1).any(|arg| arg == "--json") {
        let message = match err.kind() {
            clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                "a command is missing (see --help)".to_owned()
            }
            _ => {
                let text = err.to_string();
                let first = text.lines().next().unwrap_or_default();
                first.trim_start_matches("error: ").to_owned()
            }
        };
        let failure = Failure::Usage(message);
        Output { json: true }.print_failure(&failure, &failure.message());
    }
    let _ = err.print();
    ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2))
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

/// The environment of a rotation's new key: the flag, else the deployment's, else the
/// account's own (the store refuses one that differs from the account's keys).
fn rotation_environment(
    flag: Option<KeyEnvironment>,
    deployment: Option<&str>,
    account: Option<KeyEnvironment>,
) -> Result<KeyEnvironment, Failure> {
    let deployment = match deployment.filter(|v| !v.trim().is_empty()) {
        Some(value) => Some(
            value
                .parse::<KeyEnvironment>()
                .map_err(|err| Failure::Usage(format!("API_KEY_ENVIRONMENT: {err}")))?,
        ),
        None => None,
    };
    let chosen = flag
        .or(deployment)
        .or(account)
        .unwrap_or(KeyEnvironment::Test);
    if let Some(deployment) = deployment.filter(|d| *d != chosen) {
        return Err(Failure::Refused(Refusal::EnvironmentMismatch {
            requested: chosen,
            existing: deployment,
        }));
    }
    Ok(chosen)
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let Global {
        endpoint_url,
        clients_table,
        payments_table,
        audit_table,
        json,
        actor,
    } = cli.global;
    let out = Output { json };
    let actor = actor
        .or_else(|| {
            std::env::var("USER")
                .ok()
                .and_then(|user| Actor::parse(&user).ok())
        })
        .unwrap_or_else(|| Actor::parse("unknown").expect("a valid actor"));
    let client = dynamodb_client(endpoint_url.as_deref()).await;
    let tables = Tables {
        clients: clients_table,
        payments: payments_table,
        audit: audit_table,
    };
    let store = DynamoStore::new(client.clone(), tables.clone());
    let now = Timestamp::now();

    match cli.command {
        Command::Tables {
            command: TablesCommand::Create,
        } => {
            create_tables(&client, &tables).await?;
            out.print(
                json!({
                    "clients_table": tables.clients,
                    "payments_table": tables.payments,
                    "audit_table": tables.audit,
                }),
                || {
                    format!(
                        "tables ready: {} {} {}",
                        tables.clients, tables.payments, tables.audit
                    )
                },
            );
        }
        Command::Accounts { command } => match command {
            AccountsCommand::Show { account } => {
                let listing = store.account_keys(&account, now).await?;
                let live = listing.keys.iter().filter(|k| k.state.is_live()).count();
                let account = &listing.account;
                out.print(
                    json!({
                        "account": account,
                        "rate_limit": listing.rate_limit,
                        "keys": listing.keys,
                        "malformed_keys": listing.malformed,
                    }),
                    || {
                        format!(
                            "{}  {}  status={}  email={}  created={}  rate_limit={}  keys={} ({} live)",
                            account.id,
                            account.name.as_str(),
                            account.status.as_str(),
                            account.email.as_ref().map_or("-", |e| e.as_str()),
                            account.created_at.to_rfc3339(),
                            match listing.rate_limit {
                                RateLimitSetting::Default => "default".to_owned(),
                                RateLimitSetting::Own(limit) => limit.to_string(),
                            },
                            listing.keys.len(),
                            live
                        )
                    },
                );
                warn_malformed(&listing.malformed);
            }
            AccountsCommand::Deactivate { account } => {
                set_status(&store, &out, &account, AccountStatus::Inactive, now, &actor).await?
            }
            AccountsCommand::Reactivate { account } => {
                set_status(&store, &out, &account, AccountStatus::Active, now, &actor).await?
            }
            AccountsCommand::SetLimit { account, limit } => {
                let change = store
                    .set_rate_limit(&account, limit.own(), now, &actor)
                    .await?;
                let changed = change == ChangeOutcome::Changed;
                out.print(
                    json!({"account_id": account, "rate_limit": limit, "changed": changed}),
                    || {
                        format!(
                            "account {account} {} rate limit {}",
                            if changed { "now has" } else { "already had" },
                            limit_text(limit)
                        )
                    },
                );
            }
        },
        Command::Keys { command } => match command {
            KeysCommand::List { account } => {
                let listing = store.account_keys(&account, now).await?;
                let keys = &listing.keys;
                out.print(
                    json!({"account_id": account, "keys": keys, "malformed_keys": listing.malformed}),
                    || {
                        let row = |cells: [&str; 10]| {
                            format!(
                                "{:<24}  {:<12}  {:<10}  {:<8}  {:<24}  {:<24}  {:<24}  {:<20}  {:<16}  {}",
                                cells[0], cells[1], cells[2], cells[3], cells[4], cells[5],
                                cells[6], cells[7], cells[8], cells[9]
                            )
                        };
                        let mut lines = vec![row([
                            "KEY ID", "PREFIX", "KIND", "STATE", "CREATED", "ENDS", "LAST USED",
                            "NAME", "ALLOWED IPS", "PERMISSIONS",
                        ])];
                        let time = |at: Option<Timestamp>| at.map_or("-".to_owned(), Timestamp::to_rfc3339);
                        for key in keys {
                            lines.push(row([
                                key.key_id.as_str(),
                                key.prefix.as_str(),
                                key.kind.as_str(),
                                key.state.as_str(),
                                &key.created_at.to_rfc3339(),
                                &time(key.revoked_at.or(key.expires_at)),
                                &time(key.last_used_at),
                                key.name.as_ref().map_or("-", KeyName::as_str),
                                &ip_text(&key.allowed_ips),
                                &permission_text(key.permissions),
                            ]));
                        }
                        lines.join("\n")
                    },
                );
                warn_malformed(&listing.malformed);
            }
            KeysCommand::Rotate {
                account,
                grace,
                key_environment,
            } => {
                let environment =
                    new_key_environment(&store, &account, key_environment, now).await?;
                let new_key = ApiKey::generate(KeyKind::Secret, environment)?;
                let issued = IssuedKey::new(&new_key, IdSource::random().key_id()?, now);
                let rotation = store
                    .rotate_key(&account, &issued, grace, now, &actor)
                    .await?;
                let still_used: Vec<&KeyId> = rotation
                    .retiring
                    .iter()
                    .filter(|key| key.recently_used)
                    .map(|key| &key.key_id)
                    .collect();
                out.print(
                    json!({
                        "account_id": rotation.account_id,
                        "key_id": rotation.new_key_id,
                        "api_key": new_key.expose_once(),
                        "retiring": rotation.retiring,
                        "recently_used": still_used,
                        "pruned": rotation.pruned,
                    }),
                    || {
                        let mut lines =
                            vec![
                            format!("new key {} for {}:", rotation.new_key_id, rotation.account_id),
                            format!("  {}", new_key.expose_once()),
                            "  (shown once: hand it to the client now; it cannot be shown again)"
                                .to_owned(),
                        ];
                        for key in &rotation.retiring {
                            let used = match key.last_used_at {
                                Some(at) if key.recently_used => {
                                    format!("; STILL IN USE, last used {}", at.to_rfc3339())
                                }
                                Some(at) => format!("; last used {}", at.to_rfc3339()),
                                None => "; never used".to_owned(),
                            };
                            lines.push(format!(
                                "old key {} stops working at {}{used}",
                                key.key_id,
                                key.expires_at.to_rfc3339()
                            ));
                        }
                        if !still_used.is_empty() {
                            lines.push(format!(
                                "{} retiring key(s) authenticated requests in the last 24 h: \
                                 make sure those clients have the new key before the grace \
                                 period ends",
                                still_used.len()
                            ));
                        }
                        for id in &rotation.pruned {
                            lines.push(format!(
                                "dead key {id} dropped from the account (its history stays in \
                                 the audit trail)"
                            ));
                        }
                        lines.join("\n")
                    },
                );
            }
            KeysCommand::Create {
                account,
                name,
                permissions,
                allowed_ips,
                expires_in,
                key_environment,
            } => {
                let ranges: Vec<String> = allowed_ips.iter().map(IpRange::to_string).collect();
                let grant = KeyGrant {
                    name: Some(name),
                    permissions: Permissions::of(permissions),
                    allowed_ips: IpAllowList::parse(ranges.iter().map(String::as_str))
                        .map_err(|err| Failure::Usage(format!("--allowed-ip: {}", err.message)))?,
                    expires_at: expires_in.map(|lifetime| now.plus(lifetime)),
                };
                let environment =
                    new_key_environment(&store, &account, key_environment, now).await?;
                let new_key = ApiKey::generate(KeyKind::Restricted, environment)?;
                let issued =
                    IssuedKey::with_grant(&new_key, IdSource::random().key_id()?, now, grant);
                let created = store
                    .create_key(&account, &issued, None, now, Origin::operator(&actor))
                    .await?;
                print_new_key(&out, &account, &created, &new_key, None);
            }
            KeysCommand::Roll { key, grace } => {
                let account = store.key_account(&key).await?;
                let ids = IdSource::random();
                let rolled = store
                    .roll_key(
                        &account,
                        &key,
                        grace,
                        &KeyMint { ids: &ids },
                        None,
                        now,
                        Origin::operator(&actor),
                    )
                    .await?;
                print_new_key(
                    &out,
                    &account,
                    &rolled.new_key,
                    &rolled.api_key,
                    Some(&rolled.old_key),
                );
            }
            KeysCommand::Revoke { key } => {
                let (account_id, outcome) = store.revoke_key(&key, now, &actor).await?;
                let already = outcome != Revocation::Revoked;
                out.print(
                    json!({
                        "key_id": key,
                        "account_id": account_id,
                        "revoked": true,
                        "already_revoked": already,
                        "already_gone": outcome == Revocation::AlreadyGone,
                    }),
                    || match outcome {
                        Revocation::Revoked => format!("key {key} of {account_id} revoked"),
                        Revocation::AlreadyRevoked => format!("key {key} was already revoked"),
                        Revocation::AlreadyGone => format!(
                            "key {key} is already gone from {account_id} (revoked and pruned)"
                        ),
                    },
                );
            }
        },
        Command::Audit {
            command: AuditCommand::List { account, limit },
        } => {
            let events = store.audit_events(&account, limit).await?;
            if events.is_empty() && store.get_account(&account).await?.is_none() {
                return Err(Failure::Store(StoreError::NotFound {
                    entity: Entity::Account,
                    id: account.to_string(),
                }));
            }
            out.print(json!({"account_id": account, "events": events}), || {
                let mut lines = vec![format!(
                    "{:<24}  {:<20}  {:<24}  {:<32}  {:<40}  {}",
                    "AT", "ACTION", "EVENT ID", "ACTOR", "REQUEST ID", "KEYS"
                )];
                for event in &events {
                    lines.push(format!(
                        "{:<24}  {:<20}  {:<24}  {:<32}  {:<40}  {}",
                        event.at.to_rfc3339(),
                        event.action.as_str(),
                        event.event_id,
                        event.actor.as_str(),
                        event.request_id.as_deref().unwrap_or("-"),
                        event
                            .key_ids
                            .iter()
                            .map(KeyId::as_str)
                            .collect::<Vec<_>>()
                            .join(",")
                    ));
                }
                lines.join("\n")
            });
        }
    }
    Ok(())
}

/// The environment of a new key for `account`: see [`rotation_environment`].
async fn new_key_environment(
    store: &DynamoStore,
    account: &AccountId,
    flag: Option<KeyEnvironment>,
    now: Timestamp,
) -> Result<KeyEnvironment, Failure> {
    let deployment = std::env::var("API_KEY_ENVIRONMENT")
        .ok()
        .filter(|value| !value.trim().is_empty());
    // Only asked for when neither the flag nor the deployment says; the store refuses a key
    // of another environment than the account's either way.
    let existing = if flag.is_none() && deployment.is_none() {
        store.account_environment(account, now).await?
    } else {
        None
    };
    rotation_environment(flag, deployment.as_deref(), existing)
}

/// A created or rolled key, with its secret (shown once), and the key a roll replaced.
fn print_new_key(
    out: &Output,
    account: &AccountId,
    key: &KeySummary,
    secret: &ApiKey,
    rolled: Option<&KeySummary>,
) {
    out.print(
        json!({
            "account_id": account,
            "key": key,
            "api_key": secret.expose_once(),
            "rolled": rolled,
        }),
        || {
            let mut lines = vec![
                format!(
                    "new {} key {} for {account} ({}):",
                    key.kind.as_str(),
                    key.key_id,
                    permission_text(key.permissions)
                ),
                format!("  {}", secret.expose_once()),
                "  (shown once: hand it to the client now; it cannot be shown again)".to_owned(),
            ];
            if !key.allowed_ips.is_open() {
                lines.push(format!("usable only from {}", ip_text(&key.allowed_ips)));
            }
            if let Some(at) = key.expires_at {
                lines.push(format!("it stops working at {}", at.to_rfc3339()));
            }
            if let Some(old) = rolled {
                lines.push(format!(
                    "rolled key {} stops working at {}",
                    old.key_id,
                    old.expires_at.map_or("-".to_owned(), Timestamp::to_rfc3339)
                ));
            }
            lines.join("\n")
        },
    );
}

fn permission_text(permissions: Permissions) -> String {
    permissions
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn ip_text(ips: &IpAllowList) -> String {
    if ips.is_open() {
        return "any".to_owned();
    }
    ips.ranges()
        .iter()
        .map(IpRange::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn limit_text(limit: RateLimitSetting) -> String {
    match limit {
        RateLimitSetting::Default => "default (the stack's DefaultRateLimit)".to_owned(),
        RateLimitSetting::Own(limit) => format!("{} requests/s", limit.per_second()),
    }
}

fn warn_malformed(malformed: &[String]) {
    if !malformed.is_empty() {
        eprintln!(
            "warning: {} key entr{} on this account did not read back and {} not shown: {}",
            malformed.len(),
            if malformed.len() == 1 { "y" } else { "ies" },
            if malformed.len() == 1 { "is" } else { "are" },
            malformed.join(", ")
        );
    }
}

async fn set_status(
    store: &DynamoStore,
    out: &Output,
    account: &AccountId,
    status: AccountStatus,
    now: Timestamp,
    actor: &Actor,
) -> Result<(), Failure> {
    let change = store
        .set_account_status(account, status, now, actor)
        .await?;
    let changed = change == ChangeOutcome::Changed;
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
    use proptest::prelude::*;
    use shared::store::lifecycle::DEFAULT_ROTATION_GRACE;

    #[test]
    fn every_failure_code_is_documented() {
        let docs = include_str!("../../../docs/operations.md");
        for code in FailureCode::ALL {
            assert!(
                docs.contains(&format!("`{code}`")),
                "{code} is missing from docs/operations.md"
            );
        }
    }

    #[test]
    fn grace_durations() {
        assert_eq!(parse_grace("0"), Ok(Duration::ZERO));
        assert_eq!(parse_grace("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_grace("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_grace("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_grace("24h"), Ok(DEFAULT_ROTATION_GRACE));
        assert_eq!(parse_grace("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_grace("30d"), Ok(Duration::from_secs(30 * 86_400)));
        for bad in [
            "",
            "h",
            "-1h",
            "+1h",
            "24",
            "31d",
            "1M",
            "1é",
            "é",
            "１h",
            "99999999999999999999d",
        ] {
            assert!(parse_grace(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_rotation_environment_never_contradicts_the_deployment() {
        use KeyEnvironment::{Live, Test};
        assert_eq!(rotation_environment(None, None, Some(Live)).unwrap(), Live);
        assert_eq!(
            rotation_environment(None, Some("test"), Some(Live)).unwrap(),
            Test
        );
        assert_eq!(
            rotation_environment(Some(Live), Some(""), None).unwrap(),
            Live
        );
        assert!(matches!(
            rotation_environment(Some(Test), Some("live"), None),
            Err(Failure::Refused(Refusal::EnvironmentMismatch { .. }))
        ));
        assert!(rotation_environment(None, Some("prod"), None).is_err());
    }

    proptest! {
        // Whatever an operator types, each parser answers Ok or Err: never a panic.
        #[test]
        fn parsers_never_panic(input in any::<String>()) {
            let _ = parse_grace(&input);
            let _ = parse_account_id(&input);
            let _ = parse_key_id(&input);
            let _ = parse_environment(&input);
            let _ = parse_actor(&input);
            let _ = parse_limit(&input);
            let _ = parse_key_name(&input);
            let _ = parse_permission(&input);
            let _ = parse_ip_range(&input);
            let _ = parse_lifetime(&input);
        }

        #[test]
        fn near_valid_durations_never_panic(
            number in "[0-9]{0,22}",
            unit in prop::sample::select(vec!["s", "m", "h", "d", "é", "ß", "", "w", "１"]),
        ) {
            let text = format!("{number}{unit}");
            if let Ok(grace) = parse_grace(&text) {
                prop_assert!(grace <= Duration::from_secs(30 * 86_400));
            }
        }

        #[test]
        fn whole_command_lines_never_panic(args in prop::collection::vec(
            prop_oneof![
                Just("keys".to_owned()), Just("rotate".to_owned()), Just("revoke".to_owned()),
                Just("create".to_owned()), Just("roll".to_owned()),
                Just("--permission".to_owned()), Just("--allowed-ip".to_owned()),
                Just("--expires-in".to_owned()), Just("--name".to_owned()),
                Just("list".to_owned()), Just("accounts".to_owned()), Just("audit".to_owned()),
                Just("--grace".to_owned()), Just("--limit".to_owned()),
                Just("--key-environment".to_owned()), Just("--actor".to_owned()),
                Just("set-limit".to_owned()), Just("default".to_owned()),
                Just("acct_AAAAAAAAAAAAAAAAAAAA".to_owned()), any::<String>(),
            ],
            0..7,
        )) {
            let _ = Cli::try_parse_from(std::iter::once("payments-admin".to_owned()).chain(args));
        }
    }

    #[test]
    fn rate_limits_are_a_number_or_default() {
        assert_eq!(parse_rate_limit("default"), Ok(RateLimitSetting::Default));
        assert_eq!(
            parse_rate_limit("250"),
            Ok(RateLimitSetting::Own(RateLimit::new(250).unwrap()))
        );
        for bad in ["0", "100001", "-1", "1.5", "Default", ""] {
            assert!(parse_rate_limit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
