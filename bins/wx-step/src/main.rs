//! `wx-step`: one-shot wx commands (see the `wx_step` library).

#![deny(unsafe_code)]

/// mimalloc: multi-MB chunk buffers are reused instead of mmapped and faulted in afresh
/// (1.6× the read throughput of glibc malloc's defaults in `cargo xtask bench data`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    wx_cli::allocator::configure();
    wx_step::cli::main()
}
