//! Result records of receptor-map correlations, written to the outputs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::corr::{CorrelationMethod, null_p_value, parametric_p};
use crate::error::Result;
use crate::fdr::fdr_bh;

/// Null model behind a p-value. Every output names the one(s) used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NullModel {
    /// Student-t p-value assuming independent observations (ignores spatial autocorrelation;
    /// reported for comparison only).
    Parametric,
    /// Variogram-matching surrogates, full method (Burt et al. 2020, BrainSMASH `Base`).
    Variogram,
    /// Variogram-matching surrogates, sampled nearest-neighbour method (BrainSMASH `Sampled`).
    VariogramSampled,
    /// JuSpace's spatial permutation null maps (Dukart et al. 2021).
    Juspace,
    /// Subject-level sign flipping of the change maps (exact under the design).
    SignFlip,
}

impl NullModel {
    /// Short stable name, as written in output tables.
    pub fn as_str(self) -> &'static str {
        match self {
            NullModel::Parametric => "parametric",
            NullModel::Variogram => "variogram",
            NullModel::VariogramSampled => "variogram-sampled",
            NullModel::Juspace => "juspace",
            NullModel::SignFlip => "sign-flip",
        }
    }
}

/// Correlation of one group map with one receptor map, with p-values under each null used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CorrelationResult {
    /// Group map (contrast) identifier, e.g. `"ketamine-placebo_t"`.
    pub contrast: String,
    /// Receptor map identifier, e.g. `"MU_carfentanil_hc39_turtonen"`.
    pub map: String,
    /// Receptor target, e.g. `"MOR"`.
    pub target: String,
    /// Where the correlation was computed: parcellation name or `"voxel"`.
    pub space: String,
    /// Correlation coefficient.
    pub method: CorrelationMethod,
    /// Covariate partialled out (e.g. `"grey-matter"`), if any.
    pub adjusted_for: Option<String>,
    /// Observed correlation.
    pub r: f64,
    /// Number of parcels or voxels correlated.
    pub n: usize,
    /// p-value under each null model used.
    pub p: BTreeMap<NullModel, f64>,
    /// Benjamini–Hochberg adjusted p-values across receptor maps, per null model
    /// (filled by [`apply_fdr`]).
    pub p_fdr: BTreeMap<NullModel, f64>,
    /// Null distribution of the correlation under each resampling null (not for `Parametric`).
    pub null: BTreeMap<NullModel, Vec<f64>>,
}

impl CorrelationResult {
    /// A result with no p-values yet.
    pub fn new(
        contrast: impl Into<String>,
        map: impl Into<String>,
        target: impl Into<String>,
        space: impl Into<String>,
        method: CorrelationMethod,
        r: f64,
        n: usize,
    ) -> Self {
        Self {
            contrast: contrast.into(),
            map: map.into(),
            target: target.into(),
            space: space.into(),
            method,
            adjusted_for: None,
            r,
            n,
            p: BTreeMap::new(),
            p_fdr: BTreeMap::new(),
            null: BTreeMap::new(),
        }
    }

    /// Add a resampling null distribution; its two-sided p-value is
    /// `(1 + #{|null| ≥ |r|}) / (1 + N)`.
    pub fn add_null(&mut self, model: NullModel, null: Vec<f64>) {
        self.p.insert(model, null_p_value(self.r, &null));
        self.null.insert(model, null);
    }

    /// Add a p-value computed elsewhere (e.g. the exhaustive sign-flip p-value), with its null.
    pub fn add_p(&mut self, model: NullModel, p: f64, null: Vec<f64>) {
        self.p.insert(model, p);
        self.null.insert(model, null);
    }

    /// Add the naive parametric p-value (Student t, `n - 2 - covariates` df).
    pub fn add_parametric(&mut self) -> Result<()> {
        let k = usize::from(self.adjusted_for.is_some());
        self.p
            .insert(NullModel::Parametric, parametric_p(self.r, self.n, k)?);
        Ok(())
    }
}

/// Fill `p_fdr` of every result: Benjamini–Hochberg across the given results (the family =
/// the receptor maps tested for one contrast in one space), separately for each null model.
pub fn apply_fdr(results: &mut [CorrelationResult]) -> Result<()> {
    let models: std::collections::BTreeSet<NullModel> =
        results.iter().flat_map(|r| r.p.keys().copied()).collect();
    for m in models {
        let p: Vec<f64> = results
            .iter()
            .map(|r| r.p.get(&m).copied().unwrap_or(f64::NAN))
            .collect();
        let q = fdr_bh(&p)?;
        for (r, q) in results.iter_mut().zip(q) {
            if q.is_finite() {
                r.p_fdr.insert(m, q);
            }
        }
    }
    Ok(())
}
