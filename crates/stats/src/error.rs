//! The crate's error type.

/// Errors returned by `cbflow-stats`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatsError {
    /// Two inputs that must agree in shape do not.
    #[error("shape mismatch for {what}: expected {expected}, got {got}")]
    ShapeMismatch {
        /// Which input.
        what: &'static str,
        /// The expected shape or length.
        expected: String,
        /// The shape or length received.
        got: String,
    },
    /// Too few observations for the requested statistic.
    #[error("too few observations for {what}: need at least {needed}, got {got}")]
    TooFewObservations {
        /// Which statistic.
        what: &'static str,
        /// Minimum count.
        needed: usize,
        /// Count received.
        got: usize,
    },
    /// A parameter is out of its valid range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// Its value, formatted.
        value: String,
        /// What was expected.
        reason: &'static str,
    },
    /// An input contains NaN or infinite values.
    #[error("non-finite value in {what} at index {index}")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// Flat index of the first offending value.
        index: usize,
    },
    /// A voxel coordinate or linear index lies outside the image grid.
    #[error("voxel {index} of the mask lies outside the grid {dims:?}")]
    OutOfGrid {
        /// Position in the mask list.
        index: usize,
        /// Grid dimensions.
        dims: [usize; 3],
    },
    /// A mask lists the same voxel twice.
    #[error("voxel {index} of the mask duplicates an earlier voxel")]
    DuplicateVoxel {
        /// Position in the mask list.
        index: usize,
    },
    /// The design matrix cannot support the contrast or model.
    #[error("design problem: {reason}")]
    Design {
        /// What is wrong.
        reason: String,
    },
    /// An iterative fit did not converge.
    #[error("{what} did not converge after {iterations} iterations")]
    NoConvergence {
        /// Which fit.
        what: &'static str,
        /// Iterations run.
        iterations: usize,
    },
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, StatsError>;

pub(crate) fn check_finite(
    what: &'static str,
    values: impl IntoIterator<Item = f64>,
) -> Result<()> {
    for (index, v) in values.into_iter().enumerate() {
        if !v.is_finite() {
            return Err(StatsError::NonFinite { what, index });
        }
    }
    Ok(())
}

pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected != got {
        return Err(StatsError::ShapeMismatch {
            what,
            expected: expected.to_string(),
            got: got.to_string(),
        });
    }
    Ok(())
}
