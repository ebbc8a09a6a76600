//! `dts verify`: compares tables of two MySQL-family servers (or the databases of two Redis
//! servers, `redis://` URLs) on its own, outside any job, with a progress bar, and prints per
//! table whether they are equal and, when not, the keys missing, extra or different on the
//! destination (with the differing columns); optionally writes the SQL (Redis: `redis-cli`
//! commands) that would repair the destination. Exit status 1 when anything differs.

use anyhow::{Context, bail};
use clap::Args;
use dts_core::{CompareOptions, ConnectionSpec, TableDiff};
use mysql_async::prelude::Queryable;

#[derive(Args)]
pub struct VerifyArgs {
    /// mysql://user:password@host:port, or redis[s]://[user]:password@host:port (TLS:
    /// `?ssl-mode=required|verify-full&ssl-ca=ca.pem`, rediss:// is verify-full by default)
    #[arg(long)]
    source: String,
    /// mysql://user:password@host:port, or redis[s]://[user]:password@host:port
    #[arg(long)]
    destination: String,
    /// Tables (db.table) or whole databases (db), comma separated (Redis: database numbers;
    /// every database when absent).
    #[arg(long, value_delimiter = ',')]
    tables: Vec<String>,
    /// Rows per compared chunk (a differing chunk is drilled down row by row).
    #[arg(long, default_value_t = 100_000)]
    chunk_rows: u64,
    /// How many differing keys to print per kind and table.
    #[arg(long, default_value_t = 20)]
    show: usize,
    /// Compare only this percentage of each table's chunks (a sample).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(1..=100))]
    sample_percent: u8,
    /// The source is being written and replicated: re-compare differing rows after this many
    /// seconds (while they keep changing, up to 5 times) instead of reporting them at once.
    #[arg(long)]
    settle_secs: Option<u64>,
    /// Write SQL that makes the destination equal to the source to this file.
    #[arg(long)]
    repair_sql: Option<std::path::PathBuf>,
}

fn spec(url: &str) -> anyhow::Result<ConnectionSpec> {
    // The URL carries a password: errors never repeat it.
    let u = reqwest::Url::parse(url).map_err(|e| anyhow::anyhow!("bad database URL: {e}"))?;
    if !matches!(u.scheme(), "mysql" | "mariadb") {
        bail!("database URLs start with mysql:// or mariadb://");
    }
    if u.query().is_some() {
        bail!("`dts verify` connects without TLS and takes no URL options");
    }
    let decode = |s: &str| crate::job_command::percent_decode(s);
    Ok(ConnectionSpec {
        host: u.host_str().context("database URL without host")?.to_string(),
        port: u.port().unwrap_or(3306),
        user: if u.username().is_empty() { "root".into() } else { decode(u.username()) },
        password: decode(u.password().unwrap_or_default()),
        ..Default::default()
    })
}

/// `db` → every base table of it on the source; `db.t` as is.
async fn expand(source: &ConnectionSpec, items: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(source.host.clone())
        .tcp_port(source.port)
        .user(Some(source.user.clone()))
        .pass(Some(source.password.clone()))
        .prefer_socket(false);
    let mut conn = mysql_async::Conn::new(opts).await.context("cannot connect to the source")?;
    let mut out = Vec::new();
    for item in items {
        match item.split_once('.') {
            Some((db, t)) => out.push((db.to_string(), t.to_string())),
            None => {
                let tables: Vec<String> = conn
                    .exec(
                        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1",
                        (item.as_str(),),
                    )
                    .await?;
                if tables.is_empty() {
                    bail!("no table in database `{item}` on the source");
                }
                out.extend(tables.into_iter().map(|t| (item.clone(), t)));
            }
        }
    }
    let _ = conn.disconnect().await;
    Ok(out)
}

/// `redis[s]://[user]:password@host:port[?ssl-mode=..&ssl-ca=ca.pem]` as a connection
/// (`rediss://`: TLS, verify-full unless `ssl-mode` says otherwise).
fn redis_spec(url: &str) -> anyhow::Result<ConnectionSpec> {
    let u = reqwest::Url::parse(url).map_err(|e| anyhow::anyhow!("bad database URL: {e}"))?;
    let decode = |s: &str| crate::job_command::percent_decode(s);
    let mut tls = serde_json::Map::new();
    if u.scheme() == "rediss" {
        tls.insert("SrcSslMode".into(), "verify-full".into());
    }
    for (key, value) in u.query_pairs() {
        match key.as_ref() {
            "ssl-mode" => tls.insert("SrcSslMode".into(), value.as_ref().into()),
            "ssl-ca" => {
                let pem = std::fs::read_to_string(value.as_ref())
                    .with_context(|| format!("cannot read the CA file {value}"))?;
                tls.insert("SrcSslCa".into(), pem.into())
            }
            other => bail!("unknown Redis URL option `{other}` (ssl-mode, ssl-ca)"),
        };
    }
    let settings = dts_core::ExternSettings::parse(Some(&serde_json::Value::Object(tls).to_string()))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(ConnectionSpec {
        host: u.host_str().context("database URL without host")?.to_string(),
        port: u.port().unwrap_or(6379),
        user: decode(u.username()),
        password: decode(u.password().unwrap_or_default()),
        tls: settings.source_tls,
        ..Default::default()
    })
}

