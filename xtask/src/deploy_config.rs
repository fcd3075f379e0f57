//! `cargo xtask deploy-config`: regenerates `deploy/wx.example.toml` from
//! `wx-validator config show --defaults` (a test fails while the file is stale).

use anyhow::{Context, Result, bail};

/// The generated file, relative to the workspace root.
pub const EXAMPLE: &str = "deploy/wx.example.toml";

/// Builds wx-validator, prints its defaults and writes them to [`EXAMPLE`].
pub fn run() -> Result<()> {
    let mut cmd = crate::cargo();
    cmd.args([
        "run",
        "--quiet",
        "-p",
        "wx-validator",
        "--",
        "config",
        "show",
        "--defaults",
    ]);
    // the defaults only: nothing of this shell's configuration may leak into the example
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("WX_")) {
        cmd.env_remove(key);
    }
    let out = cmd.output().context("running wx-validator config show")?;
    if !out.status.success() {
        bail!(
            "wx-validator config show --defaults failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let path = crate::workspace_root().join(EXAMPLE);
    std::fs::write(&path, &out.stdout).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("xtask: wrote {}", path.display());
    Ok(())
}
