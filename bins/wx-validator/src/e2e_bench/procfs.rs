//! What the benchmark reads about the daemon's process from `/proc`: its CPU time and its peak
//! resident set.

use anyhow::{Context, Result};
use std::time::Duration;

/// Clock ticks per second of `/proc/PID/stat` (`getconf CLK_TCK`; 100 on every Linux
/// configuration in practice, the fallback).
pub fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

/// User + system CPU time of every thread of a live process so far (fields 14 and 15 of
/// `/proc/PID/stat`).
pub fn cpu_time(pid: u32, ticks_per_second: u64) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    parse_cpu_ticks(&stat)
        .map(|ticks| Duration::from_secs_f64(ticks as f64 / ticks_per_second as f64))
        .with_context(|| format!("no CPU times in /proc/{pid}/stat"))
}

/// utime + stime from the text of `/proc/PID/stat`. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted after its closing parenthesis.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // after the name: state is field 3, utime field 14, stime field 15
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The peak resident set of a live process (`VmHWM` of `/proc/PID/status`), bytes.
pub fn peak_rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .with_context(|| format!("no VmHWM in /proc/{pid}/status"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_after_the_command_name() {
        let stat = "4242 (wx (validator)) S 1 4242 4242 0 -1 4194560 100 0 0 0 731 69 0 0 20 0 9";
        assert_eq!(parse_cpu_ticks(stat), Some(800));
        assert_eq!(parse_cpu_ticks("4242 (x) S 1"), None);
    }

    #[test]
    fn own_process_is_readable() {
        let pid = std::process::id();
        assert!(peak_rss_bytes(pid).unwrap() > 0);
        // burn a little CPU so that the figure is not zero at 100 ticks per second
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        assert!(cpu_time(pid, clock_ticks_per_second()).unwrap() > Duration::ZERO);
    }
}
