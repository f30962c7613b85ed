//! cbflow-receptor
