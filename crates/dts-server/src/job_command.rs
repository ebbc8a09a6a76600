//! `dts job ...`: the migration actions from the command line, as tables or `--json`.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::{Value, json};

use crate::client::{Client, ClientArgs};

#[derive(Subcommand)]
pub enum JobCommand {
    /// List jobs.
    List {
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u64,
        #[arg(long, default_value_t = 0)]
        offset: u64,
        #[arg(long)]
        json: bool,
    },
    /// Show one job with its steps; `--watch` refreshes until it ends.
    Show {
        job_id: String,
        #[arg(long)]
        watch: bool,
        #[arg(long)]
        json: bool,
    },
    /// Create a job from a CreateMigrateJob request (JSON file, `-` for stdin) or from flags.
    Create {
        /// CreateMigrateJob request as JSON.
        #[arg(long, conflicts_with_all = ["name", "source", "destination"])]
        request: Option<PathBuf>,
        #[arg(long)]
        name: Option<String>,
        /// mysql://user:password@host:port (or redis://[user]:password@host:port), with `?ssl-mode=required` or
        /// `?ssl-mode=verify-full&ssl-ca=ca.pem` for TLS (rediss:// is Redis with TLS, verify-full by default)
        #[arg(long)]
        source: Option<String>,
        /// mysql://user:password@host:port, TLS options as for --source
        #[arg(long)]
        destination: Option<String>,
        /// Databases or db.table names, comma separated; whole instance when absent.
        #[arg(long, value_delimiter = ',')]
        objects: Vec<String>,
        /// 1 structure, 2 structure + full data, 3 structure + full + incremental.
        #[arg(long, default_value_t = 1)]
        migrate_type: i64,
        #[arg(long, default_value = "ap-guangzhou")]
        dst_region: String,
        /// MigrateOption.ConsistencyType: 2 full check, 3 sampled, 4 re-check inconsistent tables.
        #[arg(long)]
        consistency_type: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Modify a job with a ModifyMigrateJob request (JSON file or `-`); JobId is added.
    Modify {
        job_id: String,
        #[arg(long)]
        request: PathBuf,
    },
    /// Run the precheck and wait for its result.
    Check {
        job_id: String,
        /// Return at once instead of waiting.
        #[arg(long)]
        no_wait: bool,
        #[arg(long)]
        json: bool,
    },
    Start {
        job_id: String,
    },
    Stop {
        job_id: String,
    },
    Complete {
        job_id: String,
        #[arg(long, default_value = "waitForSync", value_parser = ["waitForSync", "immediately"])]
        mode: String,
    },
    Delete {
        job_id: String,
    },
    /// The job's last consistency check: per table the rows missing, extra and different on the
    /// destination (with the differing columns). Exit status 1 when anything differs.
    Diff {
        job_id: String,
        /// Write the SQL that would repair the destination to this file.
        #[arg(long)]
        repair_sql: Option<PathBuf>,
        /// How many rows to print per kind and table.
        #[arg(long, default_value_t = 20)]
        show: usize,
        #[arg(long)]
        json: bool,
    },
}

const STATUS_NAMES: [(i64, &str); 11] = [
    (1, "Creating"),
    (3, "Checking"),
    (4, "CheckPass"),
    (5, "CheckNotPass"),
    (7, "Running"),
    (8, "ReadyComplete"),
    (9, "Success"),
    (10, "Failed"),
    (11, "Stopping"),
    (12, "Completing"),
    (13, "Suspended"),
];

fn status_name(code: i64) -> String {
    STATUS_NAMES.iter().find(|(c, _)| *c == code).map(|(c, n)| format!("{c} {n}")).unwrap_or_else(|| code.to_string())
}

fn read_json(path: &PathBuf) -> anyhow::Result<Value> {
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    serde_json::from_str(&text).context("the request is not valid JSON")
}

/// A URL as it may be shown: the password of its user info replaced by `***`.
fn masked_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_string() };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else { return url.to_string() };
    match rest[..at].find(':') {
        Some(colon) => format!("{}{}:***{}", &url[..scheme_end], &rest[..colon], &rest[at..]),
        None => url.to_string(),
    }
}

