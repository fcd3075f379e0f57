//! `wx-step`: one-shot wx commands (see the `wx_step` library).

fn main() -> std::process::ExitCode {
    wx_step::cli::main()
}
