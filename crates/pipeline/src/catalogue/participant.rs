//! The participant level's files: per ASL run in `perf/` ([`RunFile`], named from the run's
//! entities) and per session in `anat/` ([`AnatFile`], named from the entities of the T1w that
//! was normalised), and the flat output directory of `cbflow normalise` ([`NormaliseFile`]).
//!
//! The names are BIDS-Derivatives names built by [`cbflow_bids::DerivativeName`] (entities in
//! BIDS order): `sub-<s>/[ses-<t>/]perf/<run entities>[_space-<s>_res-<r>][_from-…_to-…_mode-…]
//! [_desc-<d>]_<suffix><extension>`. Every NIfTI and TSV file has a JSON sidecar of the same stem;
//! the ITK text transforms have none ([`RunFile::has_sidecar`], [`AnatFile::has_sidecar`]).
//! `identify` maps a path back to its kind and entities, so a reader that must list a directory
//! (the runs of a participant, the template-space maps of a session) recognises the files by the
//! same names the writer used.

use std::path::{Path, PathBuf};

use cbflow_bids::{DerivativeName, DerivativesWriter, Entities};

use crate::Result;

const NIFTI: &str = ".nii.gz";
const TSV: &str = ".tsv";
const ITK_TEXT: &str = ".txt";

/// The template space of a run's template-space outputs: their `space` and `res` entities.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TemplateSpace {
    /// `space` entity (the template's name, e.g. `MNI152NLin6Asym`).
    pub space: String,
    /// `res` entity (the template's resolution label, e.g. `2`).
    pub res: String,
}

impl TemplateSpace {
    /// Template `space` at resolution `res`.
    pub fn new(space: &str, res: &str) -> Self {
        Self {
            space: space.into(),
            res: res.into(),
        }
    }
}

/// One kind of file the participant level writes for an ASL run, in the run's `perf/` folder,
/// named from the run's entities (those of its `*_asl.nii.gz`, e.g. `sub-01_ses-1_acq-pcasl_run-1`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RunFile {
    /// `<run>_cbf.nii.gz`: mean CBF over all label/control pairs, native ASL grid, mL/100 g/min.
    Cbf,
    /// `<run>_desc-timeseries_cbf.nii.gz`: CBF of each pair, `[i, j, k, pair]`, mL/100 g/min.
    TimeseriesCbf,
    /// `<run>_desc-score_cbf.nii.gz`: SCORE robust mean of the pairs' CBF (Dolui et al. 2017);
    /// written when the template priors reached the ASL grid (a session with a T1w).
    ScoreCbf,
    /// `<run>_desc-att_cbf.nii.gz`: arterial transit time, s (multi-delay runs only).
    Att,
    /// `<run>_desc-mean_deltam.nii.gz`: mean control − label difference after realignment.
    MeanDeltaM,
    /// `<run>_desc-calibration_m0scan.nii.gz`: the M0 used for calibration.
    CalibrationM0,
    /// `<run>_desc-brain_mask.nii.gz`: the brain mask from M0 on the ASL grid.
    BrainMask,
    /// `<run>_desc-confounds_timeseries.tsv`: realignment parameters, FD and volume type per volume.
    Confounds,
    /// `<run>_desc-qc_cbf.tsv`: the run's QC metrics and flags (one row).
    Qc,
    /// `<run>_from-asl_to-T1w_mode-image_xfm.txt`: rigid ASL → T1w transform, ITK text, no
    /// sidecar (sessions with a T1w).
    AslToT1wXfm,
    /// `<run>_space-<s>_res-<r>_cbf.nii.gz`: mean CBF on the template grid.
    TemplateCbf(TemplateSpace),
    /// `<run>_space-<s>_res-<r>_desc-score_cbf.nii.gz`: SCORE mean CBF on the template grid.
    TemplateScoreCbf(TemplateSpace),
    /// `<run>_space-<s>_res-<r>_desc-roi_cbf.tsv`: mean and median CBF per region.
    RoiTable(TemplateSpace),
    /// `<run>_space-<s>_res-<r>_desc-roi_timeseries.tsv`: mean CBF per region and pair.
    RoiTimeseries(TemplateSpace),
}

