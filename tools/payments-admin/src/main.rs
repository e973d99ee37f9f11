//! Operator CLI for the payments service.

use clap::{Parser, Subcommand};
use shared::config::dynamodb_client;
use shared::store::dynamo::create_tables;

#[derive(Parser)]
#[command(
    name = "payments-admin",
    version,
    about = "Operate the payments API's DynamoDB tables"
)]
struct Cli {
    /// DynamoDB endpoint, for DynamoDB Local (default: AWS, from the standard credential chain).
    #[arg(long, global = true, env = "DYNAMODB_ENDPOINT")]
    endpoint_url: Option<String>,
    /// Clients table name.
    #[arg(
        long,
        global = true,
        env = "CLIENTS_TABLE",
        default_value = "payments-clients"
    )]
    clients_table: String,
    /// Payments table name.
    #[arg(
        long,
        global = true,
        env = "PAYMENTS_TABLE",
        default_value = "payments-payments"
    )]
    payments_table: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage tables (local development; in AWS the SAM stack owns the tables).
    Tables {
        #[command(subcommand)]
        command: TablesCommand,
    },
}

#[derive(Subcommand)]
enum TablesCommand {
    /// Create both tables if they do not exist.
    Create,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let client = dynamodb_client(cli.endpoint_url.as_deref()).await;
    match cli.command {
        Command::Tables {
            command: TablesCommand::Create,
        } => {
            create_tables(&client, &cli.clients_table, &cli.payments_table)
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            println!("tables ready: {} {}", cli.clients_table, cli.payments_table);
        }
    }
    Ok(())
}
