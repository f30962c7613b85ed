//! The crate's error type.

/// Errors of the receptor-map numerics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two inputs that must have the same length or shape do not.
    #[error("shape mismatch for {what}: expected {expected}, got {got}")]
    ShapeMismatch {
        /// Which input.
        what: &'static str,
        /// Expected length or shape, as text.
        expected: String,
        /// Actual length or shape, as text.
        got: String,
    },
    /// Too few observations (parcels, voxels, subjects) for the requested computation.
    #[error("too few {what}: need at least {min}, got {got}")]
    TooFew {
        /// What was counted.
        what: &'static str,
        /// Minimum required.
        min: usize,
        /// Number available.
        got: usize,
    },
    /// A value is not finite (NaN or infinite) where finite values are required.
    #[error("non-finite value in {what} at index {index}")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// Flat index of the first offending element.
        index: usize,
    },
    /// A parameter is outside its valid range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// The value given, as text.
        value: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A map has zero variance, so a correlation or z-score is undefined.
    #[error("{what} has zero variance")]
    ZeroVariance {
        /// Which input.
        what: &'static str,
    },
    /// A distance matrix is not a valid (square, symmetric, non-negative) distance matrix.
    #[error("invalid distance matrix: {reason} (at row {row}, column {col})")]
    InvalidDistance {
        /// What is wrong.
        reason: &'static str,
        /// Row of the first offending entry.
        row: usize,
        /// Column of the first offending entry.
        col: usize,
    },
    /// A map could not be resampled onto the template grid (e.g. a singular affine).
    #[error("resampling a map onto the template grid: {0}")]
    Resample(String),
    /// A linear system was singular (collinear predictors).
    #[error("singular design in {what}: predictors are collinear")]
    Singular {
        /// Which computation.
        what: &'static str,
    },
}

impl Error {
    pub(crate) fn resample(e: cbflow_image::Error) -> Self {
        Self::Resample(e.to_string())
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn check_finite(what: &'static str, x: &[f64]) -> Result<()> {
    match x.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(Error::NonFinite { what, index }),
        None => Ok(()),
    }
}

pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected != got {
        return Err(Error::ShapeMismatch {
            what,
            expected: expected.to_string(),
            got: got.to_string(),
        });
    }
    Ok(())
}
