//! Parameters of `asl-cbf`, the participant level.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::base::{Level, Resources};
use super::opspec::{OpSpec, Slot, SlotKind};

/// Template space of the participant level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
pub enum TemplateName {
    /// MNI152NLin6Asym at 2 mm (FSL's MNI152 T1 and brain mask, SPM12 tissue priors, AAL3),
    /// read from the resource directory (`--resources` or `CBFLOW_RESOURCES`).
    #[serde(rename = "MNI152NLin6Asym")]
    Mni152NLin6Asym,
    /// The synthetic phantom of `cbflow synth`, built in (demos and tests).
    #[serde(rename = "phantom")]
    Phantom,
    /// No template: native-space CBF and QC only (no group level possible).
    #[serde(rename = "none")]
    None,
}

impl TemplateName {
    /// The name written in workflow files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateName::Mni152NLin6Asym => "MNI152NLin6Asym",
            TemplateName::Phantom => "phantom",
            TemplateName::None => "none",
        }
    }
}

impl std::str::FromStr for TemplateName {
    type Err = String;
    /// `MNI152NLin6Asym`, `phantom` or `none` (for the command line).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "MNI152NLin6Asym" => Ok(TemplateName::Mni152NLin6Asym),
            "phantom" => Ok(TemplateName::Phantom),
            "none" => Ok(TemplateName::None),
            other => Err(format!(
                "unknown template {other:?}: expected MNI152NLin6Asym, phantom or none"
            )),
        }
    }
}

/// Parameters of `asl-cbf` (cbflow-pipeline's `AslOptions` and the template).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct AslCbfParams {
    /// Template space to normalise to: `MNI152NLin6Asym`, `phantom` or `none`.
    pub template: TemplateName,
    /// Labelling efficiency kept per background-suppression pulse (0–1; ASLPrep's 0.95).
    pub bs_efficiency_per_pulse: f64,
    /// Number of background-suppression pulses, for series with `BackgroundSuppression: true`
    /// whose sidecar lacks `BackgroundSuppressionNumberPulses` (Siemens DICOMs do not record
    /// it); a sidecar that gives another number is an error. Unset: such series stop.
    pub bs_pulses: Option<u32>,
    /// Total factor (0–1) by which background suppression lowers the labelling efficiency,
    /// in place of `bs-efficiency-per-pulse` ^ pulses (e.g. ExploreASL's 0.83 for 2 pulses).
    pub bs_total_efficiency: Option<f64>,
    /// Extra factor on M0 (e.g. GE 3D spiral: 32 × NEX; 1 for data already scaled).
    pub m0_scale: f64,
    /// Dummy volumes at the start of each ASL series to drop.
    pub dummy_scans: usize,
    /// Volumes to leave out of every ASL series, by 0-based index (the `aslcontext.tsv` row
    /// below the header, counted from 0), whatever their type. An unpaired control or label at
    /// the start or end of a series is left out without it (with a warning).
    pub exclude_volumes: Vec<usize>,
    /// Shots (segments) per volume of a segmented 3D readout (3D GRASE, 3D spiral), for series
    /// whose sidecar has no `NumberShots`: each volume lasts this many
    /// `RepetitionTimePreparation`s, which sets the clock of the CBF time course.
    pub number_shots: Option<u32>,
    /// Rigidly realign each ASL series.
    pub realign: bool,
    /// Smooth M0 with this FWHM (mm) inside the brain before calibration; unset = off.
    pub m0_smoothing_fwhm_mm: Option<f64>,
    /// The atlas whose labels the regions of interest are, in place of the template's own
    /// (AAL3v1 on MNI152NLin6Asym): a label image in the template's space and its label table.
    pub atlas: Option<AtlasSpec>,
    /// Regions of interest: unions of labels of the atlas, for the ROI tables and time
    /// courses. Unset: with `atlas`, one region per label of its table (named after it);
    /// without, the anterior cingulate subdivisions ACC_sub, ACC_pre, ACC_sup (AAL3 151–156),
    /// each left, right and bilateral. `grey_matter` and `global` are always added.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rois: Option<Vec<RoiSpec>>,
}

