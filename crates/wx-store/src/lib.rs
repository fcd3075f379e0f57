//! wx-store
