//! Template spaces: the T1w, brain mask, tissue priors and atlas a participant is normalised to.
//!
//! Two are known: `MNI152NLin6Asym` at 2 mm (FSL's MNI152 T1 and brain mask, SPM12's tissue
//! priors and AAL3 on the same grid) read from a resource directory laid out like
//! `shared/data`, and `phantom`, the synthetic brain of `cbflow-synth`, built in code (no files).

use std::path::{Path, PathBuf};

use cbflow_image::{Grid, Volume};
use ndarray::Array3;

use crate::{Error, Result};

pub use cbflow_resources::RESOURCES_ENV;

/// Which template space to normalise to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateChoice {
    /// MNI152NLin6Asym 2 mm from a resource directory.
    Mni152NLin6Asym {
        /// The resource directory.
        resources: PathBuf,
    },
    /// The synthetic phantom (for `cbflow demo` and tests).
    Phantom,
}

/// A template space with everything the participant level samples from it.
#[derive(Debug, Clone)]
pub struct Template {
    /// Space name for derivative names (`space-<name>`).
    pub name: String,
    /// `res-<label>` of outputs resampled to this grid.
    pub res: String,
    /// The grid of every map.
    pub grid: Grid,
    /// T1-weighted template (registration target).
    pub t1w: Volume,
    /// Brain mask (0/1).
    pub brain_mask: Volume,
    /// Tissue probabilities (0–1).
    pub gm: Volume,
    /// White-matter probability.
    pub wm: Volume,
    /// CSF probability.
    pub csf: Volume,
    /// Atlas labels (AAL3 numbering; stored as floats).
    pub labels: Volume,
    /// Name of each atlas label.
    pub label_names: std::collections::BTreeMap<i32, String>,
}

fn vol(grid: &Grid, data: Array3<f32>) -> Volume {
    Volume::new(data.into_dyn(), grid.affine).expect("grid-shaped data")
}

impl Template {
    /// Loads the chosen template.
    pub fn load(choice: &TemplateChoice) -> Result<Self> {
        match choice {
            TemplateChoice::Phantom => Ok(Self::phantom()),
            TemplateChoice::Mni152NLin6Asym { resources } => Self::mni(resources),
        }
    }

    /// The synthetic phantom of `cbflow-synth`.
    pub fn phantom() -> Self {
        let s = cbflow_synth::Space::phantom();
        let g = &s.grid;
        let brain = s.brain_mask().mapv(|b| if b { 1.0 } else { 0.0 });
        Self {
            name: s.name.clone(),
            res: "3".into(),
            grid: g.clone(),
            t1w: vol(g, s.t1w()),
            brain_mask: vol(g, brain),
            gm: vol(g, s.gm.clone()),
            wm: vol(g, s.wm.clone()),
            csf: vol(g, s.csf.clone()),
            labels: vol(g, s.labels.mapv(|l| l as f32)),
            label_names: cbflow_resources::aal3_acc_regions()
                .into_iter()
                .filter(|r| r.labels.len() == 1)
                .map(|r| (r.labels[0], r.name))
                .collect(),
        }
    }

    /// MNI152NLin6Asym 2 mm from `resources` (a directory laid out like `shared/data`).
    pub fn mni(resources: &Path) -> Result<Self> {
        let read = |rel: &str| -> Result<Volume> {
            let path = resources.join(rel);
            if !path.exists() {
                return Err(Error::Resource {
                    path,
                    message: format!(
                        "missing template file; point --resources or {RESOURCES_ENV} at a directory with templates/ and atlases/"
                    ),
                });
            }
            Ok(cbflow_image::read(&path)?)
        };
        let t1w = read("templates/fsl_mni152nlin6asym_2mm/MNI152_T1_2mm.nii.gz")?;
        let brain_mask = read("templates/fsl_mni152nlin6asym_2mm/MNI152_T1_2mm_brain_mask.nii.gz")?;
        let mut gm = read("templates/spm12_2mm/grey.nii.gz")?;
        let mut wm = read("templates/spm12_2mm/white.nii.gz")?;
        let mut csf = read("templates/spm12_2mm/csf.nii.gz")?;
        let labels = read("atlases/aal3/AAL3v1.nii.gz")?;
        let grid = t1w.grid();
        for (name, v) in [
            ("brain mask", &brain_mask),
            ("grey", &gm),
            ("white", &wm),
            ("csf", &csf),
            ("AAL3", &labels),
        ] {
            if v.grid().dims != grid.dims || (v.affine - grid.affine).abs().max() > 1e-3 {
                return Err(Error::Resource {
                    path: resources.to_path_buf(),
                    message: format!(
                        "{name} is not on the grid of the MNI152 T1 (2 mm, 91×109×91)"
                    ),
                });
            }
        }
        for p in [&mut gm, &mut wm, &mut csf] {
            let max = p.data.iter().cloned().fold(0f32, f32::max);
            if max > 1.5 {
                p.data.mapv_inplace(|x| x / max);
            }
        }
        let table_path = resources.join("atlases/aal3/AAL3v1.nii.txt");
        let text = std::fs::read_to_string(&table_path).map_err(|e| Error::Resource {
            path: table_path.clone(),
            message: e.to_string(),
        })?;
        let label_names = cbflow_resources::regions_from_label_table(&text)
            .map_err(|e| Error::Resource {
                path: table_path,
                message: e.to_string(),
            })?
            .into_iter()
            .filter(|r| r.labels.len() == 1)
            .map(|r| (r.labels[0], r.name))
            .collect();
        Ok(Self {
            name: "MNI152NLin6Asym".into(),
            res: "2".into(),
            grid,
            t1w,
            brain_mask,
            gm,
            wm,
            csf,
            labels,
            label_names,
        })
    }
}
