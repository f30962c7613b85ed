//! cbflow-stats