/// `mysql://user:password@host:port[?ssl-mode=required|verify-full[&ssl-ca=ca.pem]]` into
/// SrcInfo/DstInfo fields, and the endpoint's TLS settings as `ExternParams` entries
/// (`<prefix>SslMode`, `<prefix>SslCa` with the CA file's PEM text). Errors show the URL
/// without its password.
fn endpoint_info(url: &str, prefix: &str) -> anyhow::Result<(Value, serde_json::Map<String, Value>)> {
    let u = reqwest::Url::parse(url)
        .with_context(|| format!("bad database URL {} for the {prefix} endpoint", masked_url(url)))?;
    if matches!(u.scheme(), "redis" | "rediss") {
        // redis://[user]:password@host:port (an ACL user when given); rediss:// is TLS,
        // verify-full unless ssl-mode says otherwise.
        let mut tls = url_tls(&u, prefix)?;
        if u.scheme() == "rediss" {
            tls.entry(format!("{prefix}SslMode")).or_insert(json!("verify-full"));
        }
        let mut info = json!({
            "Ip": u.host_str().context("database URL without host")?,
            "Port": u.port().unwrap_or(6379),
            "Password": percent_decode(u.password().unwrap_or_default()),
        });
        if !u.username().is_empty() {
            info["User"] = json!(percent_decode(u.username()));
        }
        return Ok((info, tls));
    }
    if !matches!(u.scheme(), "mysql" | "mariadb") {
        bail!("database URLs start with mysql://, mariadb://, redis:// or rediss://");
    }
    let tls = url_tls(&u, prefix)?;
    let decode = |s: &str| percent_decode(s);
    let info = json!({
        "Ip": u.host_str().context("database URL without host")?,
        "Port": u.port().unwrap_or(3306),
        "User": if u.username().is_empty() { "root".to_string() } else { decode(u.username()) },
        "Password": decode(u.password().unwrap_or_default()),
    });
    Ok((info, tls))
}

/// A URL's `ssl-mode` and `ssl-ca` (a PEM file, read) as `<prefix>SslMode`/`<prefix>SslCa`.
fn url_tls(u: &reqwest::Url, prefix: &str) -> anyhow::Result<serde_json::Map<String, Value>> {
    let mut tls = serde_json::Map::new();
    for (key, value) in u.query_pairs() {
        match key.as_ref() {
            "ssl-mode" | "sslmode" | "ssl_mode" => {
                tls.insert(format!("{prefix}SslMode"), json!(value));
            }
            "ssl-ca" | "sslca" | "ssl_ca" => {
                let pem = std::fs::read_to_string(value.as_ref())
                    .with_context(|| format!("cannot read the CA file {value}"))?;
                tls.insert(format!("{prefix}SslCa"), json!(pem));
            }
            other => bail!("unknown database URL option `{other}` (ssl-mode, ssl-ca)"),
        }
    }
    Ok(tls)
}

pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn database_info(objects: &[String]) -> Option<String> {
    if objects.is_empty() {
        return None;
    }
    let mut dbs: Vec<(String, Vec<String>)> = Vec::new();
    for o in objects {
        let (db, table) = match o.split_once('.') {
            Some((d, t)) => (d.to_string(), Some(t.to_string())),
            None => (o.clone(), None),
        };
        let entry = match dbs.iter_mut().find(|(d, _)| *d == db) {
            Some(e) => e,
            None => {
                dbs.push((db, Vec::new()));
                dbs.last_mut().expect("just pushed")
            }
        };
        if let Some(t) = table {
            entry.1.push(t);
        }
    }
    let list: Vec<Value> = dbs
        .into_iter()
        .map(|(d, t)| if t.is_empty() { json!({"Database": d}) } else { json!({"Database": d, "Table": t}) })
        .collect();
    Some(Value::Array(list).to_string())
}

