//! `analytics-admin`: sites, API keys, shared links and user deletion, from
//! a shell (locally, or `kubectl exec` in the api pod). The same operations
//! are served under `/api/admin/` to an admin key.

use analytics_core::access::{keys, links, sites, timezone, AccessError};
use analytics_core::conversions::{funnels, goals};
use analytics_core::ops::config::{parse_or_exit, DatabaseUrl, LogFormat};
use analytics_core::store::{connect, import, user_events};
use clap::{Parser, Subcommand};
use migration::MigratorTrait;
use sea_orm::DbBackend;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "analytics-admin",
    version,
    about = "Sites, API keys, shared links, goals and funnels, user deletion and imports"
)]
struct Cli {
    #[arg(
        long,
        env = "DATABASE_URL",
        value_name = "DATABASE_URL",
        hide_env_values = true,
        value_parser = DatabaseUrl::parse
    )]
    database_url: DatabaseUrl,
    #[arg(long, env = "LOG_FORMAT", value_name = "LOG_FORMAT", default_value = "pretty")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Registered sites.
    #[command(subcommand)]
    Sites(SitesCmd),
    /// API keys (shown once, at creation).
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Users' data.
    #[command(subcommand)]
    Users(UsersCmd),
    /// Shared read-only dashboard links.
    #[command(subcommand)]
    Links(LinksCmd),
    /// A site's goals (conversions: pageviews of a path pattern, or custom events).
    #[command(subcommand)]
    Goals(GoalsCmd),
    /// A site's saved funnels (2 to 8 steps, each a goal, a page or an event).
    #[command(subcommand)]
    Funnels(FunnelsCmd),
    /// Imports raw events of one site from our export (NDJSON or CSV):
    /// idempotent on event_id, history of any age allowed.
    Import {
        #[arg(long)]
        site: String,
        /// `ndjson` or `csv`; by default from the file's extension.
        #[arg(long)]
        format: Option<String>,
        /// Import nothing when a line is bad (by default the good lines are
        /// imported and the bad ones reported).
        #[arg(long)]
        all_or_nothing: bool,
        file: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum SitesCmd {
    /// Registers a site (again: adds domains).
    Add {
        site: String,
        /// Host names the site is served on (for Plausible's `d=`).
        #[arg(long = "domain")]
        domains: Vec<String>,
        /// Its IANA time zone (Europe/Berlin); a new site's is UTC without
        /// it, a registered site keeps its own.
        #[arg(long, value_name = "ZONE")]
        timezone: Option<String>,
    },
    /// Changes a registered site's IANA time zone.
    SetTimezone {
        site: String,
        /// Europe/Berlin, Asia/Kathmandu, UTC, …
        #[arg(value_name = "ZONE")]
        timezone: String,
    },
    /// Every site, registered or with data, with its time zone.
    List,
    /// Removes a site and every row of its data.
    Remove { site: String },
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Creates a key; its last line of output is the key, shown only now.
    Create {
        #[arg(long)]
        name: String,
        /// read, ingest or admin.
        #[arg(long)]
        scope: String,
        /// Sites it may use (repeat); none: every site.
        #[arg(long = "site")]
        sites: Vec<String>,
    },
    /// Every key, without its secret.
    List,
    /// Revokes a key at once.
    Revoke { name: String },
}

#[derive(Subcommand)]
enum UsersCmd {
    /// Deletes a user's events and takes them out of every count.
    Delete {
        #[arg(long)]
        site: String,
        #[arg(long)]
        user: String,
    },
}

#[derive(Subcommand)]
enum LinksCmd {
    /// Creates a read-only link to a site's dashboard; the last line is its path.
    Create {
        #[arg(long)]
        site: String,
    },
    List,
    /// Revokes a link by its id (or its token).
    Revoke {
        id: String,
    },
}

#[derive(Subcommand)]
enum GoalsCmd {
    /// Adds a goal: `--page PATTERN` (`*` within a path segment, `**`
    /// across) or `--event NAME` (optionally `--prop KEY=VALUE`).
    Add {
        #[arg(long)]
        site: String,
        name: String,
        #[arg(long, conflicts_with = "event")]
        page: Option<String>,
        #[arg(long)]
        event: Option<String>,
        #[arg(long, value_name = "KEY=VALUE", requires = "event")]
        prop: Option<String>,
        /// A revenue goal: the ISO 4217 currency its events' revenue is in.
        #[arg(long, value_name = "CODE", requires = "event")]
        currency: Option<String>,
    },
    List {
        #[arg(long)]
        site: String,
    },
    Remove {
        #[arg(long)]
        site: String,
        name: String,
    },
}

#[derive(Subcommand)]
enum FunnelsCmd {
    /// Saves a funnel; `--steps` is the API's JSON array, e.g.
    /// '[{"page":"/pricing"},{"goal":"Signup"}]'.
    Add {
        #[arg(long)]
        site: String,
        name: String,
        #[arg(long)]
        steps: String,
    },
    List {
        #[arg(long)]
        site: String,
    },
    Remove {
        #[arg(long)]
        site: String,
        name: String,
    },
}

/// How long to wait for the database to accept connections.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() {
    let cli: Cli = parse_or_exit();
    // Quiet by default: in an api pod it inherits the api's RUST_LOG, and
    // with `kubectl exec -t` stderr mixes into the output a script reads.
    analytics_core::ops::telemetry::init_cli(cli.log_format, "ADMIN_LOG", "warn");
    if let Err(e) = run(cli).await {
        eprintln!("analytics-admin: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    cli.database_url.check().map_err(anyhow::Error::msg)?;
    let db = connect::connect_with_retry(cli.database_url.expose(), 1, CONNECT_WAIT).await?;
    if db.get_database_backend() == DbBackend::Sqlite {
        // Embedded mode's file: migrated as the api migrates it.
        migration::Migrator::up(&db, None).await?;
    } else {
        connect::schema_status(&db, &migration::known_versions())
            .await
            .map_err(anyhow::Error::msg)?;
    }
    match cli.command {
        Command::Sites(SitesCmd::Add {
            site,
            domains,
            timezone: zone,
        }) => {
            let zone = zone.as_deref().map(timezone::parse).transpose().map_err(clear)?;
            let s = sites::add_in(&db, &site, &domains, zone).await.map_err(clear)?;
            println!(
                "site {} registered (domains: {}; time zone {})",
                s.site_id,
                list_or_none(&s.domains),
                s.timezone
            );
        }
        Command::Sites(SitesCmd::SetTimezone { site, timezone: zone }) => {
            let zone = timezone::parse(&zone).map_err(clear)?;
            let s = sites::set_timezone(&db, &site, zone).await.map_err(clear)?;
            println!("site {} is now in time zone {}", s.site_id, s.timezone);
        }
        Command::Sites(SitesCmd::List) => {
            for s in sites::list(&db).await.map_err(clear)? {
                println!(
                    "{}\t{}\tdomains: {}\tusers: {}\ttimezone: {}",
                    s.site_id,
                    if s.registered { "registered" } else { "data only" },
                    list_or_none(&s.domains),
                    s.users,
                    s.timezone
                );
            }
        }
        Command::Sites(SitesCmd::Remove { site }) => {
            let events = sites::remove(&db, &site).await.map_err(clear)?;
            println!("site {site} removed with its {events} events and every count");
        }
        Command::Keys(KeysCmd::Create { name, scope, sites }) => {
            let scope = keys::Scope::parse(&scope).map_err(clear)?;
            let key = keys::create(&db, &name, scope, &sites).await.map_err(clear)?;
            println!(
                "key {name} created: scope {}, sites: {}; it is shown only now",
                scope.as_str(),
                if sites.is_empty() {
                    "all".to_string()
                } else {
                    sites.join(", ")
                }
            );
            println!("{key}");
        }
        Command::Keys(KeysCmd::List) => {
            for k in keys::list(&db).await.map_err(clear)? {
                println!(
                    "{}\t{}\t{}\tsites: {}\tcreated {}\tlast used {}{}",
                    k.name,
                    k.prefix,
                    k.scope.as_str(),
                    if k.sites.is_empty() {
                        "all".to_string()
                    } else {
                        k.sites.join(",")
                    },
                    k.created_at.format("%Y-%m-%d %H:%M"),
                    k.last_used_at
                        .map_or("never".into(), |t| t.format("%Y-%m-%d %H:%M").to_string()),
                    if k.revoked { "\trevoked" } else { "" }
                );
            }
        }
        Command::Keys(KeysCmd::Revoke { name }) => {
            keys::revoke(&db, &name).await.map_err(clear)?;
            println!("key {name} revoked");
        }
        Command::Users(UsersCmd::Delete { site, user }) => {
            let events = user_events::delete(&db, &site, &user).await?;
            println!("user deleted from site {site}: {events} events, and every count they were in");
        }
        Command::Links(LinksCmd::Create { site }) => {
            let token = links::create(&db, &site).await.map_err(clear)?;
            println!("read-only link to {site}'s dashboard created; open it on the api:");
            println!("/share/{token}");
        }
        Command::Links(LinksCmd::List) => {
            for l in links::list(&db).await.map_err(clear)? {
                println!(
                    "{}\t{}\tcreated {}{}",
                    l.id,
                    l.site_id,
                    l.created_at.format("%Y-%m-%d %H:%M"),
                    if l.revoked { "\trevoked" } else { "" }
                );
            }
        }
        Command::Links(LinksCmd::Revoke { id }) => {
            links::revoke(&db, &id).await.map_err(clear)?;
            println!("link {id} revoked");
        }
        Command::Goals(GoalsCmd::Add {
            site,
            name,
            page,
            event,
            prop,
            currency,
        }) => {
            let prop = match prop.as_deref().map(|p| p.split_once('=')) {
                None => None,
                Some(Some(kv)) => Some(kv),
                Some(None) => anyhow::bail!("--prop is KEY=VALUE"),
            };
            let goal = goals::definition(&name, page.as_deref(), event.as_deref(), prop, currency.as_deref())
                .map_err(clear)?;
            goals::add(&db, &site, &goal).await.map_err(clear)?;
            println!("goal {} added to site {site}: {}", goal.name, goal.to_json());
        }
        Command::Goals(GoalsCmd::List { site }) => {
            for g in goals::list(&db, &site).await? {
                println!("{}\t{}", g.name, g.to_json());
            }
        }
        Command::Goals(GoalsCmd::Remove { site, name }) => {
            goals::remove(&db, &site, &name).await.map_err(clear)?;
            println!("goal {name} removed from site {site}");
        }
        Command::Funnels(FunnelsCmd::Add { site, name, steps }) => {
            let steps: serde_json::Value =
                serde_json::from_str(&steps).map_err(|e| anyhow::anyhow!("--steps is not JSON: {e}"))?;
            let funnel = funnels::definition(&name, &steps).map_err(clear)?;
            funnels::add(&db, &site, &funnel).await.map_err(clear)?;
            println!("funnel {name} saved for site {site}: {}", funnel.to_json()["steps"]);
        }
        Command::Funnels(FunnelsCmd::List { site }) => {
            for f in funnels::list(&db, &site).await? {
                println!("{}\t{}", f.name, f.to_json()["steps"]);
            }
        }
        Command::Funnels(FunnelsCmd::Remove { site, name }) => {
            funnels::remove(&db, &site, &name).await.map_err(clear)?;
            println!("funnel {name} removed from site {site}");
        }
        Command::Import {
            site,
            format,
            all_or_nothing,
            file,
        } => import_file(&db, &site, format.as_deref(), all_or_nothing, &file).await?,
    }
    Ok(())
}

async fn import_file(
    db: &sea_orm::DatabaseConnection,
    site: &str,
    format: Option<&str>,
    all_or_nothing: bool,
    file: &std::path::Path,
) -> anyhow::Result<()> {
    use analytics_core::event::exchange::Format;
    let format = match format.or_else(|| file.extension().and_then(|e| e.to_str())) {
        Some("ndjson" | "jsonl" | "json") => Format::Ndjson,
        Some("csv") => Format::Csv,
        other => anyhow::bail!(
            "format: give --format ndjson or csv (got {})",
            other.unwrap_or("no extension")
        ),
    };
    let writer = analytics_core::store::Writer::open(db)?;
    let open = || std::fs::File::open(file).map(std::io::BufReader::new);
    let report = import::import(&writer, open, format, site, all_or_nothing, |r| {
        eprintln!(
            "… {} events read, {} new, {} already stored, {} bad lines",
            r.read, r.inserted, r.duplicates, r.bad_lines
        );
    })
    .await?;
    for bad in &report.bad {
        eprintln!("line {}: {}", bad.line, bad.message);
    }
    if report.bad_lines as usize > report.bad.len() {
        eprintln!("… and {} more bad lines", report.bad_lines as usize - report.bad.len());
    }
    if report.aborted {
        anyhow::bail!(
            "nothing imported: {} bad lines (without --all-or-nothing the good lines are imported)",
            report.bad_lines
        );
    }
    println!(
        "imported into {site}: {} events read, {} new, {} already stored, {} bad lines",
        report.read, report.inserted, report.duplicates, report.bad_lines
    );
    if report.bad_lines > 0 {
        anyhow::bail!("{} bad lines were not imported", report.bad_lines);
    }
    Ok(())
}

fn list_or_none(xs: &[String]) -> String {
    if xs.is_empty() {
        "none".into()
    } else {
        xs.join(", ")
    }
}

/// An access error as one clear line.
fn clear(e: AccessError) -> anyhow::Error {
    anyhow::Error::msg(e.to_string())
}
