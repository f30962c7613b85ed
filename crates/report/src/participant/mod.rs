//! The participant report `sub-<label>.html`.
//!
//! Modules: `figures` (the mosaics every section draws), `page` (the page and its QC overview),
//! `anat` (the normalisation section), `run` (one run's section: maps, ASL on the T1w, motion),
//! `timecourse` (the ROI time courses over a session's runs). This file only declares and re-
//! exports.

mod anat;
mod figures;
mod page;
mod run;
mod timecourse;

pub use figures::*;
pub use page::*;
