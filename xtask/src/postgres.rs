//! A PostgreSQL server for tests and benchmarks: `DATABASE_URL` when set, otherwise a private
//! throwaway cluster started with the system's `initdb`/`pg_ctl` in a temp dir on a free port.

use anyhow::{Context, Result, bail};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A server to run against; a private cluster is stopped and deleted on drop.
pub struct Postgres {
    /// An admin URL (a role that may create databases).
    pub url: String,
    private: Option<PrivateCluster>,
}

struct PrivateCluster {
    pg_ctl: PathBuf,
    dir: PathBuf,
    as_user: Option<String>,
}

impl Postgres {
    /// `DATABASE_URL` if set, else a private cluster.
    pub fn provide() -> Result<Postgres> {
        if let Some(url) = std::env::var("DATABASE_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
        {
            eprintln!("xtask: using PostgreSQL from DATABASE_URL");
            return Ok(Postgres { url, private: None });
        }
        start_private().context(
            "no DATABASE_URL and no private PostgreSQL could be started. Either set \
             DATABASE_URL=postgres://USER@HOST:PORT/postgres (a role that may CREATE DATABASE), or \
             install the PostgreSQL server binaries (initdb, pg_ctl; e.g. `apt-get install postgresql`)",
        )
    }
}

fn find_binary(name: &str) -> Option<PathBuf> {
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.is_file())
        .collect();
    candidates.sort();
    candidates.pop() // the newest version
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool, as `postgres` via runuser when we are root (initdb refuses root).
fn run_tool(tool: &Path, args: &[&str], as_user: Option<&str>) -> Result<()> {
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
        .with_context(|| format!("run {}", tool.display()))?;
    if !out.status.success() {
        bail!(
            "{} {} failed: {}{}",
            tool.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn start_private() -> Result<Postgres> {
    let initdb = find_binary("initdb")
        .context("initdb not found on PATH or under /usr/lib/postgresql/*/bin")?;
    let pg_ctl = find_binary("pg_ctl")
        .context("pg_ctl not found on PATH or under /usr/lib/postgresql/*/bin")?;
    let as_user = is_root().then(|| "postgres".to_owned());
    let dir = std::env::temp_dir().join(format!("wx-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    if let Some(user) = &as_user {
        let ok = Command::new("chown")
            .arg(user)
            .arg(&dir)
            .status()?
            .success();
        if !ok {
            bail!(
                "cannot hand {} to user {user} (initdb refuses to run as root)",
                dir.display()
            );
        }
    }
    let data = dir.join("data");
    let port = free_port()?;
    let d = data.to_str().context("temp path is not UTF-8")?;
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
    let opts = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
         -c full_page_writes=off -c max_connections=300",
        dir.display()
    );
    let log = dir.join("postgres.log");
    run_tool(
        &pg_ctl,
        &[
            "-D",
            d,
            "-o",
            &opts,
            "-l",
            log.to_str().unwrap_or("postgres.log"),
            "-w",
            "start",
        ],
        as_user.as_deref(),
    )?;
    eprintln!(
        "xtask: started a private PostgreSQL on 127.0.0.1:{port} in {}",
        dir.display()
    );
    Ok(Postgres {
        url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        private: Some(PrivateCluster {
            pg_ctl,
            dir,
            as_user,
        }),
    })
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(p) = &self.private {
            let data = p.dir.join("data");
            let _ = run_tool(
                &p.pg_ctl,
                &["-D", data.to_str().unwrap_or(""), "-m", "immediate", "stop"],
                p.as_user.as_deref(),
            );
            let _ = std::fs::remove_dir_all(&p.dir);
            eprintln!("xtask: stopped the private PostgreSQL");
        }
    }
}
