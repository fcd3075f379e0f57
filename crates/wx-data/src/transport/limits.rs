//! Size and throughput limits for miner-controlled objects.

use std::time::Duration;

/// One mebibyte.
pub const MIB: u64 = 1024 * 1024;

/// How many bytes a store may make us download.
///
/// * metadata (`.zmetadata`, `.zarray`, `.zattrs`, `.zgroup`, `zarr.json`) and the manifest:
///   at most [`SizeLimits::metadata_max_bytes`];
/// * a chunk: at most its declared shape × dtype size × [`SizeLimits::compressed_chunk_factor`]
///   \+ [`SizeLimits::compressed_chunk_slack_bytes`] (see [`SizeLimits::chunk_limit`]); a chunk
///   of an array whose metadata has not been seen: [`SizeLimits::default_object_max_bytes`];
/// * everything fetched through one store handle: [`SizeLimits::store_budget_bytes`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SizeLimits {
    /// Largest metadata document or manifest, in bytes (1 MiB).
    pub metadata_max_bytes: u64,
    /// Largest object whose expected size is unknown (64 MiB: a 0.25° 13-level f32 chunk is
    /// 53.9 MB).
    pub default_object_max_bytes: u64,
    /// Compressed chunks may exceed the raw size by this factor (incompressible data plus codec
    /// framing).
    pub compressed_chunk_factor: f64,
    /// And by this many bytes (codec headers, shard indexes).
    pub compressed_chunk_slack_bytes: u64,
    /// Total bytes per store handle (24 GiB: two full 0.25° 40-step stores).
    pub store_budget_bytes: u64,
}

impl Default for SizeLimits {
    fn default() -> Self {
        SizeLimits {
            metadata_max_bytes: MIB,
            default_object_max_bytes: 64 * MIB,
            compressed_chunk_factor: 1.1,
            compressed_chunk_slack_bytes: 64 * 1024,
            store_budget_bytes: 24 * 1024 * MIB,
        }
    }
}

impl SizeLimits {
    /// The largest acceptable stored (compressed) size of a chunk of `elements` values of
    /// `item_size` bytes; saturates instead of overflowing.
    pub fn chunk_limit(&self, elements: u64, item_size: u64) -> u64 {
        let raw = elements.saturating_mul(item_size);
        let scaled = (raw as f64 * self.compressed_chunk_factor.max(1.0)).ceil();
        let scaled = if scaled >= u64::MAX as f64 {
            u64::MAX
        } else {
            scaled as u64
        };
        scaled.saturating_add(self.compressed_chunk_slack_bytes)
    }
}

/// The minimum-throughput rule of a miner read (docs/data.md §1.3): a body that arrives slower
/// than [`ThroughputRule::min_bytes_per_second`] over a whole [`ThroughputRule::window`] is
/// aborted as "too slow" (the miner's failure). The first [`ThroughputRule::grace`] after the
/// headers is not measured (connection warm-up, TCP slow start), and a body that ends within
/// one window is never judged: only a read still running after `grace + window` can fail.
///
/// Windows are consecutive (not sliding): the bytes received in `[grace + k·window,
/// grace + (k+1)·window)` are compared with `min_bytes_per_second × window` when the window
/// closes, even if nothing arrived during it (a stalled body is caught at the window's end, not
/// only at the read timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThroughputRule {
    /// Slowest acceptable rate, bytes per second (0: no rule).
    pub min_bytes_per_second: u64,
    /// Length of one measuring window.
    pub window: Duration,
    /// Time after the headers during which nothing is measured.
    pub grace: Duration,
}

impl Default for ThroughputRule {
    /// 256 KiB/s over 10 s windows after a 10 s grace (see docs/data.md §1.3 for the sizing).
    fn default() -> Self {
        ThroughputRule {
            min_bytes_per_second: 256 * 1024,
            window: Duration::from_secs(10),
            grace: Duration::from_secs(10),
        }
    }
}

impl ThroughputRule {
    /// No minimum (trusted sources, or a configuration that turns it off).
    pub const OFF: ThroughputRule = ThroughputRule {
        min_bytes_per_second: 0,
        window: Duration::from_secs(10),
        grace: Duration::from_secs(10),
    };

    /// Whether the rule judges anything.
    pub fn is_active(&self) -> bool {
        self.min_bytes_per_second > 0 && !self.window.is_zero()
    }

    /// The fewest bytes a whole window must bring.
    pub fn window_minimum(&self) -> u64 {
        let bytes = self.min_bytes_per_second as f64 * self.window.as_secs_f64();
        bytes.ceil() as u64
    }
}

/// Whether `key` names a Zarr metadata document (v2 or v3) by its last path component.
pub fn is_metadata_key(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    matches!(
        name,
        ".zmetadata" | ".zarray" | ".zattrs" | ".zgroup" | "zarr.json"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_limit_scales_and_saturates() {
        let limits = SizeLimits::default();
        // one 0.25° 13-level float32 chunk
        let raw = 13 * 720 * 1440 * 4;
        let limit = limits.chunk_limit(13 * 720 * 1440, 4);
        assert!(limit > raw && limit < raw * 12 / 10);
        assert_eq!(limits.chunk_limit(u64::MAX, 8), u64::MAX);
    }

    #[test]
    fn throughput_window_minimum() {
        let rule = ThroughputRule {
            min_bytes_per_second: 1000,
            window: Duration::from_millis(2500),
            grace: Duration::ZERO,
        };
        assert_eq!(rule.window_minimum(), 2500);
        assert!(rule.is_active());
        assert!(!ThroughputRule::OFF.is_active());
    }

    #[test]
    fn metadata_keys() {
        assert!(is_metadata_key(".zmetadata"));
        assert!(is_metadata_key("2t/.zarray"));
        assert!(is_metadata_key("a/b/zarr.json"));
        assert!(!is_metadata_key("2t/0.0.0"));
        assert!(!is_metadata_key("manifest.json"));
    }
}
