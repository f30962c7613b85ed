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
    /// What the atlas is, for the ROI tables' sidecars.
    pub atlas: String,
}

/// An atlas of regions of interest given by files, in place of the template's own (AAL3 on
/// MNI152NLin6Asym): a label image in the template's space (any grid) and its label table, or a
/// binary mask (one region).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtlasFiles {
    /// Its name in the sidecars.
    pub name: String,
    /// Label image (integers, 0 = background).
    pub image: PathBuf,
    /// What its labels are called.
    pub labels: AtlasLabels,
}

/// The names of an atlas's labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AtlasLabels {
    /// A label table (see [`cbflow_resources::regions_from_label_table`] for the forms read).
    Table(PathBuf),
    /// The image is a binary mask (0 and 1 only): label 1 is the region of this name.
    Mask(String),
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
            label_names: names_of(cbflow_resources::aal3_acc_regions()),
            atlas: "the phantom's anterior cingulate, numbered as AAL3v1 (labels 151-156)".into(),
        }
    }

    /// The files of [`Template::mni`], relative to the resource directory: the FSL MNI152 T1
    /// and brain mask, SPM12's grey, white and CSF priors, AAL3 and its label table.
    pub const MNI_FILES: [&'static str; 7] = [
        "templates/fsl_mni152nlin6asym_2mm/MNI152_T1_2mm.nii.gz",
        "templates/fsl_mni152nlin6asym_2mm/MNI152_T1_2mm_brain_mask.nii.gz",
        "templates/spm12_2mm/grey.nii.gz",
        "templates/spm12_2mm/white.nii.gz",
        "templates/spm12_2mm/csf.nii.gz",
        "atlases/aal3/AAL3v1.nii.gz",
        "atlases/aal3/AAL3v1.nii.txt",
    ];

    /// MNI152NLin6Asym 2 mm from `resources` (a directory laid out like `shared/data`).
    pub fn mni(resources: &Path) -> Result<Self> {
        let [t1w_f, mask_f, grey_f, white_f, csf_f, aal_f, aal_txt_f] = Self::MNI_FILES;
        let read = |rel: &str| -> Result<Volume> {
            let path = resources.join(rel);
            if !path.exists() {
                return Err(Error::Resource {
                    path,
                    message: format!(
                        "missing template file; {}, or point --resources or {RESOURCES_ENV} at a directory with templates/ and atlases/",
                        cbflow_resources::fetch::fetch_hint(rel)
                    ),
                });
            }
            Ok(cbflow_image::read(&path)?)
        };
        let t1w = read(t1w_f)?;
        let brain_mask = read(mask_f)?;
        let mut gm = read(grey_f)?;
        let mut wm = read(white_f)?;
        let mut csf = read(csf_f)?;
        let labels = read(aal_f)?;
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
        let label_names = read_label_names(&resources.join(aal_txt_f))?;
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
            atlas: "AAL3v1 (Rolls et al. 2020, NeuroImage 206:116189)".into(),
        })
    }

    /// This template with the regions of `atlas` in place of its own: the label image put on
    /// the template's grid by nearest neighbour (it must be a 3D image of integers in the
    /// template's world space), the names from its label table. Errors name the file.
    pub fn with_atlas(mut self, atlas: &AtlasFiles) -> Result<Self> {
        let bad = |path: &Path, message: String| Error::Resource {
            path: path.to_path_buf(),
            message,
        };
        let img = cbflow_image::read(&atlas.image)?;
        if img.n_volumes() != 1 {
            return Err(bad(
                &atlas.image,
                format!(
                    "an atlas is one 3D label image; this has {} volumes",
                    img.n_volumes()
                ),
            ));
        }
        if let Some(v) = img
            .data
            .iter()
            .find(|v| !v.is_finite() || (**v - v.round()).abs() > 1e-3)
        {
            return Err(bad(
                &atlas.image,
                format!("not a label image: it holds {v}, labels are integers"),
            ));
        }
        let on = cbflow_image::resample_to_grid(&img, &self.grid, cbflow_image::Interp::Nearest)?;
        if on.data.iter().all(|&v| v.round() as i32 <= 0) {
            return Err(bad(
                &atlas.image,
                format!(
                    "no label above 0 inside the {} template's grid: is the atlas in this template's space?",
                    self.name
                ),
            ));
        }
        self.label_names = match &atlas.labels {
            AtlasLabels::Table(table) => read_label_names(table)?,
            AtlasLabels::Mask(name) => {
                if let Some(v) = img.data.iter().find(|&&v| v != 0.0 && v != 1.0) {
                    return Err(bad(
                        &atlas.image,
                        format!(
                            "a mask given without a label table holds 0 and 1 only; this holds {v} (give its label table as `labels`)"
                        ),
                    ));
                }
                std::collections::BTreeMap::from([(1, name.clone())])
            }
        };
        self.labels = on;
        self.atlas = format!("{} ({})", atlas.name, atlas.image.display());
        Ok(self)
    }
}

