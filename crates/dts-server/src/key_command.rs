//! `dts key create|list|delete`: API keys in the local store (works while the server runs).

use std::path::Path;

use anyhow::bail;
use clap::Subcommand;
use dts_store::Store;

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create a SecretId/SecretKey pair; the secret is shown only now.
    Create {
        /// The account the key belongs to (jobs are visible to keys of the same account).
        #[arg(long, default_value = "default")]
        account: String,
        #[arg(long)]
        json: bool,
    },
    /// List keys (without secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete a key.
    Delete { secret_id: String },
}

pub fn run(data_dir: &Path, command: KeyCommand) -> anyhow::Result<()> {
    let store = Store::open(data_dir)?;
    match command {
        KeyCommand::Create { account, json } => {
            let key = store.create_key(&account)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"SecretId": key.secret_id, "SecretKey": key.secret_key, "Account": key.account_id})
                );
            } else {
                println!("Account:   {}\nSecretId:  {}\nSecretKey: {}", key.account_id, key.secret_id, key.secret_key);
                println!("Keep the SecretKey now: it is not shown again.");
            }
        }
        KeyCommand::List { json } => {
            let keys = store.list_keys()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else {
                println!("{:<40} {:<16} CREATED", "SECRET ID", "ACCOUNT");
                for k in keys {
                    println!("{:<40} {:<16} {}", k.secret_id, k.account_id, k.created_at);
                }
            }
        }
        KeyCommand::Delete { secret_id } => {
            if !store.delete_key(&secret_id)? {
                bail!("no key {secret_id}");
            }
            println!("deleted {secret_id}");
        }
    }
    Ok(())
}
