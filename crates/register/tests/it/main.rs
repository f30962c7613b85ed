//! Integration tests of cbflow-register on the shared templates (see /work/shared/data).

mod brain;
mod common;
mod determinism;
mod linear;
mod normalise;
mod realign;
mod roi;
mod syn;
