//! wx-scoring
