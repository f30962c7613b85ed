//! BIDS input and output for cbflow: a layout index of a BIDS dataset (entities, suffixes,
//! extensions, sidecar metadata by the inheritance principle), typed ASL metadata checked by
//! the BIDS rules for arterial spin labelling, `aslcontext.tsv`, the `participants.tsv`,
//! `sessions.tsv` and `phenotype/*.tsv` tables, derivative file naming, and a derivatives
//! writer whose every write is atomic.
//!
//! The input dataset is only ever read. Rules follow the BIDS specification (version 1.10,
//! "Arterial Spin Labeling perfusion data", "Entities", "The Inheritance Principle",
//! "BIDS Derivatives").
//!
//! ```no_run
//! use cbflow_bids::{Layout, Query};
//! let layout = Layout::index(std::path::Path::new("/data/study"))?;
//! for run in layout.asl_runs()? {
//!     println!("{} {:?}", run.asl.rel_path.display(), run.metadata.m0_type);
//! }
//! let t1w = layout.query(&Query::new().sub("01").suffix("T1w").nifti());
//! # let _ = t1w;
//! # Ok::<(), cbflow_bids::Error>(())
//! ```

mod asl;
mod derivatives;
mod entities;
mod error;
mod issue;
mod layout;
mod table;
mod validate;

pub use asl::{
    AslContext, AslMetadata, AslRun, AslType, M0Type, TIME_RULES, VolumeType, time_problem,
};
pub use derivatives::{
    BIDS_VERSION, DerivativeName, DerivativesWriter, GeneratedBy, SourceDataset, atomic_write,
    check_output_dir,
};
pub use entities::{
    ENTITY_ORDER, Entities, normalize_participant_label, parse_filename, validate_label,
};
pub use error::{Error, Result};
pub use issue::{Issue, Severity, ValidationReport};
pub use layout::{BidsFile, Layout, Query, read_json_object};
pub use table::Table;
pub use validate::validate;
