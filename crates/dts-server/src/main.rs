//! The `dts` binary: `dts serve` runs the API and the job engine; `dts key` manages API keys in
//! the local store; `dts job` is a client of the API that signs its requests like any SDK.

mod client;
mod config;
mod job_command;
mod key_command;
mod serve;
mod subscribe_command;
mod tls;
mod verify_command;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: change tracking spent a third of its CPU in
/// glibc's malloc/free (`bench/tracking.sh` with `PROFILE=1`; BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "dts", version, about = "Self-hosted Data Transmission Service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API and the workers (embedded SQLite metadata store in the data dir).
    Serve(serve::ServeArgs),
    /// Manage API keys (SecretId/SecretKey) in a data dir.
    Key {
        /// Data directory of the server.
        #[arg(long, env = "DTS_DATA_DIR", default_value = "./dts-data", global = true)]
        data_dir: PathBuf,
        #[command(subcommand)]
        command: key_command::KeyCommand,
    },
    /// Compare tables of two servers (outside any job).
    Verify(verify_command::VerifyArgs),
    /// Read change-tracking subscriptions from the change bus.
    Subscribe {
        #[command(subcommand)]
        command: subscribe_command::SubscribeCommand,
    },
    /// Manage migration jobs through the API.
    Job {
        #[command(flatten)]
        conn: client::ClientArgs,
        #[command(subcommand)]
        command: job_command::JobCommand,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(anyhow::Error::from).and_then(
            |runtime| match cli.command {
                Command::Serve(args) => runtime.block_on(serve::run(args)),
                Command::Key { data_dir, command } => key_command::run(&data_dir, command),
                Command::Job { conn, command } => runtime.block_on(job_command::run(conn, command)),
                Command::Subscribe { command } => runtime.block_on(subscribe_command::run(command)),
                Command::Verify(args) => runtime.block_on(verify_command::run(args)),
            },
        );
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