fn print_job(job: &Value) {
    println!(
        "Job:        {}  ({})",
        job["JobId"].as_str().unwrap_or_default(),
        job["JobName"].as_str().unwrap_or_default()
    );
    println!("Status:     {}", status_name(job["Status"].as_i64().unwrap_or_default()));
    println!("Type:       MigrateType {}", job["MigrateOption"]["MigrateType"]);
    println!(
        "Source:     {} {}:{}",
        job["SrcDatabaseType"].as_str().unwrap_or_default(),
        job["SrcInfo"]["Ip"].as_str().unwrap_or_default(),
        job["SrcInfo"]["Port"]
    );
    println!(
        "Dest:       {} {}:{} {}",
        job["DstDatabaseType"].as_str().unwrap_or_default(),
        job["DstInfo"]["Ip"].as_str().unwrap_or_default(),
        job["DstInfo"]["Port"],
        job["DstInfo"]["InstanceId"].as_str().unwrap_or_default()
    );
    println!(
        "Created:    {}   Started: {}   Ended: {}",
        job["CreateTime"].as_str().unwrap_or_default(),
        job["StartTime"].as_str().unwrap_or_default(),
        job["EndTime"].as_str().unwrap_or_default()
    );
    let d = &job["Detail"];
    println!("Progress:   {}% (step {} of {})", d["Progress"].as_str().unwrap_or("0"), d["StepNow"], d["StepAll"]);
    if d["AppliedChanges"].as_u64().unwrap_or(0) > 0 {
        println!(
            "Applied:    {} row changes ({} /s), {} s behind",
            d["AppliedChanges"], d["ApplyRate"], d["SecondsBehindMaster"]
        );
    }
    if let Some(r) = d["RetryState"].as_object() {
        println!(
            "Retrying:   {} since {} ({} attempts): {}",
            r["Step"].as_str().unwrap_or_default(),
            r["Since"].as_str().unwrap_or_default(),
            r["Attempts"],
            r["Error"].as_str().unwrap_or_default()
        );
    }
    for s in d["StepInfo"].as_array().into_iter().flatten() {
        let status = match s["Status"].as_i64().unwrap_or_default() {
            1 => "done",
            2 => "failed",
            3 => "running",
            4 => "not run",
            _ => "-",
        };
        let bar = if s["StepNo"] == d["StepNow"] && status == "running" {
            let pct = d["CurrentStepProgress"].as_str().unwrap_or("0").parse::<usize>().unwrap_or(0).min(100);
            format!(" [{}{}] {pct}%", "#".repeat(pct / 5), ".".repeat(20 - pct / 5))
        } else {
            String::new()
        };
        println!(
            "  {}. {:<24} {:<8} {}{bar}",
            s["StepNo"],
            s["StepName"].as_str().unwrap_or_default(),
            status,
            s["StartTime"].as_str().unwrap_or_default()
        );
    }
    for e in job["ErrorInfo"].as_array().into_iter().flatten() {
        println!("Error:      {}", e["ErrorLog"].as_str().unwrap_or_default());
    }
}

/// Whether a watched job will not move on its own any more.
fn finished(job: &Value) -> bool {
    matches!(job["Status"].as_i64().unwrap_or_default(), 1 | 4 | 5 | 9 | 10 | 13)
}

/// `dts job show --watch` on a terminal: a bar per step and an overall bar with the status and
/// the replication lag, redrawn every second until the job stops moving.
async fn watch_job(client: &Client, job_id: &str) -> anyhow::Result<()> {
    let mut job = describe_one(client, job_id).await?;
    print_job(&job);
    let multi = indicatif::MultiProgress::new();
    let style = |template: &str| indicatif::ProgressStyle::with_template(template).expect("a valid progress template");
    let overall = multi.add(indicatif::ProgressBar::new(100).with_style(style("{bar:40} {pos:>3}% {msg}")));
    let steps: Vec<indicatif::ProgressBar> = job["Detail"]["StepInfo"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|_| multi.add(indicatif::ProgressBar::new(100).with_style(style("  {bar:30} {pos:>3}% {msg}"))))
        .collect();
    loop {
        let d = &job["Detail"];
        let pct = |v: &Value| v.as_str().and_then(|p| p.parse::<u64>().ok()).unwrap_or(0).min(100);
        overall.set_position(pct(&d["Progress"]));
        let retrying = d["RetryState"]["Error"].as_str().map(|e| format!("  retrying: {e}")).unwrap_or_default();
        overall.set_message(format!(
            "{}  behind {} s / {} MB  {} changes/s{retrying}",
            status_name(job["Status"].as_i64().unwrap_or_default()),
            d["SecondsBehindMaster"],
            d["MasterSlaveDistance"],
            d["ApplyRate"]
        ));
        for (bar, step) in steps.iter().zip(d["StepInfo"].as_array().into_iter().flatten()) {
            let (position, state) = match step["Status"].as_i64().unwrap_or_default() {
                1 => (100, "done"),
                2 => (bar.position(), "failed"),
                3 => (pct(&d["CurrentStepProgress"]), "running"),
                _ => (0, "not run"),
            };
            bar.set_position(position);
            bar.set_message(format!("{} ({state})", step["StepName"].as_str().unwrap_or_default()));
        }
        if finished(&job) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        job = describe_one(client, job_id).await?;
    }
    overall.finish();
    steps.iter().for_each(indicatif::ProgressBar::finish);
    for e in job["ErrorInfo"].as_array().into_iter().flatten() {
        println!("Error:      {}", e["ErrorLog"].as_str().unwrap_or_default());
    }
    Ok(())
}

