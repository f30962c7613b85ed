//! Parameters of `crossover-group`: the design, the contrasts, TFCE, correlations.

use std::collections::BTreeMap;

use cbflow_pipeline::defaults;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::base::{Level, Located, Pos, Resources};
use super::opspec::{OpSpec, Slot, SlotKind};
use super::params_asl::{OUT_CBF_TEMPLATE, OUT_STATMAPS, OUT_TABLES, in_range};
use super::params_behaviour::BrainBehaviourSpec;

/// How a crossover study maps onto BIDS (cbflow-pipeline's `StudyDesign`). The two
/// pre-treatment levels and the drug are the study's own words: the levels name the four cells
/// (`<control>-before`, `<control>-during`, `<active>-before`, `<active>-during`, the keys of
/// the contrasts' weights), the table rows and the reports; the drug names the default
/// contrasts (`<drug>Under<Control>`, `<drug>Under<Active>`, `<drug>Pooled`, `interaction`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct CrossoverDesign {
    /// `sessions.tsv` column naming each session's pre-treatment.
    pub pretreatment_column: String,
    /// Its value for the reference pre-treatment (`placebo` in the study; `placebo:` is read
    /// as this key too).
    #[serde(alias = "placebo")]
    pub control: String,
    /// Its value for the active pre-treatment (`naltrexone` in the study; `naltrexone:` is
    /// read as this key too).
    #[serde(alias = "naltrexone")]
    pub active: String,
    /// The drug given between the scan before and the scan during (`ketamine` in the study).
    pub drug: String,
    /// `sessions.tsv` column with the period (1 or 2) of each session.
    pub period_column: String,
    /// `run` entity of the scan before the drug (ketamine); unset: `1` (or `before`).
    pub run_before: Option<String>,
    /// `run` entity of the scan during the drug; unset: `2` (or `during`).
    pub run_during: Option<String>,
    /// The scan before the drug by any entities of its file name, e.g. `{acq: pre}` or
    /// `{acq: pcasl, run: "1"}`, in place of `run-before`.
    pub before: Option<BTreeMap<String, String>>,
    /// The scan during the drug by any entities, in place of `run-during`.
    pub during: Option<BTreeMap<String, String>>,
}

impl Default for CrossoverDesign {
    fn default() -> Self {
        let d = cbflow_pipeline::StudyDesign::default();
        Self {
            pretreatment_column: d.pretreatment_column,
            control: d.control,
            active: d.active,
            drug: d.drug,
            period_column: d.period_column,
            run_before: None,
            run_during: None,
            before: None,
            during: None,
        }
    }
}

/// The entities that select a scan by its file name, e.g. `{acq: pre}`.
pub(super) type EntityMap = BTreeMap<String, String>;

/// A design's `run-before`/`run-during` and `before`/`during` fields.
pub(super) type RunFields<'a> = ([&'a Option<String>; 2], [&'a Option<EntityMap>; 2]);

/// A design that selects a scan before and one during the drug by those four fields.
pub(super) trait RunPair {
    /// Its four fields.
    fn run_fields(&self) -> RunFields<'_>;

    /// The before and during run selectors.
    fn selectors(&self) -> (cbflow_pipeline::RunSelector, cbflow_pipeline::RunSelector) {
        let (runs, maps) = self.run_fields();
        run_selectors(runs, maps)
    }

    /// Why the run selection is unusable, if it is.
    fn selection_problem(&self) -> Option<String> {
        let (runs, maps) = self.run_fields();
        run_selection_problem(runs, maps)
    }
}

/// [`RunPair`] for a design struct with the fields `run_before`, `run_during`, `before` and
/// `during`.
macro_rules! run_pair {
    ($design:ty) => {
        impl RunPair for $design {
            fn run_fields(&self) -> RunFields<'_> {
                (
                    [&self.run_before, &self.run_during],
                    [&self.before, &self.during],
                )
            }
        }
    };
}
pub(super) use run_pair;