impl RunFile {
    /// The mean CBF map in template space `space` at resolution `res`.
    pub fn template_cbf(space: &str, res: &str) -> Self {
        RunFile::TemplateCbf(TemplateSpace::new(space, res))
    }

    /// The ROI table in template space `space` at resolution `res`.
    pub fn roi_table(space: &str, res: &str) -> Self {
        RunFile::RoiTable(TemplateSpace::new(space, res))
    }

    /// The ROI time series in template space `space` at resolution `res`.
    pub fn roi_timeseries(space: &str, res: &str) -> Self {
        RunFile::RoiTimeseries(TemplateSpace::new(space, res))
    }

    /// Every kind, the template-space ones in `space`.
    pub fn all(space: &TemplateSpace) -> Vec<RunFile> {
        let mut v = Self::native();
        v.extend([
            RunFile::TemplateCbf(space.clone()),
            RunFile::TemplateScoreCbf(space.clone()),
            RunFile::RoiTable(space.clone()),
            RunFile::RoiTimeseries(space.clone()),
        ]);
        v
    }

    /// The kinds without a template space.
    fn native() -> Vec<RunFile> {
        vec![
            RunFile::Cbf,
            RunFile::TimeseriesCbf,
            RunFile::ScoreCbf,
            RunFile::Att,
            RunFile::MeanDeltaM,
            RunFile::CalibrationM0,
            RunFile::BrainMask,
            RunFile::Confounds,
            RunFile::Qc,
            RunFile::AslToT1wXfm,
        ]
    }

    /// The name of the file of the run with entities `run`, as a builder.
    pub fn derivative_name(&self, run: &Entities) -> DerivativeName {
        let n = DerivativeName::from_entities(run).datatype("perf");
        let at = |t: &TemplateSpace| n.clone().set("space", &t.space).set("res", &t.res);
        let (n, desc, suffix, ext) = match self {
            RunFile::Cbf => (n, None, "cbf", NIFTI),
            RunFile::TimeseriesCbf => (n, Some("timeseries"), "cbf", NIFTI),
            RunFile::ScoreCbf => (n, Some("score"), "cbf", NIFTI),
            RunFile::Att => (n, Some("att"), "cbf", NIFTI),
            RunFile::MeanDeltaM => (n, Some("mean"), "deltam", NIFTI),
            RunFile::CalibrationM0 => (n, Some("calibration"), "m0scan", NIFTI),
            RunFile::BrainMask => (n, Some("brain"), "mask", NIFTI),
            RunFile::Confounds => (n, Some("confounds"), "timeseries", TSV),
            RunFile::Qc => (n, Some("qc"), "cbf", TSV),
            RunFile::AslToT1wXfm => (
                n.set("from", "asl").set("to", "T1w").set("mode", "image"),
                None,
                "xfm",
                ITK_TEXT,
            ),
            RunFile::TemplateCbf(t) => (at(t), None, "cbf", NIFTI),
            RunFile::TemplateScoreCbf(t) => (at(t), Some("score"), "cbf", NIFTI),
            RunFile::RoiTable(t) => (at(t), Some("roi"), "cbf", TSV),
            RunFile::RoiTimeseries(t) => (at(t), Some("roi"), "timeseries", TSV),
        };
        let n = match desc {
            Some(d) => n.set("desc", d),
            None => n,
        };
        n.suffix(suffix).extension(ext)
    }

    /// Whether the file has a JSON sidecar (all but the ITK text transform).
    pub fn has_sidecar(&self) -> bool {
        !matches!(self, RunFile::AslToT1wXfm)
    }

    /// The file name; fails when a label is not alphanumeric.
    pub fn file_name(&self, run: &Entities) -> Result<String> {
        Ok(self.derivative_name(run).file_name()?)
    }

    /// The path relative to the derivatives root (`sub-<s>/[ses-<t>/]perf/<name>`).
    pub fn rel_path(&self, run: &Entities) -> Result<PathBuf> {
        Ok(self.derivative_name(run).rel_path()?)
    }

    /// The path of the file under `output_dir`.
    pub fn path(&self, output_dir: &Path, run: &Entities) -> Result<PathBuf> {
        Ok(output_dir.join(self.rel_path(run)?))
    }

