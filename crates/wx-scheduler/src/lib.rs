//! wx-scheduler
