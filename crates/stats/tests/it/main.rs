//! Integration tests of cbflow-stats.

mod common;
mod exact;
mod fwe;
mod lmm;
mod roi;
