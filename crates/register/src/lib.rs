//! cbflow-register
