//! wx-model