    /// The path of its JSON sidecar under `output_dir`; `None` for a kind without one.
    pub fn sidecar_path(&self, output_dir: &Path, run: &Entities) -> Result<Option<PathBuf>> {
        sidecar(self.has_sidecar(), output_dir, &self.rel_path(run)?)
    }

    /// The kind of the file at `rel` (relative to the derivatives root) and the entities of its
    /// run, when it is a run's file as the participant level names it; `None` otherwise
    /// (another level's file, a sidecar, a name the participant level does not write).
    pub fn identify(rel: &Path) -> Option<(RunFile, Entities)> {
        let (mut e, space) = parse_rel(rel)?;
        let kinds = match space {
            Some(s) => Self::all(&s),
            None => Self::native(),
        };
        // the entities the kinds set themselves
        for k in ["desc", "from", "to", "mode"] {
            e.remove(k);
        }
        kinds
            .into_iter()
            .find(|k| k.rel_path(&e).is_ok_and(|p| p == rel))
            .map(|k| (k, e))
    }
}

/// One kind of file the participant level writes for a session's T1w, in the session's
/// `anat/` folder, named from the T1w's entities (those of its `*_T1w.nii.gz`, e.g.
/// `sub-01_ses-1`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AnatFile {
    /// `<t1w>_desc-preproc_T1w.nii.gz`: the T1w after bias-field correction.
    PreprocT1w,
    /// `<t1w>_desc-brain_mask.nii.gz`: the brain mask on the T1w grid.
    BrainMask,
    /// `<t1w>_from-T1w_to-<template>_mode-image_desc-affine_xfm.txt`: the brain-to-brain
    /// affine, ITK text, no sidecar.
    TemplateAffine {
        /// `to` entity: the template's name.
        template: String,
    },
    /// `<t1w>_from-T1w_to-<template>_mode-image_desc-warp_xfm.nii.gz`: the displacement field
    /// on the template grid (ITK/ANTs 5D, LPS mm).
    TemplateWarp {
        /// `to` entity: the template's name.
        template: String,
    },
}

impl AnatFile {
    /// The T1w → `template` affine.
    pub fn template_affine(template: &str) -> Self {
        AnatFile::TemplateAffine {
            template: template.into(),
        }
    }

    /// The T1w → `template` warp.
    pub fn template_warp(template: &str) -> Self {
        AnatFile::TemplateWarp {
            template: template.into(),
        }
    }

    /// Every kind, the transforms to `template`.
    pub fn all(template: &str) -> Vec<AnatFile> {
        vec![
            AnatFile::PreprocT1w,
            AnatFile::BrainMask,
            AnatFile::template_affine(template),
            AnatFile::template_warp(template),
        ]
    }

    /// The name of the file of the T1w with entities `t1w`, as a builder.
    pub fn derivative_name(&self, t1w: &Entities) -> DerivativeName {
        let n = DerivativeName::from_entities(t1w).datatype("anat");
        let xfm = |template: &str, desc: &str, ext: &str| {
            n.clone()
                .set("from", "T1w")
                .set("to", template)
                .set("mode", "image")
                .set("desc", desc)
                .suffix("xfm")
                .extension(ext)
        };
        match self {
            AnatFile::PreprocT1w => n.set("desc", "preproc").suffix("T1w").extension(NIFTI),
            AnatFile::BrainMask => n.set("desc", "brain").suffix("mask").extension(NIFTI),
            AnatFile::TemplateAffine { template } => xfm(template, "affine", ITK_TEXT),
            AnatFile::TemplateWarp { template } => xfm(template, "warp", NIFTI),
        }
    }

    /// Whether the file has a JSON sidecar (all but the ITK text affine).
    pub fn has_sidecar(&self) -> bool {
        !matches!(self, AnatFile::TemplateAffine { .. })
    }

    /// The file name; fails when a label is not alphanumeric.
    pub fn file_name(&self, t1w: &Entities) -> Result<String> {
        Ok(self.derivative_name(t1w).file_name()?)
    }

    /// The path relative to the derivatives root (`sub-<s>/[ses-<t>/]anat/<name>`).
    pub fn rel_path(&self, t1w: &Entities) -> Result<PathBuf> {
        Ok(self.derivative_name(t1w).rel_path()?)
    }