/// Compares the selected databases of two Redis servers with the Redis family's check.
async fn run_redis(args: &VerifyArgs) -> anyhow::Result<()> {
    use dts_core::ConsistencyChecker;
    let selection = if args.tables.is_empty() {
        dts_core::ObjectSelection::WholeInstance
    } else {
        dts_core::ObjectSelection::Databases(
            args.tables
                .iter()
                .map(|d| dts_core::DatabaseSelection { database: d.clone(), ..Default::default() })
                .collect(),
        )
    };
    let plan = dts_core::MigrationPlan {
        job_id: "verify".into(),
        kind: dts_core::JobKind::Migration,
        route: dts_core::route("redis", dts_core::DeclaredTarget::Database("redis")).expect("redis routes"),
        stages: dts_core::Stages::of_migrate_type(2),
        selection,
        source: redis_spec(&args.source)?,
        target: dts_core::Target::Database(redis_spec(&args.destination)?),
        override_root: false,
        loop_guard: None,
        conflict_policy: Default::default(),
        extern_params: None,
    };
    let checker = dts_redis::RedisConnector::default();
    let fail = |e: dts_core::ConnectorError| anyhow::anyhow!("{e}");
    let databases = checker.tables(&plan).await.map_err(fail)?;
    let options = CompareOptions {
        settle_window: args.settle_secs.map(std::time::Duration::from_secs),
        ..CompareOptions::default()
    };
    let bar = indicatif::ProgressBar::new(databases.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} databases {elapsed} {msg}")
            .expect("a valid progress template"),
    );
    let (mut inconsistent, mut repair) = (0, Vec::new());
    for (db, _) in &databases {
        bar.set_message(format!("database {db}"));
        let diff = checker.compare(&plan, db, "", &options).await.map_err(fail)?;
        bar.inc(1);
        if diff.consistent() {
            bar.suspend(|| eprintln!("database {db}: equal ({} keys)", diff.source_rows));
            continue;
        }
        inconsistent += 1;
        bar.suspend(|| print_diff(&diff, args.show));
        if args.repair_sql.is_some() {
            repair.extend(checker.repair_sql(&plan, &diff, usize::MAX).await.map_err(fail)?);
        }
    }
    bar.finish_and_clear();
    if let Some(path) = &args.repair_sql {
        let text: String = repair.iter().map(|s| format!("{s}\n")).collect();
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("{} repair command(s) written to {}", repair.len(), path.display());
    }
    eprintln!("{} database(s) compared, {inconsistent} inconsistent", databases.len());
    if inconsistent > 0 {
        std::process::exit(1);
    }
    Ok(())
}

pub async fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let redis = |u: &str| u.starts_with("redis://") || u.starts_with("rediss://");
    match (redis(&args.source), redis(&args.destination)) {
        (true, true) => return run_redis(&args).await,
        (false, false) => {}
        _ => bail!("both URLs must be redis:// or both mysql://"),
    }
    if args.tables.is_empty() {
        bail!("--tables is required for MySQL-family servers");
    }
    let (source, destination) = (spec(&args.source)?, spec(&args.destination)?);
    let tables = expand(&source, &args.tables).await?;
    let options = CompareOptions {
        chunk_rows: args.chunk_rows,
        sample_percent: args.sample_percent,
        settle_window: args.settle_secs.map(std::time::Duration::from_secs),
        ..CompareOptions::default()
    };
    let timeout = std::time::Duration::from_secs(10);
    let bar = indicatif::ProgressBar::new(tables.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} tables {elapsed} {msg}")
            .expect("a valid progress template"),
    );
    let mut inconsistent = 0;
    let mut repair = Vec::new();
    let started = std::time::Instant::now();
    for (db, t) in &tables {
        bar.set_message(format!("`{db}`.`{t}`"));
        let same = (db.clone(), t.clone());
        let diff = dts_mysql::compare_table(&source, &destination, (db, t), &same, &options, timeout)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        bar.inc(1);
        if diff.consistent() {
            bar.suspend(|| {
                eprintln!("`{db}`.`{t}`: equal ({} rows, {} chunks)", diff.source_rows, diff.chunks_compared)
            });
            continue;
        }
        inconsistent += 1;
        bar.suspend(|| print_diff(&diff, args.show));
        if args.repair_sql.is_some() {
            repair.extend(
                dts_mysql::repair_sql(&source, &diff, &same, usize::MAX, timeout)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            );
        }
    }
    bar.finish_and_clear();
    if let Some(path) = &args.repair_sql {
        let text: String = repair.iter().map(|s| format!("{s}\n")).collect();
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("{} repair statement(s) written to {}", repair.len(), path.display());
    }
    eprintln!(
        "{} table(s) compared in {:.1} s, {inconsistent} inconsistent",
        tables.len(),
        started.elapsed().as_secs_f64()
    );
    if inconsistent > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// A table's differences, as `dts verify` and `dts job diff` print them.
pub fn print_diff(diff: &TableDiff, show: usize) {
    println!(
        "`{}`.`{}`: DIFFERENT: source {} rows, destination {} rows; {} of {} compared chunks differ",
        diff.database, diff.table, diff.source_rows, diff.destination_rows, diff.chunks_differing, diff.chunks_compared
    );
    for (what, count, rows) in [
        ("missing on the destination", diff.missing_count, &diff.missing),
        ("extra on the destination", diff.extra_count, &diff.extra),
        ("different", diff.different_count, &diff.different),
    ] {
        if count == 0 {
            continue;
        }
        let shown: Vec<String> = rows
            .iter()
            .take(show)
            .map(|r| if r.columns.is_empty() { r.key.clone() } else { format!("{} [{}]", r.key, r.columns.join(", ")) })
            .collect();
        let more = if count as usize > shown.len() {
            format!(" and {} more", count as usize - shown.len())
        } else {
            String::new()
        };
        println!("  {count} {what}: {}{more}", shown.join("; "));
    }
    if !diff.unsettled.is_empty() {
        println!("  {} still changing (not compared): {}", diff.unsettled.len(), diff.unsettled.join("; "));
    }
}
