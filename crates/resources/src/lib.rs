//! The resources layer of cbflow: what lives in files beside the data rather than in code, above
//! the pure numeric kernels that take its values as typed parameters.
//!
//! * [`resource_dir`]: the resource directory (`--resources`, else `$CBFLOW_RESOURCES`, else
//!   the user cache directory when it exists), the one place the environment is read.
//! * [`fetch`]: the manifest of fetchable files (`registry/resources.tsv`) and the fetch that
//!   fills a resource directory from their pinned published homes, SHA-256-checked.
//! * [`Registry`]: the receptor maps and parcellations the receptor step knows (YAML, embedded
//!   in the binary), with target, tracer, file, citation and licence.
//! * [`regions_from_label_table`], [`aal3_acc_regions`]: atlas label tables and the study's
//!   default regions, as `cbflow_register::Region`s.

mod dir;
mod error;
pub mod fetch;
mod labels;
mod registry;

pub use dir::{RESOURCES_ENV, fetch_dir, resource_dir, user_cache_dir};
pub use error::{Error, Result};
pub use labels::{aal3_acc_regions, region_name, regions_from_label_table};
pub use registry::{
    BUILTIN_REGISTRY, ExcludedEntry, ParcellationEntry, ReceptorEntry, Registry, Role,
};