/// The name of each single-label region (unions of labels are not names of a label).
fn names_of(regions: Vec<cbflow_register::Region>) -> std::collections::BTreeMap<i32, String> {
    regions
        .into_iter()
        .filter(|r| r.labels.len() == 1)
        .map(|r| (r.labels[0], r.name))
        .collect()
}

/// The label names of a label table file; errors name the file.
fn read_label_names(path: &Path) -> Result<std::collections::BTreeMap<i32, String>> {
    let bad = |message: String| Error::Resource {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    cbflow_resources::regions_from_label_table(&text)
        .map(names_of)
        .map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atlas_replaces_the_template_labels_and_bad_ones_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let tpl = Template::phantom();
        let g = tpl.grid.clone();
        // two parcels: the left and the right half of the grid
        let half = g.dims[0] / 2;
        let labels = Array3::from_shape_fn(g.dims, |(i, _, _)| if i < half { 1.0 } else { 2.0 });
        let image = t.path().join("parc.nii.gz");
        cbflow_image::write(&image, &vol(&g, labels), cbflow_image::DataType::Int16).unwrap();
        let table = t.path().join("parc.tsv");
        std::fs::write(&table, "index\tname\n1\tleft\n2\tright\n").unwrap();
        let atlas = AtlasFiles {
            name: "halves".into(),
            image: image.clone(),
            labels: AtlasLabels::Table(table.clone()),
        };
        let a = tpl.clone().with_atlas(&atlas).unwrap();
        assert_eq!(
            a.label_names.values().collect::<Vec<_>>(),
            ["left", "right"]
        );
        assert_eq!(a.labels.frame(0)[[0, 0, 0]], 1.0);
        assert_eq!(a.labels.frame(0)[[g.dims[0] - 1, 0, 0]], 2.0);
        assert!(a.atlas.starts_with("halves"), "{}", a.atlas);
        // a probability map is not a label image
        let prob = t.path().join("prob.nii.gz");
        let p = Array3::from_elem(g.dims, 0.5f32);
        cbflow_image::write(&prob, &vol(&g, p), cbflow_image::DataType::Float32).unwrap();
        let e = tpl
            .clone()
            .with_atlas(&AtlasFiles {
                image: prob.clone(),
                ..atlas.clone()
            })
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("prob.nii.gz") && e.contains("not a label image"),
            "{e}"
        );
        // a table that cannot be read is named
        let e = tpl
            .clone()
            .with_atlas(&AtlasFiles {
                labels: AtlasLabels::Table(t.path().join("missing.tsv")),
                ..atlas.clone()
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.tsv"), "{e}");
        // a binary mask without a table is one region; a label image without one is refused
        let mask = t.path().join("mask.nii.gz");
        let m = Array3::from_shape_fn(g.dims, |(i, _, _)| if i < half { 1.0 } else { 0.0 });
        cbflow_image::write(&mask, &vol(&g, m), cbflow_image::DataType::Uint8).unwrap();
        let a = tpl
            .clone()
            .with_atlas(&AtlasFiles {
                name: "mask.nii.gz".into(),
                image: mask,
                labels: AtlasLabels::Mask("left_half".into()),
            })
            .unwrap();
        assert_eq!(
            a.label_names.into_iter().collect::<Vec<_>>(),
            [(1, "left_half".to_string())]
        );
        assert_eq!(a.labels.frame(0)[[0, 0, 0]], 1.0);
        assert_eq!(a.labels.frame(0)[[g.dims[0] - 1, 0, 0]], 0.0);
        let e = tpl
            .with_atlas(&AtlasFiles {
                labels: AtlasLabels::Mask("x".into()),
                ..atlas
            })
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("parc.nii.gz") && e.contains("0 and 1 only"),
            "{e}"
        );
    }
}
