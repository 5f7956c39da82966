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
    /// A server to test against, or `None` — with a loud message — when this machine has no PostgreSQL.
    pub fn start(test: &str) -> Option<Cluster> {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            return Some(Cluster {
                local: None,
                base_url: url.trim_end_matches('/').to_string(),
            });
        }
        let Some(bin) = binaries() else {
            // Issue 17: a skipped external test passed CI without testing anything.
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: PostgreSQL is required in CI (.ci/run installs Debian's postgresql)"
            );
            eprintln!(
                "\n********************************************************************************\n\
                 SKIPPED {test}: PostgreSQL is not installed (no initdb/pg_ctl) and DATABASE_URL is unset.\n\
                 Install Debian's `postgresql` package (.ci/run does) or point DATABASE_URL at a server.\n\
                 ********************************************************************************\n"
            );
            return None;
        };
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
        Some(Cluster {
            local: Some(local),
            base_url,
        })
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
    /// Cloud SQL connection on Cloud Run is (`host=/cloudsql/…`); `None` for a server given by `DATABASE_URL`.
    pub fn socket_url(&self, database: &str) -> Option<String> {
        let local = self.local.as_ref()?;
        let name = database.rsplit('/').next()?;
        Some(format!(
            "postgres://antibody@/{name}?host={}&port={}",
            local._dir.path().display(),
            local.port
        ))
    }

    /// Whether the tests may stop and freeze this server (not one given by `DATABASE_URL`).
    pub fn is_local(&self) -> bool {
        self.local.is_some()
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
