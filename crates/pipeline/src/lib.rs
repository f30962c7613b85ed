//! cbflow-pipeline