/// The before and during run selectors of a design: `before`/`during` entity maps, else
/// `run-before`/`run-during` (default runs 1 and 2).
/// `runs` are `run-before` and `run-during`, `maps` `before` and `during`.
pub(super) fn run_selectors(
    [run_before, run_during]: [&Option<String>; 2],
    [before, during]: [&Option<EntityMap>; 2],
) -> (cbflow_pipeline::RunSelector, cbflow_pipeline::RunSelector) {
    let pick = |run: &Option<String>, map: &Option<EntityMap>, default: &str| match map {
        Some(m) => {
            cbflow_pipeline::RunSelector(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        }
        None => cbflow_pipeline::RunSelector::run(run.as_deref().unwrap_or(default)),
    };
    (pick(run_before, before, "1"), pick(run_during, during, "2"))
}

/// Why a design's run selection is unusable, if it is (arguments as [`run_selectors`]).
pub(super) fn run_selection_problem(
    [run_before, run_during]: [&Option<String>; 2],
    [before, during]: [&Option<EntityMap>; 2],
) -> Option<String> {
    if run_before.is_some() && before.is_some() {
        return Some("design: give run-before or before, not both".into());
    }
    if run_during.is_some() && during.is_some() {
        return Some("design: give run-during or during, not both".into());
    }
    let (b, d) = run_selectors([run_before, run_during], [before, during]);
    for (name, sel) in [("before", &b), ("during", &d)] {
        if let Some(why) = sel.problem() {
            return Some(format!("design: {name}: {why}"));
        }
    }
    if b == d {
        return Some(format!(
            "design: before and during select the same run ({b})"
        ));
    }
    None
}

impl CrossoverDesign {
    /// The pipeline's design.
    pub fn study_design(&self) -> cbflow_pipeline::StudyDesign {
        let (before, during) = self.selectors();
        cbflow_pipeline::StudyDesign {
            pretreatment_column: self.pretreatment_column.clone(),
            control: self.control.clone(),
            active: self.active.clone(),
            drug: self.drug.clone(),
            period_column: self.period_column.clone(),
            before,
            during,
        }
    }

    /// Why the design cannot be used, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if let Some(why) = self.study_design().names_problem() {
            return Some(why);
        }
        self.selection_problem()
    }
}

run_pair!(CrossoverDesign);

/// Parameters of `crossover-group`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct CrossoverGroupParams {
    /// How sessions map to pre-treatments and runs to before/during the drug.
    pub design: CrossoverDesign,
    /// Sign-flip permutations per contrast (exhaustive when fewer sign patterns exist).
    pub permutations: usize,
    /// Seed of the permutations.
    pub seed: u64,
    /// Gaussian smoothing of each template-space CBF map before the voxelwise test (FWHM, mm;
    /// 0 = none).
    pub smoothing_fwhm_mm: f64,
    /// Cluster-forming threshold (t) of the cluster-extent FWE test.
    pub cluster_threshold: f64,
    /// TFCE settings.
    pub tfce: TfceSpec,
    /// 95 % CIs of the brain–behaviour correlations: `fisher-z` or `bootstrap` (percentile,
    /// over subjects, seeded from `seed`).
    pub correlation_ci: CorrelationCiSpec,
    /// Resamples of the bootstrap CIs.
    pub bootstrap_samples: usize,
    /// The contrasts tested, each a weighted sum of the four cells whose weights sum to 0 (a
    /// within-subject difference). Unset: the design's four, named from its drug and levels
    /// (for the study ketamineUnderPlacebo, ketamineUnderNaltrexone, ketaminePooled, one-sided,
    /// and interaction, two-sided).
    pub contrasts: Option<Vec<ContrastSpec>>,
    /// Regions (declared by the participant step's `rois`) for the ROI tests, the mixed model
    /// and the ΔCBF–subjective-effect correlations; grey_matter and global are always added.
    pub rois: Vec<String>,
    /// Region whose baseline CBF (adjusted for global CBF) is related to the day-1 change of
    /// the depression scores.
    pub baseline_roi: String,
    /// Covariates of the voxelwise GLM and the ROI tests, nuisance regressors of the
    /// within-subject differences (none by default): `global-cbf` (global CBF under each
    /// contrast's weights, e.g. its change during the drug, uncentred: the contrast is tested at
    /// no change of global CBF) or a column of participants.tsv (numbers, or two levels such as
    /// sex coded 0/1; centred: the contrast at the average value).
    pub covariates: Vec<String>,
    /// The phenotype scores correlated with CBF (by default the study's: `infusion.tsv`'s
    /// `psi_*` and `cadss`, `mood.tsv`'s `madrs` and `qids` from baseline to day 1).
    pub brain_behaviour: BrainBehaviourSpec,
}