    /// The path of the file under `output_dir`.
    pub fn path(&self, output_dir: &Path, t1w: &Entities) -> Result<PathBuf> {
        Ok(output_dir.join(self.rel_path(t1w)?))
    }

    /// The path of its JSON sidecar under `output_dir`; `None` for the affine.
    pub fn sidecar_path(&self, output_dir: &Path, t1w: &Entities) -> Result<Option<PathBuf>> {
        sidecar(self.has_sidecar(), output_dir, &self.rel_path(t1w)?)
    }

    /// The kind of the file at `rel` (relative to the derivatives root) and the entities of its
    /// T1w, when it is a session's anatomical file as the participant level names it.
    pub fn identify(rel: &Path) -> Option<(AnatFile, Entities)> {
        let (mut e, space) = parse_rel(rel)?;
        if space.is_some() {
            return None;
        }
        let to = e.remove("to");
        for k in ["desc", "from", "mode"] {
            e.remove(k);
        }
        let kinds = match &to {
            Some(t) => Self::all(t),
            None => vec![AnatFile::PreprocT1w, AnatFile::BrainMask],
        };
        kinds
            .into_iter()
            .find(|k| k.rel_path(&e).is_ok_and(|p| p == rel))
            .map(|k| (k, e))
    }
}

/// The entities of the file name at `rel` with `space` and `res` taken out (both or neither).
fn parse_rel(rel: &Path) -> Option<(Entities, Option<TemplateSpace>)> {
    let name = rel.file_name()?.to_str()?;
    let (mut e, _, _) = cbflow_bids::parse_filename(name).ok()?;
    let space = match (e.remove("space"), e.remove("res")) {
        (Some(space), Some(res)) => Some(TemplateSpace { space, res }),
        (None, None) => None,
        _ => return None,
    };
    Some((e, space))
}

fn sidecar(has: bool, output_dir: &Path, rel: &Path) -> Result<Option<PathBuf>> {
    Ok(has.then(|| output_dir.join(DerivativesWriter::sidecar_path(rel))))
}

/// One file of `cbflow normalise`, which normalises one T1w into a flat directory, its files
/// named without BIDS entities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NormaliseFile {
    /// `T1w_desc-preproc_T1w.nii.gz`: the bias-corrected T1w.
    PreprocT1w,
    /// `T1w_desc-brain_mask.nii.gz`: its brain mask.
    BrainMask,
    /// `T1w_space-<template>_desc-preproc_T1w.nii.gz`: the corrected T1w in template space.
    TemplateT1w {
        /// The template's name.
        template: String,
    },
    /// `<stem>_space-<template>.nii.gz`: an image on the T1w's grid brought to template space
    /// (`stem`: its file name without `.nii[.gz]`).
    Resampled {
        /// The input image's file name without its extension.
        stem: String,
        /// The template's name.
        template: String,
    },
    /// `from-T1w_to-<template>_mode-image_desc-affine_xfm.txt`: [`AnatFile::TemplateAffine`]
    /// without entities.
    TemplateAffine {
        /// The template's name.
        template: String,
    },
    /// `from-T1w_to-<template>_mode-image_desc-warp_xfm.nii.gz`: [`AnatFile::TemplateWarp`]
    /// without entities.
    TemplateWarp {
        /// The template's name.
        template: String,
    },
    /// `normalisation.json`: the QC figures and the transforms' order.
    Summary,
}

impl NormaliseFile {
    /// The file name; fails when the template's name is not a BIDS label.
    pub fn file_name(&self) -> Result<String> {
        let none = Entities::new();
        Ok(match self {
            NormaliseFile::PreprocT1w => "T1w_desc-preproc_T1w.nii.gz".into(),
            NormaliseFile::BrainMask => "T1w_desc-brain_mask.nii.gz".into(),
            NormaliseFile::TemplateT1w { template } => {
                format!("T1w_space-{template}_desc-preproc_T1w.nii.gz")
            }
            NormaliseFile::Resampled { stem, template } => {
                format!("{stem}_space-{template}.nii.gz")
            }
            NormaliseFile::TemplateAffine { template } => {
                AnatFile::template_affine(template).file_name(&none)?
            }
            NormaliseFile::TemplateWarp { template } => {
                AnatFile::template_warp(template).file_name(&none)?
            }
            NormaliseFile::Summary => "normalisation.json".into(),
        })
    }