async fn describe_one(client: &Client, job_id: &str) -> anyhow::Result<Value> {
    let r = client.call("DescribeMigrateJobs", &json!({"JobId": job_id})).await?;
    r["JobList"].as_array().and_then(|l| l.first()).cloned().with_context(|| format!("job {job_id} not found"))
}

fn print_check(r: &Value) {
    let flag = match r["CheckFlag"].as_i64() {
        Some(1) => "passed",
        Some(0) => "NOT passed",
        _ => "not checked",
    };
    println!(
        "Check:    {} ({}%) — {flag}",
        r["Status"].as_str().unwrap_or_default(),
        r["Progress"].as_str().unwrap_or("0")
    );
    for item in r["CheckItems"].as_array().into_iter().flatten() {
        let outcome = item["outcome"].as_str().unwrap_or_default();
        let mark = match outcome {
            "passed" => "ok  ",
            "warning" => "warn",
            _ => "FAIL",
        };
        print!(
            "  [{mark}] {:<26} {}",
            item["name"].as_str().unwrap_or_default(),
            item["description"].as_str().unwrap_or_default()
        );
        match outcome {
            "failed" => print!(
                " — expected {}, found {}",
                item["expected"].as_str().unwrap_or_default(),
                item["found"].as_str().unwrap_or_default()
            ),
            "warning" => print!(" — {}", item["detail"].as_str().unwrap_or_default()),
            _ => {}
        }
        println!();
        if let Some(h) = item["hint"].as_str().filter(|_| outcome != "passed") {
            println!("         hint: {h}");
        }
    }
}

