//! Integration tests of cbflow-cbf: recovery of known truth from data simulated with
//! the forward models, BIDS-example metadata patterns, SCORE, bad input, QC.

mod bad_input;
mod bids_examples;
mod common;
mod qc;
mod recovery;
mod score;
