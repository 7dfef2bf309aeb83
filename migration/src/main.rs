//! `analytics-migrate up | down | status`: the schema tool run by the
//! Kubernetes Job (the api migrates by itself only in embedded mode).

use analytics_core::ops::config::DatabaseUrl;
use clap::{Parser, Subcommand};
use migration::{Migrator, MigratorTrait};
use sea_orm_migration::MigrationStatus;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "analytics-migrate",
    version,
    about = "Apply, revert or list schema migrations"
)]
struct Cli {
    #[arg(long, env = "DATABASE_URL", value_name = "DATABASE_URL", hide_env_values = true, value_parser = DatabaseUrl::parse)]
    database_url: DatabaseUrl,
    /// How long to wait for the database to accept connections.
    #[arg(
        long,
        env = "MIGRATE_WAIT_SECONDS",
        value_name = "MIGRATE_WAIT_SECONDS",
        default_value = "120"
    )]
    wait_seconds: u64,
    #[arg(long, env = "LOG_FORMAT", value_name = "LOG_FORMAT", default_value = "pretty")]
    log_format: analytics_core::ops::config::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations (all, or the next N).
    Up {
        #[arg(short = 'n', long)]
        num: Option<u32>,
    },
    /// Revert applied migrations (the last one, or the last N).
    Down {
        #[arg(short = 'n', long, default_value = "1")]
        num: u32,
    },
    /// List every migration and whether it is applied.
    Status,
}

#[tokio::main]
async fn main() {
    let cli: Cli = analytics_core::ops::config::parse_or_exit();
    analytics_core::ops::telemetry::init_to(cli.log_format, true);
    if let Err(e) = run(cli).await {
        eprintln!("analytics-migrate: {e}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    cli.database_url.check().map_err(anyhow::Error::msg)?;
    let db = analytics_core::store::connect::connect_with_retry(
        cli.database_url.expose(),
        1,
        Duration::from_secs(cli.wait_seconds),
    )
    .await?;
    match cli.command {
        Command::Up { num } => {
            Migrator::up(&db, num).await?;
            println!("schema is up to date");
        }
        Command::Down { num } => {
            Migrator::down(&db, Some(num)).await?;
            println!("reverted {num} migration(s)");
        }
        Command::Status => {
            for m in Migrator::get_migration_with_status(&db).await? {
                let state = match m.status() {
                    MigrationStatus::Applied => "applied",
                    MigrationStatus::Pending => "pending",
                };
                println!("{state}\t{}", m.name());
            }
        }
    }
    Ok(())
}
