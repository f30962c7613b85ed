//! Synthetic BIDS ASL crossover studies with known ground truth.
//!
//! [`generate`] writes a BIDS dataset that looks like the ketamine + naltrexone study of
//! `DESIGN.md`: N subjects, two sessions each (pre-treatment placebo or naltrexone,
//! counterbalanced, order in `sessions.tsv`), per session a T1w and two 3D pCASL runs
//! (`run-1` before ketamine, `run-2` during), each with a separate M0 scan; phenotype tables; and
//! the ground truth under `derivatives/truth/`.
//!
//! The brain is either a phantom built in code ([`Space::phantom`], no files needed) or the MNI
//! tissue priors and AAL3 atlas read from a resource directory ([`Space::from_resources`]).
//! Each subject is placed and shaped differently from the template (an affine plus a smooth
//! nonlinear warp), each session repositions the head, and each ASL volume moves a little.
//!
//! The ASL forward model is the consensus single-compartment pCASL model (Alsop et al. 2015,
//! MRM 73:102) written here independently of `cbflow-cbf`, so that quantification is tested
//! against a second implementation rather than against itself.

mod deform;
mod error;
mod io;
mod pheno;
mod sample;
mod simulate;
mod space;

pub use deform::SubjectTransform;
pub use error::{Error, Result};
pub use simulate::{AslProtocol, KETAMINE_RISE, NoiseModel, generate};
pub use space::{ACC_LABELS, Space, T1wContrast};

use std::path::PathBuf;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthSpec {
    /// Number of subjects (the study had 26).
    pub subjects: usize,
    /// Seed of every random draw: the same seed gives the same bytes.
    pub seed: u64,
    /// No ketamine effect anywhere and no brain–behaviour links (for false-positive checks).
    pub null: bool,
    /// Resource directory laid out like `shared/data` (templates/, atlases/): use the MNI tissue
    /// priors and AAL3 instead of the built-in phantom.
    pub templates: Option<PathBuf>,
    /// Acquisition protocol of the ASL runs.
    pub protocol: AslProtocol,
    /// Noise model.
    pub noise: NoiseModel,
    /// Spatial pattern of the ketamine CBF rise (default: the ACC labels).
    pub effect: EffectPattern,
}

/// Where ketamine raises CBF, as a fractional change of baseline CBF per template voxel (the
/// per-session effect scale and the ramp over the run multiply it).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum EffectPattern {
    /// +18 % ([`KETAMINE_RISE`]) in the AAL3 ACC labels 151–156, 0 elsewhere (the default).
    #[default]
    AccRois,
    /// A given map on the grid of the study's space (`Space::phantom()` or
    /// `Space::from_resources`): fractional CBF change per voxel, finite and > −1 (e.g. 0.1 =
    /// +10 %). Build it with [`EffectPattern::from_z_map`] to follow a receptor map.
    Map {
        /// Name written into the truth (e.g. `MOR`).
        name: String,
        /// Fractional change, shape = the space's grid dimensions.
        rise: ndarray::Array3<f32>,
    },
}

impl EffectPattern {
    /// +18 % ([`KETAMINE_RISE`]) within `radius_mm` of `centre_mm` (world mm of `space`), 0
    /// elsewhere: an effect away from the ACC, e.g. to check that reports and tables follow
    /// the result rather than the study's hypothesis. Errors when the sphere holds no voxel of
    /// the grid or the numbers are not finite and positive.
    pub fn sphere(space: &Space, centre_mm: [f64; 3], radius_mm: f64) -> Result<Self> {
        if !(radius_mm.is_finite() && radius_mm > 0.0) || centre_mm.iter().any(|c| !c.is_finite()) {
            return Err(Error::Invalid(format!(
                "effect sphere {centre_mm:?}, radius {radius_mm} mm: expected finite coordinates and a radius above 0"
            )));
        }
        let g = &space.grid;
        let rise = ndarray::Array3::from_shape_fn(space.gm.raw_dim(), |(i, j, k)| {
            let w = g.voxel_to_world([i as f64, j as f64, k as f64]);
            let d2: f64 = (0..3).map(|a| (w[a] - centre_mm[a]).powi(2)).sum();
            if d2 <= radius_mm * radius_mm {
                KETAMINE_RISE as f32
            } else {
                0.0
            }
        });
        if rise.iter().all(|&r| r == 0.0) {
            return Err(Error::Invalid(format!(
                "effect sphere at {centre_mm:?} mm, radius {radius_mm} mm: no voxel of the {} grid is inside it",
                space.name
            )));
        }
        Ok(EffectPattern::Map {
            name: format!(
                "sphere({:.0}, {:.0}, {:.0}; {radius_mm:.0} mm)",
                centre_mm[0], centre_mm[1], centre_mm[2]
            ),
            rise,
        })
    }

    /// A rise that follows a z-scored map (e.g. a receptor map already resampled to the space's
    /// grid, NaN where undefined): `rise = mean + sd · z`, clipped to [−0.5, 1.5], 0 where `z`
    /// is not finite.
    pub fn from_z_map(name: &str, z: &ndarray::Array3<f32>, mean: f32, sd: f32) -> Self {
        EffectPattern::Map {
            name: name.into(),
            rise: z.mapv(|v| {
                if v.is_finite() {
                    (mean + sd * v).clamp(-0.5, 1.5)
                } else {
                    0.0
                }
            }),
        }
    }
}

impl Default for SynthSpec {
    fn default() -> Self {
        Self {
            subjects: 26,
            seed: 1,
            null: false,
            templates: None,
            protocol: AslProtocol::default(),
            noise: NoiseModel::default(),
            effect: EffectPattern::default(),
        }
    }
}

/// What was generated, for the terminal and for tests.
#[derive(Debug, Clone)]
pub struct SynthSummary {
    /// The dataset root.
    pub root: PathBuf,
    /// Subject labels, e.g. `["01", "02"]`.
    pub subjects: Vec<String>,
    /// Number of files written.
    pub files: usize,
    /// Name of the template space the truth lives in (`phantom` or `MNI152NLin6Asym`).
    pub space: String,
}
