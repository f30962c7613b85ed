//! The resources layer of cbflow: what lives in files beside the data rather than in code, above
//! the pure numeric kernels that take its values as typed parameters.
//!
//! * [`resource_dir`]: the resource directory (`--resources`, else `$CBFLOW_RESOURCES`), the one
//!   place the environment is read.
//! * [`Registry`]: the receptor maps and parcellations the receptor step knows (YAML, embedded
//!   in the binary), with target, tracer, file, citation and licence.
//! * [`regions_from_label_table`], [`aal3_acc_regions`]: atlas label tables and the study's
//!   default regions, as `cbflow_register::Region`s.

mod dir;
mod error;
mod labels;
mod registry;

pub use dir::{RESOURCES_ENV, resource_dir};
pub use error::{Error, Result};
pub use labels::{aal3_acc_regions, region_name, regions_from_label_table};
pub use registry::{
    BUILTIN_REGISTRY, ExcludedEntry, ParcellationEntry, ReceptorEntry, Registry, Role,
};
