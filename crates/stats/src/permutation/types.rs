//! What a permutation test is asked (tail, scheme, options) and what it returns.

use ndarray::Array1;

use crate::geometry::Connectivity;
use crate::tfce::TfceParams;

/// Which tail of the t statistic is tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Tail {
    /// `H₁: c'β > 0` (FSL `randomise` convention: one contrast per direction). Default.
    #[default]
    Positive,
    /// `H₁: c'β < 0`: the map `−t` is tested.
    Negative,
    /// Two-sided: voxel statistic `|t|`; TFCE and clusters are computed separately on the
    /// positive and the negative part of `t`, and the null takes the maximum over both.
    TwoSided,
}

/// How rows (observations) are shuffled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Scheme {
    /// Independent sign flips of each row (independent and symmetric errors, ISE), e.g. within-
    /// subject difference maps. Exhaustive when `2^n ≤ n_permutations`.
    SignFlip,
    /// Rows permuted within exchangeability blocks (exchangeable errors, EE). `blocks[i]` is the
    /// block label of row `i`. Always sampled (no exhaustive enumeration).
    WithinBlocks {
        /// Block label per row.
        blocks: Vec<usize>,
    },
    /// Permutation within blocks combined with sign flips (EE and ISE). Always sampled.
    WithinBlocksSignFlip {
        /// Block label per row.
        blocks: Vec<usize>,
    },
}

/// Options for [`permutation_test`](super::permutation_test).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PermutationOptions {
    /// Number of shuffles requested besides the identity (default 10 000). Sign-flipping becomes
    /// exhaustive (all `2^n` patterns, identity included) when `2^n ≤ n_permutations`.
    pub n_permutations: usize,
    /// Seed of the ChaCha8 generator that draws the shuffles.
    pub seed: u64,
    /// Tested tail.
    pub tail: Tail,
    /// TFCE parameters; `None` skips TFCE.
    pub tfce: Option<TfceParams>,
    /// Cluster-forming threshold on the tail statistic (t units; e.g. 3.1); `None` skips clusters.
    pub cluster_threshold: Option<f64>,
    /// Adjacency for clusters.
    pub cluster_connectivity: Connectivity,
}

impl Default for PermutationOptions {
    fn default() -> Self {
        Self {
            n_permutations: 10_000,
            seed: 0,
            tail: Tail::Positive,
            tfce: None,
            cluster_threshold: None,
            cluster_connectivity: Connectivity::Corners26,
        }
    }
}

/// TFCE output.
#[derive(Debug, Clone, PartialEq)]
pub struct TfceResult {
    /// TFCE map (V). One-sided tails: the enhanced tested direction (≥ 0). Two-sided: positive
    /// part enhanced minus negative part enhanced (signed).
    pub values: Array1<f64>,
    /// Height step used for every map.
    pub dh: f64,
    /// Uncorrected permutation p per voxel.
    pub p_uncorrected: Array1<f64>,
    /// FWE p per voxel from the max-TFCE null.
    pub p_fwe: Array1<f64>,
    /// Maximum TFCE per shuffle (identity first).
    pub max_null: Vec<f64>,
}

/// One supra-threshold cluster of the unpermuted map.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Cluster {
    /// Label in [`ClusterResult::labels`] (1 = largest).
    pub label: u32,
    /// +1 for a cluster of `t ≥ threshold`, −1 for `t ≤ −threshold`.
    pub sign: i8,
    /// Number of voxels.
    pub size: usize,
    /// Column index (masked voxel) of the peak.
    pub peak_voxel: usize,
    /// Grid coordinates of the peak.
    pub peak_ijk: [usize; 3],
    /// t at the peak (signed).
    pub peak_t: f64,
    /// Cluster-extent FWE p.
    pub p_fwe: f64,
}

/// Cluster-extent inference output.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterResult {
    /// Cluster-forming threshold (t units, applied to the tail statistic).
    pub threshold: f64,
    /// Cluster label per voxel (0 = none), 1 = largest cluster.
    pub labels: Vec<u32>,
    /// Clusters, largest first (ties: lower peak column first).
    pub clusters: Vec<Cluster>,
    /// Cluster FWE p per voxel (1 outside clusters).
    pub p_fwe: Array1<f64>,
    /// Largest cluster size per shuffle (identity first).
    pub max_size_null: Vec<usize>,
}

/// Result of [`permutation_test`](super::permutation_test). Maps have length V (masked voxels, column order).
#[derive(Debug, Clone, PartialEq)]
pub struct PermutationResult {
    /// t statistic (signed, whatever the tail).
    pub t: Array1<f64>,
    /// Contrast estimate `c'β̂` (data units).
    pub effect: Array1<f64>,
    /// Residual degrees of freedom.
    pub df: f64,
    /// Uncorrected permutation p of the voxel statistic.
    pub p_uncorrected: Array1<f64>,
    /// Voxel-level FWE p from the max-statistic null.
    pub p_fwe: Array1<f64>,
    /// Maximum voxel statistic per shuffle (identity first).
    pub max_t_null: Vec<f64>,
    /// TFCE results, if requested.
    pub tfce: Option<TfceResult>,
    /// Cluster results, if requested.
    pub clusters: Option<ClusterResult>,
    /// Total number of shuffles `N`, identity included (the p-value denominator).
    pub n_shuffles: usize,
    /// Whether all sign patterns were enumerated.
    pub exhaustive: bool,
    /// Tested tail.
    pub tail: Tail,
}
