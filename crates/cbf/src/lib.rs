//! cbflow-cbf
