//! A private PostgreSQL cluster for tests that need server settings of their own (TLS, a
//! `pg_hba.conf` that refuses plain connections): `initdb` + `pg_ctl` from the system's
//! PostgreSQL on a free port, in a temp directory, stopped and deleted on drop.
//!
//! The same approach as `cargo xtask test`'s throwaway server (`xtask/src/postgres.rs`, which
//! stays free of wx crates to build fast). initdb refuses to run as root, so as root the tools
//! run as the `postgres` user through `runuser` and the directory is handed to that user.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What to put into the cluster before it starts.
#[derive(Debug, Clone, Default)]
pub struct ClusterSetup {
    /// Extra `postgresql.conf` lines (e.g. `ssl = on`).
    pub conf: Vec<String>,
    /// Replaces `pg_hba.conf` when set.
    pub hba: Option<String>,
    /// Files written into the data directory: (name, contents, private). A private file gets
    /// mode 0600 (PostgreSQL refuses a group- or world-readable key).
    pub files: Vec<(String, String, bool)>,
}

/// A running private cluster.
pub struct PrivateCluster {
    dir: tempfile::TempDir,
    pg_ctl: PathBuf,
    as_user: Option<String>,
    port: u16,
    /// The server options of `pg_ctl start` (port, socket directory, settings).
    opts: String,
}

/// Why a cluster could not be started, with what to install or check.
#[derive(Debug, thiserror::Error)]
#[error("cannot start a private PostgreSQL: {0}")]
pub struct ClusterError(String);

fn find_binary(name: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin").join(name))
            .filter(|p| p.is_file())
            .collect();
        candidates.sort();
        candidates.pop() // the newest version
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn run_tool(tool: &Path, args: &[&str], as_user: Option<&str>) -> Result<(), ClusterError> {
    let mut cmd = match as_user {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(tool);
            c
        }
        None => Command::new(tool),
    };
    let out = cmd
        .args(args)
        .output()
        .map_err(|e| ClusterError(format!("run {}: {e}", tool.display())))?;
    if !out.status.success() {
        return Err(ClusterError(format!(
            "{} {} failed: {}{}",
            tool.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

fn chown(user: &str, path: &Path) -> Result<(), ClusterError> {
    let ok = Command::new("chown")
        .args(["-R", user])
        .arg(path)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(ClusterError(format!(
            "cannot hand {} to user {user}",
            path.display()
        )))
    }
}

impl PrivateCluster {
    /// Initialises and starts a cluster listening on 127.0.0.1 (user `postgres`, trust
    /// authentication unless `setup.hba` says otherwise).
    pub fn start(setup: &ClusterSetup) -> Result<PrivateCluster, ClusterError> {
        let missing = |tool: &str| {
            ClusterError(format!(
                "{tool} not found on PATH or under /usr/lib/postgresql/*/bin; install the PostgreSQL server (apt-get install postgresql)"
            ))
        };
        let initdb = find_binary("initdb").ok_or_else(|| missing("initdb"))?;
        let pg_ctl = find_binary("pg_ctl").ok_or_else(|| missing("pg_ctl"))?;
        let as_user = is_root().then(|| "postgres".to_owned());
        let dir = tempfile::Builder::new()
            .prefix("wx-pg-")
            .tempdir()
            .map_err(|e| ClusterError(format!("temp dir: {e}")))?;
        if let Some(user) = &as_user {
            chown(user, dir.path())?;
        }
        let data = dir.path().join("data");
        let d = data
            .to_str()
            .ok_or_else(|| ClusterError("temp path is not UTF-8".into()))?;
        run_tool(
            &initdb,
            &[
                "-D",
                d,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            as_user.as_deref(),
        )?;
        let write = |name: &str, contents: &str| {
            std::fs::write(data.join(name), contents)
                .map_err(|e| ClusterError(format!("write {name}: {e}")))
        };
        for (name, contents, private) in &setup.files {
            write(name, contents)?;
            if *private {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(data.join(name), std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| ClusterError(format!("chmod {name}: {e}")))?;
            }
        }
        if !setup.conf.is_empty() {
            let mut conf = std::fs::read_to_string(data.join("postgresql.conf"))
                .map_err(|e| ClusterError(format!("read postgresql.conf: {e}")))?;
            conf.push('\n');
            conf.push_str(&setup.conf.join("\n"));
            conf.push('\n');
            write("postgresql.conf", &conf)?;
        }
        if let Some(hba) = &setup.hba {
            write("pg_hba.conf", hba)?;
        }
        if let Some(user) = &as_user {
            chown(user, &data)?;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| ClusterError(format!("free port: {e}")))?
            .port();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            dir.path().display()
        );
        let cluster = PrivateCluster {
            dir,
            pg_ctl,
            as_user,
            port,
            opts,
        };
        cluster.start_again()?;
        Ok(cluster)
    }

    /// Starts the server (again, after [`Self::stop`]) on the same port and data directory,
    /// waiting until it accepts connections.
    pub fn start_again(&self) -> Result<(), ClusterError> {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("postgres.log");
        let started = run_tool(
            &self.pg_ctl,
            &[
                "-D",
                data.to_str().unwrap_or(""),
                "-o",
                &self.opts,
                "-l",
                log.to_str().unwrap_or("postgres.log"),
                "-w",
                "start",
            ],
            self.as_user.as_deref(),
        );
        if let Err(e) = started {
            let server_log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(ClusterError(format!("{e}\nserver log:\n{server_log}")));
        }
        Ok(())
    }

    /// Stops the server (`pg_ctl stop -m fast`: open connections are closed, a clean
    /// shutdown), e.g. to test an outage; [`Self::start_again`] brings it back.
    pub fn stop(&self) -> Result<(), ClusterError> {
        let data = self.dir.path().join("data");
        run_tool(
            &self.pg_ctl,
            &[
                "-D",
                data.to_str().unwrap_or(""),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
            self.as_user.as_deref(),
        )
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory of the Unix socket (for admin connections that `pg_hba.conf` lets in
    /// as `local`).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = run_tool(
            &self.pg_ctl,
            &["-D", data.to_str().unwrap_or(""), "-m", "immediate", "stop"],
            self.as_user.as_deref(),
        );
    }
}