impl Default for CrossoverGroupParams {
    fn default() -> Self {
        Self {
            design: CrossoverDesign::default(),
            permutations: defaults::PERMUTATIONS,
            seed: defaults::SEED,
            smoothing_fwhm_mm: defaults::SMOOTHING_FWHM_MM,
            cluster_threshold: defaults::CLUSTER_THRESHOLD,
            tfce: TfceSpec::default(),
            correlation_ci: CorrelationCiSpec::FisherZ,
            bootstrap_samples: defaults::BOOTSTRAP_SAMPLES,
            contrasts: None,
            rois: cbflow_pipeline::GroupOptions::default_rois(),
            baseline_roi: "ACC_sub".into(),
            covariates: Vec::new(),
            brain_behaviour: BrainBehaviourSpec::default(),
        }
    }
}

impl CrossoverGroupParams {
    /// The pipeline's contrasts: those declared, else the design's four
    /// ([`cbflow_pipeline::GroupContrast::defaults`]).
    pub fn group_contrasts(&self) -> Vec<cbflow_pipeline::GroupContrast> {
        let design = self.design.study_design();
        match &self.contrasts {
            Some(list) => list.iter().map(|c| c.to_group(&design)).collect(),
            None => cbflow_pipeline::GroupContrast::defaults(&design),
        }
    }

    /// How the group level computes the correlations' CIs.
    pub fn correlation_ci(&self) -> cbflow_pipeline::CorrelationCi {
        match self.correlation_ci {
            CorrelationCiSpec::FisherZ => cbflow_pipeline::CorrelationCi::FisherZ,
            CorrelationCiSpec::Bootstrap => cbflow_pipeline::CorrelationCi::Bootstrap {
                samples: self.bootstrap_samples,
            },
        }
    }

    /// The pipeline's covariates.
    pub fn group_covariates(&self) -> Vec<cbflow_pipeline::GroupCovariate> {
        covariates(&self.covariates)
    }

    /// The pipeline's options of a job of this step: its parameters, with the dataset, the
    /// directory it writes and the template of its inputs.
    pub fn group_options(
        &self,
        bids_dir: std::path::PathBuf,
        output_dir: std::path::PathBuf,
        template: cbflow_pipeline::Template,
    ) -> cbflow_pipeline::GroupOptions {
        cbflow_pipeline::GroupOptions {
            bids_dir,
            output_dir,
            template,
            design: self.design.study_design(),
            n_permutations: self.permutations,
            seed: self.seed,
            smoothing_fwhm_mm: self.smoothing_fwhm_mm,
            cluster_threshold: self.cluster_threshold,
            tfce: self.tfce.params(),
            correlation_ci: self.correlation_ci(),
            contrasts: self.group_contrasts(),
            rois: self.rois.clone(),
            baseline_roi: self.baseline_roi.clone(),
            covariates: self.group_covariates(),
            behaviour: self.brain_behaviour.scores(),
        }
    }
}

/// How the 95 % CI of a correlation is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CorrelationCiSpec {
    /// Fisher z transform (Bonett & Wright 2000 for Spearman).
    #[default]
    FisherZ,
    /// Percentile bootstrap over subjects.
    Bootstrap,
}

/// One contrast of a crossover group step.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ContrastSpec {
    /// Name: letters and digits only; the `contrast-<name>` entity of its outputs.
    pub name: String,
    /// What it measures, for sidecars and reports.
    #[serde(default)]
    pub description: String,
    /// Weight of each cell, keyed by the design's cells (`<control>-before`,
    /// `<control>-during`, `<active>-before`, `<active>-during`; for the study
    /// `placebo-before`, …); cells left out weigh 0; the weights must sum to 0.
    pub weights: BTreeMap<CellKey, f64>,
    /// Tail tested: `positive` (the default), `negative` or `two-sided`.
    #[serde(default)]
    pub tail: TailSpec,
}