/// An atlas given by files. Relative paths are relative to the workflow file's directory (the
/// current directory for the built-in workflow); the plan makes them absolute and hashes both
/// files into the participant jobs' keys.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AtlasSpec {
    /// Label image: integers, 0 = background, in the template's space on any grid (put on the
    /// template's grid by nearest neighbour), e.g. a Schaefer parcellation in MNI152NLin6Asym.
    pub image: std::path::PathBuf,
    /// Label table: a BIDS `dseg.tsv` (`index` and `name` columns), lines `index name` (AAL's
    /// `.txt`), or a Workbench label list (name line, then `index r g b a`: Schaefer/Tian
    /// `_label.txt`). Names become region names: other characters than letters, digits and `_`
    /// become `_`, and a name starting with a digit gets `label_` in front. Unset: the image is
    /// a binary mask (0 and 1), one region named `name` (else the file name without `.nii[.gz]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<std::path::PathBuf>,
    /// Its name in the ROI tables' sidecars, and a mask's region name (default: the image's
    /// file name).
    pub name: Option<String>,
}

impl AtlasSpec {
    /// The name in the sidecars.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            self.image
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
    }

    /// The region name of a mask (no label table): `name`, else the image's file name without
    /// `.nii` / `.nii.gz`, made a valid region name.
    pub fn mask_region_name(&self) -> String {
        let stem = self.name.clone().unwrap_or_else(|| {
            let n = self.display_name();
            n.strip_suffix(".nii.gz")
                .or_else(|| n.strip_suffix(".nii"))
                .unwrap_or(&n)
                .to_string()
        });
        cbflow_resources::region_name(&stem)
    }

    /// One region per label of the table at `labels` (read now), named by
    /// [`cbflow_resources::region_name`]; a name that two labels share gets `_<label>` after it.
    /// Without a table, the mask's one region (label 1).
    pub fn all_regions(&self) -> std::result::Result<Vec<RoiSpec>, String> {
        let Some(labels) = &self.labels else {
            return Ok(vec![RoiSpec {
                name: self.mask_region_name(),
                labels: vec![1],
            }]);
        };
        let text =
            std::fs::read_to_string(labels).map_err(|e| format!("{}: {e}", labels.display()))?;
        let regions = cbflow_resources::regions_from_label_table(&text)
            .map_err(|e| format!("{}: {e}", labels.display()))?;
        let names: Vec<String> = regions
            .iter()
            .map(|r| cbflow_resources::region_name(&r.name))
            .collect();
        Ok(regions
            .iter()
            .zip(&names)
            .map(|(r, n)| RoiSpec {
                name: if names.iter().filter(|m| *m == n).count() > 1 {
                    format!("{n}_{}", r.labels[0])
                } else {
                    n.clone()
                },
                labels: r.labels.clone(),
            })
            .collect())
    }
}

/// A region of interest.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RoiSpec {
    /// Name: letters, digits and `_` (a row of the ROI tables, a column of the time courses).
    pub name: String,
    /// Atlas label values whose union is the region.
    pub labels: Vec<i32>,
}

impl Default for AslCbfParams {
    fn default() -> Self {
        let a = cbflow_pipeline::AslOptions::default();
        Self {
            template: TemplateName::Mni152NLin6Asym,
            bs_efficiency_per_pulse: a.bs_efficiency_per_pulse,
            bs_pulses: a.bs_pulses,
            bs_total_efficiency: a.bs_total_efficiency,
            m0_scale: a.m0_scale,
            dummy_scans: a.dummy_scans,
            exclude_volumes: a.exclude_volumes,
            number_shots: a.number_shots,
            realign: a.realign,
            m0_smoothing_fwhm_mm: a.m0_smoothing_fwhm_mm,
            atlas: None,
            rois: None,
        }
    }
}

impl AslCbfParams {
    /// The pipeline's regions of interest: the declared ones; unset, AAL3's anterior cingulate
    /// subdivisions. `None` when they are every label of an atlas not read yet (the plan
    /// reads its table and declares them).
    pub fn regions(&self) -> Option<Vec<cbflow_pipeline::Region>> {
        match (&self.rois, &self.atlas) {
            (Some(rois), _) => Some(
                rois.iter()
                    .map(|r| cbflow_pipeline::Region::new(r.name.clone(), r.labels.clone()))
                    .collect(),
            ),
            (None, None) => Some(cbflow_pipeline::default_rois()),
            (None, Some(_)) => None,
        }
    }

    /// The pipeline's atlas, when one is given.
    pub fn atlas_files(&self) -> Option<cbflow_pipeline::AtlasFiles> {
        self.atlas.as_ref().map(|a| cbflow_pipeline::AtlasFiles {
            name: a.display_name(),
            image: a.image.clone(),
            labels: match &a.labels {
                Some(table) => cbflow_pipeline::AtlasLabels::Table(table.clone()),
                None => cbflow_pipeline::AtlasLabels::Mask(a.mask_region_name()),
            },
        })
    }

