//! wx-data
