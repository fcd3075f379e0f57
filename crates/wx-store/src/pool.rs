//! The connection pool's state, for metrics.

use crate::Db;
use crate::backend::Pools;

/// The pool's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolState {
    /// Open connections.
    pub connections: u32,
    /// Idle connections.
    pub idle: u32,
}

impl Db {
    /// Connection pool state.
    pub fn pool_state(&self) -> PoolState {
        let s = match &self.pools {
            Pools::Pg(p) => p.state(),
            Pools::Sqlite(p) => p.state(),
        };
        PoolState {
            connections: s.connections,
            idle: s.idle_connections,
        }
    }
}