/// Which tail of the t statistic is tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TailSpec {
    /// The contrast is greater than 0.
    #[default]
    Positive,
    /// The contrast is less than 0.
    Negative,
    /// Either direction.
    TwoSided,
}

/// A cell named in a contrast's weights, with where it was written (compared and ordered by
/// name alone).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct CellKey(pub Located<String>);

impl CellKey {
    /// A key not read from a file.
    pub fn new(name: &str) -> Self {
        Self(Located::new(name.to_string()))
    }
}

impl PartialEq for CellKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.value == other.0.value
    }
}
impl Eq for CellKey {}
impl PartialOrd for CellKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for CellKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.value.cmp(&other.0.value)
    }
}

impl ContrastSpec {
    /// Why the weights do not fit the design's cells, if they do not: a key that is not a
    /// cell, located where it was written.
    fn weights_problem(&self, design: &cbflow_pipeline::StudyDesign) -> Option<(Pos, String)> {
        let cells = design.cells();
        self.weights
            .keys()
            .filter(|k| !cells.contains(&k.0.value))
            .min_by_key(|k| (k.0.pos.line, k.0.pos.column))
            .map(|k| {
                (
                    k.0.pos,
                    format!(
                        "contrast {}: weights: `{}` is not a cell of the design (the cells are {})",
                        self.name,
                        k.0.value,
                        cells.join(", ")
                    ),
                )
            })
    }

    fn to_group(&self, design: &cbflow_pipeline::StudyDesign) -> cbflow_pipeline::GroupContrast {
        let w = design.cells().map(|cell| {
            self.weights
                .get(&CellKey::new(&cell))
                .copied()
                .unwrap_or(0.0)
        });
        cbflow_pipeline::GroupContrast {
            name: self.name.clone(),
            description: self.description.clone(),
            contrast: cbflow_pipeline::CrossoverContrast::Weights(w),
            tail: self.tail.tail(),
        }
    }
}

impl TailSpec {
    /// The pipeline's tail.
    pub fn tail(self) -> cbflow_pipeline::Tail {
        match self {
            TailSpec::Positive => cbflow_pipeline::Tail::Positive,
            TailSpec::Negative => cbflow_pipeline::Tail::Negative,
            TailSpec::TwoSided => cbflow_pipeline::Tail::TwoSided,
        }
    }
}

pub(super) const GROUP_SLOTS: &[Slot] = &[Slot {
    name: "cbf",
    required: true,
    kind: SlotKind::Output(&[OUT_CBF_TEMPLATE]),
    doc: "template-space CBF maps and ROI tables of the participant level",
}];

pub(super) fn group_resources() -> Resources {
    Resources {
        cpus: 4,
        mem_gb: 8.0,
        time_min: 480,
    }
}

pub(super) fn check_group(
    permutations: usize,
    smoothing: f64,
    threshold: f64,
    tfce: &TfceSpec,
) -> std::result::Result<(), String> {
    if permutations == 0 {
        return Err("permutations: must be at least 1".into());
    }
    in_range("smoothing-fwhm-mm", smoothing, 0.0, 50.0)?;
    in_range("cluster-threshold", threshold, 0.0, 100.0)?;
    tfce.check()
}

/// The [`OpSpec`] methods every permutation-tested group step shares (inside its `impl OpSpec`):
/// group level, group slots, statistical maps and tables, its own seed, and the checks of
/// [`check_group`] followed by the step's own `check_step`.
macro_rules! group_test_spec {
    () => {
        fn level(&self) -> Level {
            Level::Group
        }
        fn slots(&self) -> &'static [Slot] {
            GROUP_SLOTS
        }
        fn outputs(&self) -> Vec<&'static str> {
            vec![OUT_STATMAPS, OUT_TABLES]
        }
        fn default_resources(&self) -> Resources {
            group_resources()
        }
        fn seed(&self) -> Option<u64> {
            Some(self.seed)
        }
        fn check(&self) -> std::result::Result<(), String> {
            check_group(
                self.permutations,
                self.smoothing_fwhm_mm,
                self.cluster_threshold,
                &self.tfce,
            )?;
            self.check_step()
        }
    };
}
pub(super) use group_test_spec;

