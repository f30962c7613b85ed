//! The error type of the register crate.

/// Errors of registration, transforms and ROI extraction. Messages are lower-case and carry the
/// values a user needs to act.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error from the image crate (grids, volumes).
    #[error(transparent)]
    Image(#[from] cbflow_image::Error),
    /// Two arrays or grids that must agree in shape do not.
    #[error("shape mismatch: {what}: expected {expected:?}, got {got:?}")]
    ShapeMismatch {
        /// What was being combined.
        what: String,
        /// The expected shape.
        expected: Vec<usize>,
        /// The shape found.
        got: Vec<usize>,
    },
    /// A mask selects no voxel (or too few to estimate anything).
    #[error("empty mask: {what} selects {n_voxels} voxels, at least {needed} needed")]
    EmptyMask {
        /// Which mask.
        what: String,
        /// Number of voxels selected.
        n_voxels: usize,
        /// Minimum number needed.
        needed: usize,
    },
    /// After initialisation (or at the end) most sampled fixed points fall outside the moving
    /// image: the images do not overlap.
    #[error(
        "no overlap between fixed and moving images at {stage}: only {fraction_inside:.3} of the \
         sampled fixed points map inside the moving image (minimum {minimum:.3})"
    )]
    NoOverlap {
        /// Where it was detected (e.g. `initialisation`, `level 2`).
        stage: String,
        /// Fraction of fixed sample points that map inside the moving image.
        fraction_inside: f64,
        /// The minimum required fraction.
        minimum: f64,
    },
    /// The moving image matches the fixed one better after a left-right mirror than as stored:
    /// a left-right flip in one of the headers (sign of the voxel-to-world determinant).
    #[error(
        "left-right flip suspected: the mirrored moving image matches better (metric {mirrored_metric:.5}) \
         than the moving image as stored (metric {metric:.5}); moving voxel-to-world determinant \
         {moving_determinant:.3}, fixed {fixed_determinant:.3}"
    )]
    LeftRightFlip {
        /// Final metric (cost, lower is better) of the registration as stored.
        metric: f64,
        /// Final metric (cost) of the registration with the moving image mirrored.
        mirrored_metric: f64,
        /// Determinant of the moving image's voxel-to-world matrix.
        moving_determinant: f64,
        /// Determinant of the fixed image's voxel-to-world matrix.
        fixed_determinant: f64,
    },
    /// An estimated or given affine has a non-positive determinant (a reflection or collapse).
    #[error("affine transform is not orientation-preserving: determinant {determinant:.4}")]
    Reflection {
        /// Determinant of the 3×3 linear part.
        determinant: f64,
    },
    /// An ITK transform text could not be parsed.
    #[error("itk transform text, line {line}: {message}")]
    ItkParse {
        /// 1-based line number (0 when the whole text is at fault).
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// A parameter is out of range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: String,
        /// Value given.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The image given as a T1w of a head is not one (constant, noise, another kind of image).
    #[error("not a T1w image of a brain: {reason}")]
    NotABrain {
        /// What was found.
        reason: String,
    },
    /// A computation produced non-finite values (e.g. an image of constant intensity).
    #[error("non-finite value in {what}")]
    NonFinite {
        /// What became non-finite.
        what: String,
    },
}

/// Result alias of the register crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn invalid(name: &str, value: impl std::fmt::Display, reason: &str) -> Error {
    Error::InvalidParameter {
        name: name.into(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// The pyramid of a registration: shrink factors, smoothing σ and iterations, one per level,
/// non-empty and of equal length; factors ≥ 1 and, where `non_increasing`, coarse to fine.
pub(crate) fn check_pyramid(
    shrink_factors: &[usize],
    smoothing_sigmas: &[f64],
    iterations: &[usize],
    non_increasing: bool,
) -> Result<()> {
    let n = shrink_factors.len();
    if n == 0 || smoothing_sigmas.len() != n || iterations.len() != n {
        return Err(invalid(
            "shrink_factors/smoothing_sigmas/iterations",
            format!("{shrink_factors:?}/{smoothing_sigmas:?}/{iterations:?}"),
            "must be non-empty and of equal length",
        ));
    }
    if shrink_factors.contains(&0)
        || (non_increasing && shrink_factors.windows(2).any(|w| w[1] > w[0]))
    {
        return Err(invalid(
            "shrink_factors",
            format!("{shrink_factors:?}"),
            if non_increasing {
                "must be ≥ 1 and non-increasing"
            } else {
                "must be ≥ 1"
            },
        ));
    }
    Ok(())
}

/// The fixed and the moving image of a registration are single 3D volumes.
pub(crate) fn check_3d(fixed: &cbflow_image::Volume, moving: &cbflow_image::Volume) -> Result<()> {
    for (what, v) in [("fixed", fixed), ("moving", moving)] {
        if v.n_volumes() != 1 {
            return Err(invalid(
                what,
                format!("{} volumes", v.n_volumes()),
                "a 3D image is required",
            ));
        }
    }
    Ok(())
}
