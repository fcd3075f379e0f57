//! Build information for the `wx_build_info` metric: the git commit, when the source is a git
//! checkout and `git` is installed (`WX_BUILD_GIT_COMMIT`), and the compiler's version
//! (`WX_BUILD_RUSTC`).
//!
//! Two `git`/`rustc` calls, written out rather than taken from vergen: vergen pulls in
//! derive_builder and changes the `time` crate's features, which rebuilds reqwest, object_store
//! and zarrs, for two strings.

use std::path::PathBuf;
use std::process::Command;

/// Runs a command and returns its trimmed standard output when it succeeds.
fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    if let Some(version) = output(&rustc, &["--version"]) {
        // "rustc 1.91.0 (f8297e351 2025-10-28)" → "1.91.0"
        let semver = version.split_whitespace().nth(1).unwrap_or(&version);
        println!("cargo:rustc-env=WX_BUILD_RUSTC={semver}");
    }
    if let Some(commit) = output("git", &["rev-parse", "--short=12", "HEAD"]) {
        println!("cargo:rustc-env=WX_BUILD_GIT_COMMIT={commit}");
        // rebuild when HEAD moves: HEAD itself (a branch switch) and the branch's ref (a commit)
        let path = |args: &[&str]| output("git", args).map(PathBuf::from);
        if let Some(head) = path(&["rev-parse", "--path-format=absolute", "--git-path", "HEAD"]) {
            println!("cargo:rerun-if-changed={}", head.display());
        }
        if let Some(branch) = output("git", &["symbolic-ref", "-q", "HEAD"])
            && let Some(reference) =
                path(&["rev-parse", "--path-format=absolute", "--git-path", &branch])
        {
            println!("cargo:rerun-if-changed={}", reference.display());
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
