//! Throwaway MariaDB servers (`mariadb-install-db` + `mariadbd`) on a free loopback port, with
//! their own data directory, binlog in ROW format by default, killed and removed on drop.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::port::free_port;
use crate::process::{ServerProcess, Starting, find_binary};

/// Where a MySQL-family server listens, and as whom to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddr {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    /// Connect with TLS (the server's certificate is not checked): for servers started with
    /// [`MariaDbOptions::require_tls`].
    pub tls: bool,
}

impl ServerAddr {
    /// The machine's own MariaDB (127.0.0.1:3306, root, no password), if it answers.
    pub async fn machine_mariadb() -> Option<ServerAddr> {
        let addr = ServerAddr {
            host: "127.0.0.1".into(),
            port: 3306,
            user: "root".into(),
            password: String::new(),
            tls: false,
        };
        match tokio::time::timeout(Duration::from_secs(3), mysql_async::Conn::new(addr.opts())).await {
            Ok(Ok(conn)) => {
                let _ = conn.disconnect().await;
                Some(addr)
            }
            _ => None,
        }
    }

    pub fn opts(&self) -> mysql_async::Opts {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(Some(self.user.clone()))
            .pass(Some(self.password.clone()))
            .prefer_socket(false)
            .ssl_opts(self.tls.then(|| mysql_async::SslOpts::default().with_danger_accept_invalid_certs(true)))
            .into()
    }

    pub async fn conn(&self) -> mysql_async::Conn {
        mysql_async::Conn::new(self.opts())
            .await
            .unwrap_or_else(|e| panic!("connect to {}:{}: {e}", self.host, self.port))
    }

    /// Runs one or more `;`-separated statements.
    pub async fn exec(&self, sql: &str) {
        let mut c = self.conn().await;
        c.query_drop(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = c.disconnect().await;
    }
}

/// How to start a throwaway server.
#[derive(Debug, Clone)]
pub struct MariaDbOptions {
    /// Binlog on, ROW format, FULL row image (a replication source).
    pub log_bin: bool,
    /// Extra `mariadbd` arguments.
    pub extra_args: Vec<String>,
    /// TLS with a throwaway CA and a server certificate for 127.0.0.1 (see [`MariaDb::tls`]),
    /// and `require_secure_transport=ON`: plain connections are refused.
    pub require_tls: bool,
}

impl Default for MariaDbOptions {
    fn default() -> Self {
        Self { log_bin: true, extra_args: Vec::new(), require_tls: false }
    }
}

/// A running throwaway MariaDB.
pub struct MariaDb {
    /// First: killed before its directory goes.
    process: ServerProcess,
    dir: tempfile::TempDir,
    addr: ServerAddr,
    server_id: u32,
    options: MariaDbOptions,
    tls: Option<crate::tls::TlsFiles>,
}

static NEXT_SERVER_ID: AtomicU32 = AtomicU32::new(100);

impl MariaDb {
    /// Starts a server with the binlog on (ROW, FULL).
    pub async fn start() -> MariaDb {
        Self::start_with(MariaDbOptions::default()).await
    }

    pub async fn start_with(options: MariaDbOptions) -> MariaDb {
        let dir = tempfile::Builder::new().prefix("dts-mariadb-").tempdir().expect("tempdir");
        let data = dir.path().join("data");
        // A private tmpdir: a starting server removes `#sql*` temporary files it finds in its
        // tmpdir, which breaks concurrent bootstraps sharing /tmp ("Unknown table 'mysql.tmp_user_sys'").
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).expect("create tmpdir");
        let out = Command::new(find_binary("mariadb-install-db"))
            .args(["--no-defaults", "--user=root", "--auth-root-authentication-method=normal", "--skip-test-db"])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("run mariadb-install-db (apt-get install mariadb-server)");
        assert!(out.status.success(), "mariadb-install-db failed: {}", String::from_utf8_lossy(&out.stderr));
        std::fs::write(
            dir.path().join("init.sql"),
            "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';\n\
             GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\n",
        )
        .expect("write init.sql");
        let tls = options.require_tls.then(|| crate::tls::TlsFiles::generate(&dir.path().join("tls")));
        let server_id = NEXT_SERVER_ID.fetch_add(1, Ordering::SeqCst) + std::process::id() % 1000 * 100;
        let mut db = MariaDb {
            process: ServerProcess::default(),
            dir,
            addr: ServerAddr {
                host: "127.0.0.1".into(),
                port: free_port(),
                user: "root".into(),
                password: String::new(),
                tls: options.require_tls,
            },
            server_id,
            options,
            tls,
        };
        db.spawn().await;
        db
    }

    async fn spawn(&mut self) {
        let d = self.dir.path();
        let mut cmd = Command::new(find_binary("mariadbd"));
        cmd.args(["--no-defaults", "--user=root", "--bind-address=127.0.0.1", "--skip-name-resolve"])
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--tmpdir={}", d.join("tmp").display()))
            .arg(format!("--socket={}", d.join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", d.join("mysqld.pid").display()))
            .arg(format!("--log-error={}", d.join("error.log").display()))
            .arg(format!("--init-file={}", d.join("init.sql").display()))
            .arg(format!("--port={}", self.addr.port))
            .arg(format!("--server-id={}", self.server_id))
            .args(["--innodb-buffer-pool-size=128M", "--innodb-log-file-size=64M", "--max-connections=500"])
            .args(["--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci"]);
        if self.options.log_bin {
            cmd.arg(format!("--log-bin={}", d.join("data").join("binlog").display()))
                .args(["--binlog-format=ROW", "--binlog-row-image=FULL"]);
        }
        if let Some(tls) = &self.tls {
            cmd.arg(format!("--ssl-ca={}", tls.ca.display()))
                .arg(format!("--ssl-cert={}", tls.cert.display()))
                .arg(format!("--ssl-key={}", tls.key.display()))
                .arg("--require-secure-transport=ON");
        }
        cmd.args(&self.options.extra_args).stdout(Stdio::null()).stderr(Stdio::null());
        let child = cmd.spawn().expect("start mariadbd");
        self.process.started(child);
        let start = Starting::new("mariadbd", self.addr.port, &d.join("error.log"), Duration::from_secs(60));
        loop {
            if let Ok(c) = mysql_async::Conn::new(self.addr.opts()).await {
                let _ = c.disconnect().await;
                return;
            }
            self.process.check(&start);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The certificate files of a server started with [`MariaDbOptions::require_tls`].
    pub fn tls(&self) -> Option<&crate::tls::TlsFiles> {
        self.tls.as_ref()
    }

    pub fn addr(&self) -> &ServerAddr {
        &self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port
    }

    pub fn server_id(&self) -> u32 {
        self.server_id
    }

    pub async fn conn(&self) -> mysql_async::Conn {
        self.addr.conn().await
    }

    pub async fn exec(&self, sql: &str) {
        self.addr.exec(sql).await
    }

    /// Kills the server (like a crash) and starts it again on the same port and data.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// Kills the server; it stays down until [`MariaDb::restart`].
    pub fn kill(&mut self) {
        self.process.kill();
    }
}
