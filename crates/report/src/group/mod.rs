//! The group report `group.html`: `data` (what it reads of the group outputs), one module per
//! section (`contrast`, `roi`, `behaviour`, `receptor`), and `page`, which puts them
//! in order; `paired`, the report of the one-session before/during design, reuses `contrast`.
//! This file only declares and re-exports.

mod behaviour;
mod contrast;
mod data;
mod page;
mod paired;
mod receptor;
mod roi;

pub use data::*;
pub use page::*;
pub use paired::paired_report;
