//! The group steps' files: one descriptor per kind of file that the crossover group level, the
//! paired group level and the receptor step write at the root of OUTPUT_DIR.
//!
//! The names are BIDS-Derivatives names built by [`cbflow_bids::DerivativeName`] (entities in
//! BIDS order):
//! `[space-<s>_res-<r>_][contrast-<c>_][stat-<stat>_][desc-<desc>_]<suffix><extension>`, each
//! TSV and NIfTI file with a JSON sidecar of the same stem ([`GroupFile::sidecar_path`]).

use std::path::{Path, PathBuf};

use cbflow_bids::{DerivativeName, DerivativesWriter};

use crate::Result;

/// Where a contrast's voxelwise outputs live: the template space and resolution of the
/// participant level's template-space maps, and the contrast's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContrastSpace {
    /// `space` entity (the template's name, e.g. `MNI152NLin6Asym`).
    pub space: String,
    /// `res` entity (the template's resolution label, e.g. `2`).
    pub res: String,
    /// `contrast` entity (the contrast's declared name).
    pub contrast: String,
}

impl ContrastSpace {
    /// The contrast `contrast` in template space `space` at resolution `res`.
    pub fn new(space: &str, res: &str, contrast: &str) -> Self {
        Self {
            space: space.into(),
            res: res.into(),
            contrast: contrast.into(),
        }
    }
}

/// The inference behind a `stat-logp` map: its `desc` entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inference {
    /// `desc-uncorrected`: uncorrected permutation p of t.
    Uncorrected,
    /// `desc-voxelFWE`: voxel-level FWE p (max-T).
    VoxelFwe,
    /// `desc-tfceUncorrected`: uncorrected permutation p of TFCE.
    TfceUncorrected,
    /// `desc-tfceFWE`: TFCE FWE p (max-TFCE).
    TfceFwe,
    /// `desc-clusterFWE`: cluster-extent FWE p.
    ClusterFwe,
}

impl Inference {
    /// The `desc` entity of the map.
    pub const fn desc(self) -> &'static str {
        match self {
            Inference::Uncorrected => "uncorrected",
            Inference::VoxelFwe => "voxelFWE",
            Inference::TfceUncorrected => "tfceUncorrected",
            Inference::TfceFwe => "tfceFWE",
            Inference::ClusterFwe => "clusterFWE",
        }
    }
}

/// A voxelwise map of a contrast (`..._stat-<stat>[_desc-<inference>]_statmap.nii.gz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatMap {
    /// `stat-t`: the t statistic (NIfTI intent t test, with its degrees of freedom).
    T,
    /// `stat-effect`: the contrast's estimate, mean CBF difference (mL/100g/min).
    Effect,
    /// `stat-tfce`: TFCE of t.
    Tfce,
    /// `stat-logp_desc-<inference>`: −log10 p of one inference.
    Logp(Inference),
}

impl StatMap {
    /// The `stat` entity of the map.
    pub const fn stat(self) -> &'static str {
        match self {
            StatMap::T => "t",
            StatMap::Effect => "effect",
            StatMap::Tfce => "tfce",
            StatMap::Logp(_) => "logp",
        }
    }
}

/// One kind of file of the group steps, with the entities that tell one file of the kind from
/// another (the contrast; for voxelwise outputs also the template space).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupFile {
    /// `desc-contrasts_table.tsv`: the contrasts of the last crossover group run (name,
    /// description, tail, the four cells' weights); read back by `written_contrasts`.
    Contrasts,
    /// `desc-roiValues_table.tsv`: ROI mean CBF of every subject, session and run (long form).
    RoiValues,
    /// `desc-roiTtests_table.tsv`: the crossover level's ROI tests, every contrast in one table.
    RoiTtests,
    /// `desc-brainBehaviour_table.tsv`: the brain–behaviour correlations.
    BrainBehaviour,
    /// `desc-brainBehaviour_points.tsv`: the points of every correlation of
    /// [`GroupFile::BrainBehaviour`], as they were correlated (the report's scatter plots).
    BrainBehaviourPoints,
    /// `desc-lmm_table.tsv`: the crossover mixed model of ΔCBF.
    Lmm,
    /// `contrast-<c>_desc-roiTtests_table.tsv`: the paired level's ROI tests of its contrast.
    PairedRoiTtests {
        /// The paired level's contrast.
        contrast: String,
    },
    /// `space-<s>_res-<r>_contrast-<c>_stat-<stat>[_desc-<inference>]_statmap.nii.gz`.
    StatMap {
        /// Template space and contrast.
        at: ContrastSpace,
        /// Which map.
        map: StatMap,
    },
    /// `space-<s>_res-<r>_contrast-<c>_desc-clusters_table.tsv`: the contrast's clusters.
    Clusters {
        /// Template space and contrast.
        at: ContrastSpace,
    },
    /// `contrast-<c>_desc-receptors_table.tsv`: the receptor correlations of a contrast.
    Receptors {
        /// The contrast whose group map was correlated.
        contrast: String,
    },
    /// `contrast-<c>_desc-receptorNulls_table.tsv`: their null distributions (long form).
    ReceptorNulls {
        /// The contrast whose group map was correlated.
        contrast: String,
    },
    /// `contrast-<c>_desc-receptorDominance_table.tsv`: the dominance analysis.
    ReceptorDominance {
        /// The contrast whose group map was correlated.
        contrast: String,
    },
}

