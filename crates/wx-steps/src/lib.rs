//! wx-steps