    /// The pipeline's ASL options.
    pub fn asl_options(&self) -> cbflow_pipeline::AslOptions {
        cbflow_pipeline::AslOptions {
            bs_efficiency_per_pulse: self.bs_efficiency_per_pulse,
            bs_pulses: self.bs_pulses,
            bs_total_efficiency: self.bs_total_efficiency,
            m0_scale: self.m0_scale,
            dummy_scans: self.dummy_scans,
            exclude_volumes: self.exclude_volumes.clone(),
            number_shots: self.number_shots,
            realign: self.realign,
            m0_smoothing_fwhm_mm: self.m0_smoothing_fwhm_mm,
        }
    }
}

/// Outputs of `asl-cbf`: native-space CBF, QC and confounds.
pub const OUT_CBF: &str = "cbf";
/// Outputs of `asl-cbf` with a template: template-space CBF maps and the ROI tables.
pub const OUT_CBF_TEMPLATE: &str = "cbf-template";
/// Outputs of `asl-cbf` with a template: the T1w normalisation (transforms, brain mask).
pub const OUT_ANAT: &str = "anat";
/// Outputs of the group operations: statistical maps and cluster tables.
pub const OUT_STATMAPS: &str = "statmaps";
/// Outputs of the group operations: ROI, correlation and mixed-model tables.
pub const OUT_TABLES: &str = "tables";

pub(super) const ASL_CBF_SLOTS: &[Slot] = &[
    Slot {
        name: "asl",
        required: true,
        kind: SlotKind::Bids,
        doc: "the ASL series; every participant with a match gets a job, and each job processes all of the participant's ASL runs",
    },
    Slot {
        name: "t1w",
        required: false,
        kind: SlotKind::Bids,
        doc: "the T1w image of each session (sessions without one get native-space outputs only)",
    },
];

pub(super) fn in_range(name: &str, v: f64, lo: f64, hi: f64) -> std::result::Result<(), String> {
    if v.is_finite() && v >= lo && v <= hi {
        Ok(())
    } else {
        Err(format!(
            "{name}: {v} is out of range (expected {lo} to {hi})"
        ))
    }
}

impl OpSpec for AslCbfParams {
    fn level(&self) -> Level {
        Level::Participant
    }
    fn slots(&self) -> &'static [Slot] {
        ASL_CBF_SLOTS
    }
    fn outputs(&self) -> Vec<&'static str> {
        if self.template == TemplateName::None {
            vec![OUT_CBF]
        } else {
            vec![OUT_CBF, OUT_CBF_TEMPLATE, OUT_ANAT]
        }
    }
    fn default_resources(&self) -> Resources {
        Resources {
            cpus: 2,
            mem_gb: 4.0,
            time_min: 120,
        }
    }
    fn check(&self) -> std::result::Result<(), String> {
        in_range(
            "bs-efficiency-per-pulse",
            self.bs_efficiency_per_pulse,
            0.01,
            1.0,
        )?;
        in_range("m0-scale", self.m0_scale, 1e-6, 1e6)?;
        if let Some(n) = self.bs_pulses {
            in_range("bs-pulses", n as f64, 1.0, 16.0)?;
        }
        if let Some(f) = self.bs_total_efficiency {
            if !(f.is_finite() && f > 0.0 && f <= 1.0) {
                return Err(format!(
                    "bs-total-efficiency: {f} is out of range (expected above 0 and at most 1)"
                ));
            }
            if self.bs_pulses.is_some() {
                return Err(
                    "bs-pulses and bs-total-efficiency both set: give one (the total efficiency replaces the per-pulse model)".into(),
                );
            }
        }
        if let Some(n) = self.number_shots {
            in_range("number-shots", n as f64, 1.0, 1024.0)?;
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(i) = self.exclude_volumes.iter().find(|i| !seen.insert(**i)) {
            return Err(format!("exclude-volumes: volume {i} is listed twice"));
        }
        if let Some(f) = self.m0_smoothing_fwhm_mm {
            in_range("m0-smoothing-fwhm-mm", f, 0.0, 50.0)?;
        }
        if let Some(regions) = self.regions()
            && let Some(why) = cbflow_pipeline::rois_problem(&regions)
        {
            return Err(format!("rois: {why}"));
        }
        Ok(())
    }
}
