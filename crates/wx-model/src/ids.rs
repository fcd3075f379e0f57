//! Identifiers: runs, miners, hotkeys.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Primary key of a row in `weather_forecast_runs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub i64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A miner's uid on the subnet, 0..=255.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct MinerUid(u8);

/// The uid under which run-level (coordinator) steps are stored.
///
/// Run-level steps use (step, substep) names that are never used per miner, so a real miner with
/// uid 0 never collides with them.
pub const COORDINATOR_UID: MinerUid = MinerUid(0);

/// The hotkey stored on run-level (coordinator) step rows.
pub const COORDINATOR_HOTKEY: &str = "coordinator";

impl MinerUid {
    /// The largest uid a subnet can hold.
    pub const MAX: u8 = 255;

    /// A uid from its number.
    pub const fn new(uid: u8) -> Self {
        MinerUid(uid)
    }

    /// The uid as stored in the database (`INTEGER`).
    pub const fn as_i32(self) -> i32 {
        self.0 as i32
    }

    /// The uid as a `u8`.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<i64> for MinerUid {
    type Error = InvalidUid;
    fn try_from(v: i64) -> Result<Self, InvalidUid> {
        u8::try_from(v).map(MinerUid).map_err(|_| InvalidUid(v))
    }
}

impl TryFrom<i32> for MinerUid {
    type Error = InvalidUid;
    fn try_from(v: i32) -> Result<Self, InvalidUid> {
        MinerUid::try_from(i64::from(v))
    }
}

impl From<MinerUid> for i64 {
    fn from(u: MinerUid) -> i64 {
        i64::from(u.0)
    }
}

impl fmt::Display for MinerUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A uid outside 0..=255.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("miner uid {0} is outside 0..=255")]
pub struct InvalidUid(pub i64);

/// A miner's hotkey (ss58 address). Public information, not a secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Hotkey(pub String);

impl Hotkey {
    /// The hotkey text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Hotkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_range_is_enforced() {
        assert_eq!(MinerUid::try_from(255i64).unwrap().get(), 255);
        assert_eq!(MinerUid::try_from(0i32).unwrap(), COORDINATOR_UID);
        assert_eq!(MinerUid::try_from(256i64), Err(InvalidUid(256)));
        assert_eq!(MinerUid::try_from(-1i64), Err(InvalidUid(-1)));
        let parsed: Result<MinerUid, _> = serde_json::from_str("300");
        assert!(parsed.is_err());
    }
}