impl GroupFile {
    /// The paired level's ROI tests of `contrast`.
    pub fn paired_roi_ttests(contrast: &str) -> Self {
        GroupFile::PairedRoiTtests {
            contrast: contrast.into(),
        }
    }

    /// Map `map` of `contrast` in template space `space` at resolution `res`.
    pub fn stat_map(space: &str, res: &str, contrast: &str, map: StatMap) -> Self {
        GroupFile::StatMap {
            at: ContrastSpace::new(space, res, contrast),
            map,
        }
    }

    /// The cluster table of `contrast` in template space `space` at resolution `res`.
    pub fn clusters(space: &str, res: &str, contrast: &str) -> Self {
        GroupFile::Clusters {
            at: ContrastSpace::new(space, res, contrast),
        }
    }

    /// The receptor correlations of `contrast`.
    pub fn receptors(contrast: &str) -> Self {
        GroupFile::Receptors {
            contrast: contrast.into(),
        }
    }

    /// The receptor null distributions of `contrast`.
    pub fn receptor_nulls(contrast: &str) -> Self {
        GroupFile::ReceptorNulls {
            contrast: contrast.into(),
        }
    }

    /// The receptor dominance analysis of `contrast`.
    pub fn receptor_dominance(contrast: &str) -> Self {
        GroupFile::ReceptorDominance {
            contrast: contrast.into(),
        }
    }

    /// The name of the data file, as a builder (entities, suffix, extension).
    pub fn derivative_name(&self) -> DerivativeName {
        let table = |desc: &str| {
            DerivativeName::group()
                .set("desc", desc)
                .suffix("table")
                .extension(".tsv")
        };
        let of = |desc: &str, contrast: &str| table(desc).set("contrast", contrast);
        let at = |a: &ContrastSpace| {
            DerivativeName::group()
                .set("space", &a.space)
                .set("res", &a.res)
                .set("contrast", &a.contrast)
        };
        match self {
            GroupFile::Contrasts => table("contrasts"),
            GroupFile::RoiValues => table("roiValues"),
            GroupFile::RoiTtests => table("roiTtests"),
            GroupFile::BrainBehaviour => table("brainBehaviour"),
            GroupFile::BrainBehaviourPoints => table("brainBehaviour").suffix("points"),
            GroupFile::Lmm => table("lmm"),
            GroupFile::PairedRoiTtests { contrast } => of("roiTtests", contrast),
            GroupFile::StatMap { at: a, map } => {
                let n = at(a).set("stat", map.stat());
                let n = match map {
                    StatMap::Logp(i) => n.set("desc", i.desc()),
                    _ => n,
                };
                n.suffix("statmap").extension(".nii.gz")
            }
            GroupFile::Clusters { at: a } => at(a)
                .set("desc", "clusters")
                .suffix("table")
                .extension(".tsv"),
            GroupFile::Receptors { contrast } => of("receptors", contrast),
            GroupFile::ReceptorNulls { contrast } => of("receptorNulls", contrast),
            GroupFile::ReceptorDominance { contrast } => of("receptorDominance", contrast),
        }
    }

    /// The file name; fails when a label (the contrast, the space) is not alphanumeric.
    pub fn file_name(&self) -> Result<String> {
        Ok(self.derivative_name().file_name()?)
    }

    /// The path relative to the derivatives root (group files are at the root).
    pub fn rel_path(&self) -> Result<PathBuf> {
        Ok(self.derivative_name().rel_path()?)
    }

