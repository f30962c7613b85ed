//! Integration tests of cbflow-receptor: surrogate properties, calibration of the null models,
//! agreement with Hansen et al.'s parcellated receptor values.

mod calibration;
mod common;
mod hansen;
mod nulls;
mod surrogates;