/// Threshold-free cluster enhancement (Smith & Nichols 2009) of the voxelwise tests.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct TfceSpec {
    /// Extent exponent E (0.5 for 3-D images).
    pub e: f64,
    /// Height exponent H (2).
    pub h: f64,
    /// Voxel adjacency: 6 (faces), 18 (faces and edges) or 26 (and corners, as FSL).
    pub connectivity: u8,
    /// Fixed step dh of the statistic; unset: the observed maximum of |t| divided by `steps`,
    /// then held fixed for every permutation.
    pub dh: Option<f64>,
    /// Number of steps up to the observed maximum when `dh` is unset.
    pub steps: usize,
}

impl Default for TfceSpec {
    fn default() -> Self {
        Self {
            e: 0.5,
            h: 2.0,
            connectivity: 26,
            dh: None,
            steps: 100,
        }
    }
}

impl TfceSpec {
    /// The statistics crate's parameters (after the step's checks).
    pub fn params(&self) -> cbflow_pipeline::TfceParams {
        cbflow_pipeline::TfceParams {
            e: self.e,
            h: self.h,
            step: match self.dh {
                Some(dh) => cbflow_pipeline::TfceStep::Fixed(dh),
                None => cbflow_pipeline::TfceStep::ObservedMaxOver(self.steps),
            },
            connectivity: match self.connectivity {
                6 => cbflow_pipeline::Connectivity::Faces6,
                18 => cbflow_pipeline::Connectivity::Edges18,
                _ => cbflow_pipeline::Connectivity::Corners26,
            },
        }
    }

    fn check(&self) -> std::result::Result<(), String> {
        in_range("tfce: e", self.e, 0.01, 10.0)?;
        in_range("tfce: h", self.h, 0.01, 10.0)?;
        if ![6, 18, 26].contains(&self.connectivity) {
            return Err(format!(
                "tfce: connectivity {} must be 6, 18 or 26",
                self.connectivity
            ));
        }
        if let Some(dh) = self.dh {
            in_range("tfce: dh", dh, 1e-6, 100.0)?;
        }
        if !(1..=100_000).contains(&self.steps) {
            return Err(format!("tfce: steps {} must be 1 to 100000", self.steps));
        }
        Ok(())
    }
}

impl OpSpec for CrossoverGroupParams {
    fn located_problem(&self) -> Option<(Pos, String)> {
        let design = self.design.study_design();
        self.contrasts
            .iter()
            .flatten()
            .find_map(|c| c.weights_problem(&design))
            .map(|(pos, why)| (pos, format!("contrasts: {why}")))
    }
    group_test_spec!();
}

impl CrossoverGroupParams {
    /// The checks of [`OpSpec::check`] beyond those of every group test.
    fn check_step(&self) -> std::result::Result<(), String> {
        if let Some(why) = self.design.problem() {
            return Err(why);
        }
        if self.contrasts.as_ref().is_some_and(Vec::is_empty) {
            return Err(
                "contrasts: declare at least one (or leave the key out for the design's four)"
                    .into(),
            );
        }
        if let Some(why) = cbflow_pipeline::GroupContrast::list_problem(&self.group_contrasts()) {
            return Err(format!("contrasts: {why}"));
        }
        if let Some(why) =
            cbflow_pipeline::GroupOptions::rois_problem(&self.rois, &self.baseline_roi, None)
        {
            return Err(why);
        }
        check_covariates(&self.covariates)?;
        if let Some(why) = self.brain_behaviour.problem() {
            return Err(why);
        }
        if !(100..=1_000_000).contains(&self.bootstrap_samples) {
            return Err(format!(
                "bootstrap-samples: {} must be 100 to 1000000",
                self.bootstrap_samples
            ));
        }
        Ok(())
    }
}

pub(super) fn covariates(names: &[String]) -> Vec<cbflow_pipeline::GroupCovariate> {
    names
        .iter()
        .map(|c| cbflow_pipeline::GroupCovariate::parse(c))
        .collect()
}

pub(super) fn check_covariates(names: &[String]) -> std::result::Result<(), String> {
    match cbflow_pipeline::GroupCovariate::list_problem(&covariates(names)) {
        Some(why) => Err(format!("covariates: {why}")),
        None => Ok(()),
    }
}