    /// The path of the file under `output_dir`.
    pub fn path(&self, output_dir: &Path) -> Result<PathBuf> {
        Ok(output_dir.join(self.rel_path()?))
    }

    /// The path of its JSON sidecar under `output_dir`.
    pub fn sidecar_path(&self, output_dir: &Path) -> Result<PathBuf> {
        Ok(output_dir.join(DerivativesWriter::sidecar_path(&self.rel_path()?)))
    }

    /// Whether `file_name` is a voxelwise map of a group step ([`GroupFile::StatMap`]).
    pub fn is_stat_map(file_name: &str) -> bool {
        file_name.ends_with("_statmap.nii.gz")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind's name is the one the levels have always written (a rename would orphan
    /// earlier derivatives and the readers of other versions).
    #[test]
    fn names_are_the_published_ones() {
        let at = |map| GroupFile::stat_map("phantom", "3", "ketaminePooled", map);
        let pre = "space-phantom_res-3_contrast-ketaminePooled";
        let cases = [
            (GroupFile::Contrasts, "desc-contrasts_table.tsv".to_string()),
            (GroupFile::RoiValues, "desc-roiValues_table.tsv".into()),
            (GroupFile::RoiTtests, "desc-roiTtests_table.tsv".into()),
            (
                GroupFile::BrainBehaviour,
                "desc-brainBehaviour_table.tsv".into(),
            ),
            (
                GroupFile::BrainBehaviourPoints,
                "desc-brainBehaviour_points.tsv".into(),
            ),
            (GroupFile::Lmm, "desc-lmm_table.tsv".into()),
            (
                GroupFile::paired_roi_ttests("drug"),
                "contrast-drug_desc-roiTtests_table.tsv".into(),
            ),
            (at(StatMap::T), format!("{pre}_stat-t_statmap.nii.gz")),
            (
                at(StatMap::Effect),
                format!("{pre}_stat-effect_statmap.nii.gz"),
            ),
            (at(StatMap::Tfce), format!("{pre}_stat-tfce_statmap.nii.gz")),
            (
                at(StatMap::Logp(Inference::Uncorrected)),
                format!("{pre}_stat-logp_desc-uncorrected_statmap.nii.gz"),
            ),
            (
                at(StatMap::Logp(Inference::VoxelFwe)),
                format!("{pre}_stat-logp_desc-voxelFWE_statmap.nii.gz"),
            ),
            (
                at(StatMap::Logp(Inference::TfceUncorrected)),
                format!("{pre}_stat-logp_desc-tfceUncorrected_statmap.nii.gz"),
            ),
            (
                at(StatMap::Logp(Inference::TfceFwe)),
                format!("{pre}_stat-logp_desc-tfceFWE_statmap.nii.gz"),
            ),
            (
                at(StatMap::Logp(Inference::ClusterFwe)),
                format!("{pre}_stat-logp_desc-clusterFWE_statmap.nii.gz"),
            ),
            (
                GroupFile::clusters("phantom", "3", "ketaminePooled"),
                format!("{pre}_desc-clusters_table.tsv"),
            ),
            (
                GroupFile::receptors("ketaminePooled"),
                "contrast-ketaminePooled_desc-receptors_table.tsv".into(),
            ),
            (
                GroupFile::receptor_nulls("ketaminePooled"),
                "contrast-ketaminePooled_desc-receptorNulls_table.tsv".into(),
            ),
            (
                GroupFile::receptor_dominance("ketaminePooled"),
                "contrast-ketaminePooled_desc-receptorDominance_table.tsv".into(),
            ),
        ];
        let out = Path::new("/derivatives/cbflow");
        for (file, want) in &cases {
            assert_eq!(&file.file_name().unwrap(), want, "{file:?}");
            assert_eq!(file.path(out).unwrap(), out.join(want), "{file:?}");
            let stem = want.split_once('.').unwrap().0;
            assert_eq!(
                file.sidecar_path(out).unwrap(),
                out.join(format!("{stem}.json")),
                "{file:?}"
            );
            assert_eq!(
                GroupFile::is_stat_map(want),
                matches!(file, GroupFile::StatMap { .. }),
                "{want}"
            );
        }
    }

    /// A contrast that is not a BIDS label is refused, naming the entity.
    #[test]
    fn a_bad_label_is_refused() {
        let e = GroupFile::receptors("ketamine-pooled")
            .file_name()
            .unwrap_err()
            .to_string();
        assert!(e.contains("contrast"), "{e}");
    }
}