pub async fn run(conn: ClientArgs, command: JobCommand) -> anyhow::Result<()> {
    let client = Client::new(conn)?;
    match command {
        JobCommand::List { name, limit, offset, json } => {
            let mut req = json!({"Limit": limit, "Offset": offset});
            if let Some(n) = name {
                req["JobName"] = json!(n);
            }
            let r = client.call("DescribeMigrateJobs", &req).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
                return Ok(());
            }
            println!("{:<14} {:<24} {:<5} {:<18} {:>8}  CREATED", "JOB ID", "NAME", "TYPE", "STATUS", "PROGRESS");
            for j in r["JobList"].as_array().into_iter().flatten() {
                println!(
                    "{:<14} {:<24} {:<5} {:<18} {:>7}%  {}",
                    j["JobId"].as_str().unwrap_or_default(),
                    j["JobName"].as_str().unwrap_or_default(),
                    j["MigrateOption"]["MigrateType"],
                    status_name(j["Status"].as_i64().unwrap_or_default()),
                    j["Detail"]["Progress"].as_str().unwrap_or("0"),
                    j["CreateTime"].as_str().unwrap_or_default()
                );
            }
            println!("{} job(s)", r["TotalCount"]);
        }
        JobCommand::Show { job_id, watch, json } if watch && !json && std::io::stderr().is_terminal() => {
            watch_job(&client, &job_id).await?;
        }
        JobCommand::Show { job_id, watch, json } => loop {
            let job = describe_one(&client, &job_id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&job)?);
            } else {
                print_job(&job);
            }
            if !watch || finished(&job) {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        },
        JobCommand::Create {
            request,
            name,
            source,
            destination,
            objects,
            migrate_type,
            dst_region,
            consistency_type,
            json,
        } => {
            let req = match request {
                Some(path) => read_json(&path)?,
                None => {
                    let (Some(name), Some(src), Some(dst)) = (name, source, destination) else {
                        bail!("give --request FILE, or --name, --source and --destination");
                    };
                    let kind = |u: &str| {
                        if u.starts_with("redis://") || u.starts_with("rediss://") { "redis" } else { "mysql" }
                    };
                    if kind(&src) != kind(&dst) {
                        bail!("--source and --destination must be the same kind of database");
                    }
                    let (db_type, dst_access) =
                        if kind(&src) == "redis" { ("redis", "extranet") } else { ("mysql", "cdb") };
                    let (src_info, mut extern_params) = endpoint_info(&src, "Src")?;
                    let (mut dst_info, dst_tls) = endpoint_info(&dst, "Dst")?;
                    extern_params.extend(dst_tls);
                    dst_info["Region"] = json!(dst_region);
                    let info = database_info(&objects);
                    let mut req = json!({
                        "JobName": name,
                        "MigrateOption": {"RunMode": 1, "MigrateType": migrate_type, "MigrateObject": if info.is_some() { 2 } else { 1 }},
                        "SrcDatabaseType": db_type, "SrcAccessType": "extranet", "SrcInfo": src_info,
                        "DstDatabaseType": db_type, "DstAccessType": dst_access, "DstInfo": dst_info,
                    });
                    if !extern_params.is_empty() {
                        req["MigrateOption"]["ExternParams"] = json!(Value::Object(extern_params).to_string());
                    }
                    if let Some(info) = info {
                        req["DatabaseInfo"] = json!(info);
                    }
                    if let Some(c) = consistency_type {
                        req["MigrateOption"]["ConsistencyType"] = json!(c);
                    }
                    req
                }
            };
            let r = client.call("CreateMigrateJob", &req).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!("{}", r["JobId"].as_str().unwrap_or_default());
            }
        }
        JobCommand::Modify { job_id, request } => {
            let mut req = read_json(&request)?;
            req["JobId"] = json!(job_id);
            client.call("ModifyMigrateJob", &req).await?;
            println!("modified {job_id}");
        }
        JobCommand::Check { job_id, no_wait, json } => {
            client.call("CreateMigrateCheckJob", &json!({"JobId": job_id})).await?;
            // A precheck takes from milliseconds to seconds: poll often at first, then every 0.5 s.
            let mut pause = Duration::from_millis(25);
            loop {
                let r = client.call("DescribeMigrateCheckJob", &json!({"JobId": job_id})).await?;
                let finished = r["Status"] == "finished";
                if no_wait || finished {
                    if json {
                        println!("{}", serde_json::to_string_pretty(&r)?);
                    } else {
                        print_check(&r);
                    }
                    if finished && r["CheckFlag"] != 1 {
                        std::process::exit(1);
                    }
                    break;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
        }
        JobCommand::Start { job_id } => {
            client.call("StartMigrateJob", &json!({"JobId": job_id})).await?;
            println!("started {job_id}");
        }
        JobCommand::Stop { job_id } => {
            client.call("StopMigrateJob", &json!({"JobId": job_id})).await?;
            println!("stopping {job_id}");
        }
        JobCommand::Complete { job_id, mode } => {
            client.call("CompleteMigrateJob", &json!({"JobId": job_id, "CompleteMode": mode})).await?;
            println!("completing {job_id}");
        }
        JobCommand::Delete { job_id } => {
            client.call("DeleteMigrateJob", &json!({"JobId": job_id})).await?;
            println!("deleted {job_id}");
        }
        JobCommand::Diff { job_id, repair_sql, show, json } => {
            let r = diff_pages(&client, &job_id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print_diff(&r, show);
            }
            if let Some(path) = repair_sql {
                let text: String = r["RepairSql"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(|s| format!("{s}\n"))
                    .collect();
                std::fs::write(&path, text)?;
                eprintln!("repair SQL written to {}", path.display());
            }
            if r["Checked"] != true {
                bail!("job {job_id} has no consistency check yet (create it with a ConsistencyType of 2, 3 or 4)");
            }
            if r["Consistent"] != true {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}

/// Every page of `DescribeMigrateJobDiff`, joined into one reply (tables and repair SQL).
async fn diff_pages(client: &Client, job_id: &str) -> anyhow::Result<Value> {
    const TABLES: usize = 100;
    const STATEMENTS: usize = 10_000;
    let mut all = client.call("DescribeMigrateJobDiff", &json!({"JobId": job_id, "Limit": TABLES})).await?;
    let total = all["TotalCount"].as_u64().unwrap_or(0) as usize;
    let mut offset = TABLES;
    while offset < total {
        let r =
            client.call("DescribeMigrateJobDiff", &json!({"JobId": job_id, "Offset": offset, "Limit": TABLES})).await?;
        let more = r["Tables"].as_array().cloned().unwrap_or_default();
        if more.is_empty() {
            break;
        }
        if let Some(tables) = all["Tables"].as_array_mut() {
            tables.extend(more);
        }
        offset += TABLES;
    }
    let statements = all["RepairSqlTotalCount"].as_u64().unwrap_or(0) as usize;
    let mut sql_offset = all["RepairSql"].as_array().map_or(0, Vec::len);
    while sql_offset < statements {
        let r = client
            .call(
                "DescribeMigrateJobDiff",
                &json!({"JobId": job_id, "Limit": 1, "RepairSqlOffset": sql_offset, "RepairSqlLimit": STATEMENTS}),
            )
            .await?;
        let more = r["RepairSql"].as_array().cloned().unwrap_or_default();
        if more.is_empty() {
            break;
        }
        sql_offset += more.len();
        if let Some(sql) = all["RepairSql"].as_array_mut() {
            sql.extend(more);
        }
    }
    Ok(all)
}

fn print_diff(r: &Value, show: usize) {
    if r["Checked"] != true {
        return;
    }
    println!(
        "consistency check ({}) {} .. {}",
        r["Mode"].as_str().unwrap_or("-"),
        r["StartTime"].as_str().unwrap_or(""),
        r["EndTime"].as_str().unwrap_or("")
    );
    for t in r["Tables"].as_array().into_iter().flatten() {
        let name = format!("`{}`.`{}`", t["Database"].as_str().unwrap_or(""), t["Table"].as_str().unwrap_or(""));
        if t["Consistent"] == true {
            println!("{name}: equal ({} rows)", t["SourceRows"]);
            continue;
        }
        println!("{name}: DIFFERENT: source {} rows, destination {} rows", t["SourceRows"], t["DestinationRows"]);
        for (what, count, rows) in [
            ("missing on the destination", "MissingCount", "Missing"),
            ("extra on the destination", "ExtraCount", "Extra"),
            ("different", "DifferentCount", "Different"),
        ] {
            let n = t[count].as_u64().unwrap_or(0);
            if n == 0 {
                continue;
            }
            let shown: Vec<String> = t[rows]
                .as_array()
                .into_iter()
                .flatten()
                .take(show)
                .map(|row| {
                    let key = row["Key"].as_str().unwrap_or("").to_string();
                    let cols: Vec<&str> =
                        row["Columns"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                    if cols.is_empty() { key } else { format!("{key} [{}]", cols.join(", ")) }
                })
                .collect();
            let more = if n as usize > shown.len() {
                format!(" and {} more", n as usize - shown.len())
            } else {
                String::new()
            };
            println!("  {n} {what}: {}{more}", shown.join("; "));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_urls_keep_everything_but_the_password() {
        assert_eq!(masked_url("mysql://u:p@ss@h:1/db"), "mysql://u:***@h:1/db");
        assert_eq!(masked_url("mysql://u@h"), "mysql://u@h");
        assert_eq!(masked_url("mysql://u:secret@[::1"), "mysql://u:***@[::1");
        assert_eq!(masked_url("not a url"), "not a url");
    }

    #[test]
    fn redis_urls_carry_tls_settings_and_rediss_means_verify_full() {
        let (info, tls) = endpoint_info("rediss://:pw@10.0.0.5:6380", "Src").unwrap();
        assert_eq!((info["Ip"].as_str(), info["Port"].as_u64()), (Some("10.0.0.5"), Some(6380)));
        assert_eq!(tls.get("SrcSslMode"), Some(&json!("verify-full")));
        let (_, tls) = endpoint_info("rediss://:pw@h?ssl-mode=required", "Dst").unwrap();
        assert_eq!(tls.get("DstSslMode"), Some(&json!("required")));
        let (info, tls) = endpoint_info("redis://u:pw@h", "Src").unwrap();
        assert_eq!((info["User"].as_str(), info["Port"].as_u64(), tls.len()), (Some("u"), Some(6379), 0));
        assert!(endpoint_info("redis://:pw@h?db=3", "Src").unwrap_err().to_string().contains("unknown"));
    }
}
