//! The crate's single error type.

/// Everything that can go wrong in `cbflow-cbf`.
///
/// Variants carry the context a user needs to fix the input: the field, the index,
/// the shape or the offending value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CbfError {
    /// Control and label volumes could not be paired.
    #[error("cannot pair control/label volumes: {reason} (volume index {index})")]
    Unpaired {
        /// Index of the volume (in the full series, dummies included) where pairing failed.
        index: usize,
        /// What went wrong.
        reason: String,
    },
    /// More dummy volumes requested than the series holds.
    #[error("{n_dummy} dummy volumes requested but the series has only {n_volumes}")]
    TooManyDummies {
        /// Requested number of dummy volumes.
        n_dummy: usize,
        /// Number of volumes in the series.
        n_volumes: usize,
    },
    /// Two arrays that must share a shape do not.
    #[error("shape mismatch: {what}: expected {expected:?}, got {got:?}")]
    ShapeMismatch {
        /// What was compared.
        what: String,
        /// Expected shape.
        expected: Vec<usize>,
        /// Shape received.
        got: Vec<usize>,
    },
    /// A length (number of volumes, PLDs, slice times, motion rows) does not match.
    #[error("length mismatch: {what}: expected {expected}, got {got}")]
    LengthMismatch {
        /// What was compared.
        what: String,
        /// Expected length.
        expected: usize,
        /// Length received.
        got: usize,
    },
    /// A scalar parameter is outside its valid domain.
    #[error("invalid parameter {name} = {value}: {expected}")]
    InvalidParameter {
        /// Parameter name (BIDS field where there is one).
        name: String,
        /// Value received.
        value: f64,
        /// What was expected.
        expected: String,
    },
    /// No usable M0: background-suppressed control images cannot calibrate.
    #[error(
        "M0Type is Absent and the run is background suppressed: the mean control image is not an M0 (provide an m0scan or M0Estimate)"
    )]
    BackgroundSuppressedControlAsM0,
    /// Nothing to compute from.
    #[error("no {what} volumes available")]
    NoVolumes {
        /// Which kind of volume was missing.
        what: String,
    },
    /// M0 inside the mask is zero, negative or not finite.
    #[error("M0 is not usable in {count} brain-mask voxels ({kind}); first at voxel {first:?}")]
    InvalidM0 {
        /// Number of offending voxels.
        count: usize,
        /// "zero or negative" / "not finite".
        kind: String,
        /// First offending voxel index.
        first: [usize; 3],
    },
    /// ΔM (or another input series) holds NaN/inf inside the mask.
    #[error("{what} is not finite in {count} brain-mask voxel values; first at voxel {first:?}")]
    NonFinite {
        /// Which input.
        what: String,
        /// Number of offending voxel values.
        count: usize,
        /// First offending voxel index.
        first: [usize; 3],
    },
    /// A mask or tissue class is empty.
    #[error("{what} is empty")]
    EmptyMask {
        /// Which mask.
        what: String,
    },
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, CbfError>;
