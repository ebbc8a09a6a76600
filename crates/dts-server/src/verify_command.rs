//! `dts verify`: compares tables of two MySQL-family servers on its own, outside any job, and
//! prints per table whether they are equal and, when not, the keys missing, extra or different
//! on the destination. Exit status 1 when anything differs.

use anyhow::{Context, bail};
use clap::Args;
use dts_core::ConnectionSpec;
use mysql_async::prelude::Queryable;

#[derive(Args)]
pub struct VerifyArgs {
    /// mysql://user:password@host:port
    #[arg(long)]
    source: String,
    /// mysql://user:password@host:port
    #[arg(long)]
    destination: String,
    /// Tables (db.table) or whole databases (db), comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    tables: Vec<String>,
    /// Rows per compared chunk (a differing chunk is drilled down row by row).
    #[arg(long, default_value_t = 100_000)]
    chunk_rows: u64,
    /// How many differing keys to print per kind and table.
    #[arg(long, default_value_t = 20)]
    show: usize,
}

fn spec(url: &str) -> anyhow::Result<ConnectionSpec> {
    let u = reqwest::Url::parse(url).with_context(|| format!("bad database URL {url}"))?;
    if !matches!(u.scheme(), "mysql" | "mariadb") {
        bail!("database URLs start with mysql:// or mariadb://");
    }
    let decode = |s: &str| crate::job_command::percent_decode(s);
    Ok(ConnectionSpec {
        host: u.host_str().context("database URL without host")?.to_string(),
        port: u.port().unwrap_or(3306),
        user: if u.username().is_empty() { "root".into() } else { decode(u.username()) },
        password: decode(u.password().unwrap_or_default()),
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

pub async fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let (source, destination) = (spec(&args.source)?, spec(&args.destination)?);
    let tables = expand(&source, &args.tables).await?;
    let mut inconsistent = 0;
    let started = std::time::Instant::now();
    for (i, (db, t)) in tables.iter().enumerate() {
        eprint!("[{}/{}] `{db}`.`{t}` ... ", i + 1, tables.len());
        let diff =
            dts_mysql::compare_table(&source, &destination, db, t, args.chunk_rows, std::time::Duration::from_secs(10))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        if diff.consistent() {
            eprintln!("equal ({} rows, {} chunks)", diff.source_rows, diff.chunks);
            continue;
        }
        inconsistent += 1;
        eprintln!("DIFFERENT");
        println!(
            "`{db}`.`{t}`: source {} rows, destination {} rows; {} of {} chunks differ",
            diff.source_rows, diff.destination_rows, diff.chunks_differing, diff.chunks
        );
        for (what, keys) in [
            ("missing on the destination", &diff.missing),
            ("extra on the destination", &diff.extra),
            ("different", &diff.different),
        ] {
            if keys.is_empty() {
                continue;
            }
            let shown: Vec<&str> = keys.iter().take(args.show).map(String::as_str).collect();
            let more =
                if keys.len() > args.show { format!(" and {} more", keys.len() - args.show) } else { String::new() };
            println!("  {} {what}: {}{more}", keys.len(), shown.join("; "));
        }
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