    /// The path of the file in `dir`.
    pub fn path(&self, dir: &Path) -> Result<PathBuf> {
        Ok(dir.join(self.file_name()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entities(name: &str) -> Entities {
        cbflow_bids::parse_filename(name).unwrap().0
    }

    /// Every run kind's name is the one the participant level has always written, its path is
    /// in the run's `perf/` folder with a sidecar beside it (but for the transform), and the
    /// path maps back to the kind and the run's entities.
    #[test]
    fn run_names_are_the_published_ones() {
        let run = entities("sub-01_ses-1_acq-pcasl_run-1_asl.nii.gz");
        let pre = "sub-01_ses-1_acq-pcasl_run-1";
        let at = "space-phantom_res-3";
        let sp = TemplateSpace::new("phantom", "3");
        let cases = [
            (RunFile::Cbf, format!("{pre}_cbf.nii.gz")),
            (
                RunFile::TimeseriesCbf,
                format!("{pre}_desc-timeseries_cbf.nii.gz"),
            ),
            (RunFile::ScoreCbf, format!("{pre}_desc-score_cbf.nii.gz")),
            (RunFile::Att, format!("{pre}_desc-att_cbf.nii.gz")),
            (
                RunFile::MeanDeltaM,
                format!("{pre}_desc-mean_deltam.nii.gz"),
            ),
            (
                RunFile::CalibrationM0,
                format!("{pre}_desc-calibration_m0scan.nii.gz"),
            ),
            (RunFile::BrainMask, format!("{pre}_desc-brain_mask.nii.gz")),
            (
                RunFile::Confounds,
                format!("{pre}_desc-confounds_timeseries.tsv"),
            ),
            (RunFile::Qc, format!("{pre}_desc-qc_cbf.tsv")),
            (
                RunFile::AslToT1wXfm,
                format!("{pre}_from-asl_to-T1w_mode-image_xfm.txt"),
            ),
            (
                RunFile::template_cbf("phantom", "3"),
                format!("{pre}_{at}_cbf.nii.gz"),
            ),
            (
                RunFile::TemplateScoreCbf(sp.clone()),
                format!("{pre}_{at}_desc-score_cbf.nii.gz"),
            ),
            (
                RunFile::roi_table("phantom", "3"),
                format!("{pre}_{at}_desc-roi_cbf.tsv"),
            ),
            (
                RunFile::roi_timeseries("phantom", "3"),
                format!("{pre}_{at}_desc-roi_timeseries.tsv"),
            ),
        ];
        assert_eq!(
            cases.len(),
            RunFile::all(&sp).len(),
            "a kind without a case"
        );
        let out = Path::new("/derivatives/cbflow");
        let dir = Path::new("sub-01/ses-1/perf");
        for (file, want) in &cases {
            assert!(RunFile::all(&sp).contains(file), "{file:?}");
            assert_eq!(&file.file_name(&run).unwrap(), want, "{file:?}");
            assert_eq!(file.rel_path(&run).unwrap(), dir.join(want), "{file:?}");
            assert_eq!(file.path(out, &run).unwrap(), out.join(dir).join(want));
            let stem = want.split_once('.').unwrap().0;
            assert_eq!(
                file.sidecar_path(out, &run).unwrap(),
                (!want.ends_with(".txt")).then(|| out.join(dir).join(format!("{stem}.json"))),
                "{file:?}"
            );
            assert_eq!(
                RunFile::identify(&dir.join(want)),
                Some((file.clone(), run.clone())),
                "{want}"
            );
            // a run's file is no session's
            assert_eq!(AnatFile::identify(&dir.join(want)), None, "{want}");
        }
    }

    /// Every anatomical kind's name is the one the participant level has always written.
    #[test]
    fn anat_names_are_the_published_ones() {
        let t1w = entities("sub-01_ses-1_T1w.nii.gz");
        let pre = "sub-01_ses-1";
        let cases = [
            (
                AnatFile::PreprocT1w,
                format!("{pre}_desc-preproc_T1w.nii.gz"),
            ),
            (AnatFile::BrainMask, format!("{pre}_desc-brain_mask.nii.gz")),
            (
                AnatFile::template_affine("phantom"),
                format!("{pre}_from-T1w_to-phantom_mode-image_desc-affine_xfm.txt"),
            ),
            (
                AnatFile::template_warp("phantom"),
                format!("{pre}_from-T1w_to-phantom_mode-image_desc-warp_xfm.nii.gz"),
            ),
        ];
        assert_eq!(cases.len(), AnatFile::all("phantom").len());
        let out = Path::new("/derivatives/cbflow");
        let dir = Path::new("sub-01/ses-1/anat");
        for (file, want) in &cases {
            assert_eq!(&file.file_name(&t1w).unwrap(), want, "{file:?}");
            assert_eq!(file.path(out, &t1w).unwrap(), out.join(dir).join(want));
            let stem = want.split_once('.').unwrap().0;
            assert_eq!(
                file.sidecar_path(out, &t1w).unwrap(),
                (!want.ends_with(".txt")).then(|| out.join(dir).join(format!("{stem}.json"))),
                "{file:?}"
            );
            assert_eq!(
                AnatFile::identify(&dir.join(want)),
                Some((file.clone(), t1w.clone())),
                "{want}"
            );
            assert_eq!(RunFile::identify(&dir.join(want)), None, "{want}");
        }
        // a T1w with more entities keeps them all
        let acq = entities("sub-01_acq-mprage_T1w.nii");
        assert_eq!(
            AnatFile::template_warp("MNI152NLin6Asym")
                .rel_path(&acq)
                .unwrap(),
            Path::new(
                "sub-01/anat/sub-01_acq-mprage_from-T1w_to-MNI152NLin6Asym_mode-image_desc-warp_xfm.nii.gz"
            )
        );
    }

    /// Names the participant level does not write, or in the wrong folder, are no kind.
    #[test]
    fn other_names_are_not_identified() {
        for rel in [
            "sub-01/ses-1/perf/sub-01_ses-1_run-1_desc-other_cbf.nii.gz",
            "sub-01/ses-1/perf/sub-01_ses-1_run-1_cbf.json",
            "sub-01/ses-1/perf/sub-01_ses-1_run-1_space-phantom_cbf.nii.gz",
            "sub-01/ses-1/anat/sub-01_ses-1_run-1_cbf.nii.gz",
            "sub-01/ses-2/perf/sub-01_ses-1_run-1_cbf.nii.gz",
            "sub-01_ses-1_run-1_cbf.nii.gz",
            "desc-roiTtests_table.tsv",
            "sub-01/ses-1/anat/sub-01_ses-1_from-T1w_to-phantom_mode-image_desc-affine_xfm.nii.gz",
        ] {
            let rel = Path::new(rel);
            assert_eq!(RunFile::identify(rel), None, "{}", rel.display());
            assert_eq!(AnatFile::identify(rel), None, "{}", rel.display());
        }
    }

    /// The files of `cbflow normalise` keep their names.
    #[test]
    fn normalise_names_are_the_published_ones() {
        let t = || "MNI152NLin6Asym".to_string();
        let cases = [
            (NormaliseFile::PreprocT1w, "T1w_desc-preproc_T1w.nii.gz"),
            (NormaliseFile::BrainMask, "T1w_desc-brain_mask.nii.gz"),
            (
                NormaliseFile::TemplateT1w { template: t() },
                "T1w_space-MNI152NLin6Asym_desc-preproc_T1w.nii.gz",
            ),
            (
                NormaliseFile::Resampled {
                    stem: "lesion".into(),
                    template: t(),
                },
                "lesion_space-MNI152NLin6Asym.nii.gz",
            ),
            (
                NormaliseFile::TemplateAffine { template: t() },
                "from-T1w_to-MNI152NLin6Asym_mode-image_desc-affine_xfm.txt",
            ),
            (
                NormaliseFile::TemplateWarp { template: t() },
                "from-T1w_to-MNI152NLin6Asym_mode-image_desc-warp_xfm.nii.gz",
            ),
            (NormaliseFile::Summary, "normalisation.json"),
        ];
        for (file, want) in cases {
            assert_eq!(
                file.path(Path::new("/n")).unwrap(),
                Path::new("/n").join(want)
            );
        }
    }
}
