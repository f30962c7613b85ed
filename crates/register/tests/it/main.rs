//! Integration tests of cbflow-register on the shared templates (see /work/shared/data).

mod brain;
mod common;
mod determinism;
mod linear;
mod realign;
mod roi;
mod syn;
