//! A throwaway PostgreSQL cluster for the multi-replica tests: Debian's `initdb`/`pg_ctl` on a temp dir and a free
//! port (as the `postgres` user when the tests run as root), or the server `DATABASE_URL` names.

use std::path::PathBuf;
use std::process::{Command, Stdio};

pub struct Cluster {
    /// `None` when the server came from `DATABASE_URL` (it cannot be stopped by the tests).
    local: Option<Local>,
    base_url: String,
}

struct Local {
    _dir: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    port: u16,
    run_as: Option<&'static str>,
}

/// Debian's versioned binaries first, then whatever `PATH` has.
fn binaries() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop().or_else(|| {
        let output = Command::new("sh")
            .args(["-c", "command -v pg_ctl"])
            .output()
            .ok()?;
        let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        let bin = path.parent()?.to_path_buf();
        bin.join("initdb").exists().then_some(bin)
    })
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

impl Local {
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(path);
                command
            }
            None => Command::new(path),
        }
    }

    fn pg_ctl(&self, args: &[&str]) {
        let status = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("pg_ctl runs");
        assert!(status.success(), "pg_ctl {args:?} failed");
    }

    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self._dir.path().display()
        );
        let log = self._dir.path().join("server.log");
        self.pg_ctl(&[
            "-o",
            &options,
            "-l",
            log.to_str().expect("utf-8"),
            "-w",
            "start",
        ]);
    }

    /// The postmaster and its children, for freezing and thawing.
    fn pids(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.data.join("postmaster.pid")).unwrap_or_default();
        let Some(postmaster) = text.lines().next().map(str::to_string) else {
            return Vec::new();
        };
        let children = Command::new("pgrep")
            .args(["-P", &postmaster])
            .output()
            .map(|output| String::from_utf8_lossy(&output.stdout).to_string())
            .unwrap_or_default();
        std::iter::once(postmaster)
            .chain(children.split_whitespace().map(str::to_string))
            .collect()
    }
}

impl Cluster {
    /// A server to test against: the one `DATABASE_URL` names, or a throwaway local cluster.
    pub fn start(test: &str) -> Cluster {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            return Cluster {
                local: None,
                base_url: url.trim_end_matches('/').to_string(),
            };
        }
        Cluster::start_local(test)
    }

    /// A throwaway local cluster the test may stop, freeze and reach through its socket; the test fails when this
    /// machine has no PostgreSQL (`scripts/test` installs Debian's `postgresql`).
    pub fn start_local(test: &str) -> Cluster {
        let bin = binaries().unwrap_or_else(|| {
            panic!(
                "{test}: PostgreSQL is not installed (no initdb/pg_ctl); `scripts/test` (the README's test command) \
                 installs Debian's postgresql"
            )
        });
        let dir = tempfile::tempdir().expect("temp dir");
        let run_as = running_as_root().then_some("postgres");
        if run_as.is_some() {
            // initdb refuses to run as root; the cluster belongs to the postgres user.
            let status = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown the cluster dir to postgres");
        }
        let local = Local {
            data: dir.path().join("data"),
            _dir: dir,
            bin,
            port: crate::harness::free_port(),
            run_as,
        };
        let status = local
            .command("initdb")
            .arg("-D")
            .arg(&local.data)
            .args(["-A", "trust", "-U", "antibody", "--no-sync"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("initdb runs");
        assert!(status.success(), "initdb failed");
        local.start();
        let base_url = format!("postgres://antibody@127.0.0.1:{}", local.port);
        Cluster {
            local: Some(local),
            base_url,
        }
    }

    /// A fresh database of its own, so tests sharing a server never see each other's rows.
    pub async fn database(&self) -> String {
        let name = format!("t{}", uuid::Uuid::new_v4().simple());
        let (client, connection) = tokio_postgres::connect(
            &format!("{}/postgres", self.base_url),
            tokio_postgres::NoTls,
        )
        .await
        .expect("connect to the server");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create a database");
        format!("{}/{name}", self.base_url)
    }

    /// `database` (a URL from `database`) reached through the server's Unix socket instead of TCP, written as a
    /// Cloud SQL connection on Cloud Run is (`host=/cloudsql/…`). Only a cluster from `start_local` has one.
    pub fn socket_url(&self, database: &str) -> String {
        let local = self
            .local
            .as_ref()
            .expect("a socket belongs to a cluster from Cluster::start_local");
        let name = database.rsplit('/').next().unwrap_or(database);
        format!(
            "postgres://antibody@/{name}?host={}&port={}",
            local._dir.path().display(),
            local.port
        )
    }

    /// Stops the server at once, as a crash would.
    pub fn stop(&self) {
        if let Some(local) = &self.local {
            local.pg_ctl(&["-m", "immediate", "-w", "stop"]);
        }
    }

    pub fn restart(&self) {
        if let Some(local) = &self.local {
            local.start();
        }
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) every process of the server: a server that accepts nothing and answers nothing.
    pub fn freeze(&self, frozen: bool) {
        if let Some(local) = &self.local {
            let signal = if frozen { "-STOP" } else { "-CONT" };
            for pid in local.pids() {
                let _ = Command::new("kill")
                    .args([signal, &pid])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(local) = &self.local {
            self.freeze(false);
            let _ = local
                .command("pg_ctl")
                .arg("-D")
                .arg(&local.data)
                .args(["-m", "immediate", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}
