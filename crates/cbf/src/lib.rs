//! # cbflow-cbf
//!
//! Pure numerics for arterial spin labelling (ASL): volume bookkeeping from
//! `aslcontext.tsv`, M0 calibration and brain masks, the consensus single-delay
//! kinetic models and their forward models, a multi-delay CBF/ATT fit, SCORE outlier
//! rejection, framewise displacement and per-run QC metrics.
//!
//! Arrays in, arrays and typed reports out: no files, no printing. Shapes are
//! `[x, y, z]` for maps and `[x, y, z, n]` for series. CBF is in mL/100 g/min, times
//! in seconds. See `README.md` for every default constant and its source.

pub mod error;
pub mod kinetic;
pub mod m0;
pub mod motion;
pub mod multidelay;
pub mod params;
pub mod qc;
pub mod score;
pub mod series;

pub use error::{CbfError, Result};
pub use kinetic::{
    kinetic_factor, quantify_series, quantify_single, simulate_delta_m, single_delay_scale,
};
pub use m0::{
    BrainMaskReport, M0Input, M0Kind, M0Params, M0Report, MaskRestriction, brain_mask_from_m0,
    calibrate_m0, restrict_mask,
};
pub use motion::{FdSummary, framewise_displacement, summarize_fd};
pub use multidelay::{MultiDelayFit, MultiDelayOptions, average_by_delay, fit_multi_delay};
pub use params::{
    BackgroundSuppression, BolusCutoff, Labeling, LabelingEfficiency, QuantParams, SliceTiming,
};
pub use qc::{QcCounts, QcFlag, QcMetrics, QcParams, QeiComponents, qc_metrics, qei};
pub use score::{ScoreParams, ScoreResult, ScoreSummary, TissueMaps, score};
pub use series::{
    Exclusions, Pair, PairOrder, SeriesLayout, VolumeType, cbf_units_factor, pairwise_delta_m,
    split_series, split_series_excluding,
};
