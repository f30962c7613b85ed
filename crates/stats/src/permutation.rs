//! Permutation inference for voxelwise GLMs: sign-flipping, permutation within exchangeability
//! blocks, max-statistic FWE, TFCE and cluster-extent FWE.
//!
//! # Counting convention
//! The unpermuted (identity) shuffle is always shuffle 0 and counts in every null distribution.
//! With `N` shuffles in total (identity included):
//! `p_uncorrected(v) = #{j : s_j(v) ≥ s_0(v)} / N`, `p_fwe(v) = #{j : max_u s_j(u) ≥ s_0(v)} / N`.
//! When shuffles are sampled, `N = 1 + n_permutations` and this is `(1 + #{null ≥ obs}) / (1 + n)`;
//! when all `2^n` sign patterns are enumerated (exhaustive), `N = 2^n` and `p` is the exact
//! permutation proportion. Comparisons allow a relative tolerance of 1e-10 for floating-point ties.
//!
//! # Speed
//! For the shuffle `P` (signs and/or row permutation), the statistic needs only `ã'W` and `Q̃'W`
//! where `ã = P'a`, `Q̃ = P'Q` (see [`crate::glm`]): `‖W‖²` is shuffle-invariant. A block of `B`
//! shuffles is therefore one matrix product `(B·r × n)·(n × V)`, tiled over voxels; blocks run in
//! parallel with rayon and are reduced in shuffle order (integer counts, per-shuffle maxima), so
//! results are bit-identical at any thread count.
//!
//! References: Winkler et al. (2014) NeuroImage 92, 381–397 (schemes, Freedman–Lane, counting);
//! Nichols & Holmes (2002) Hum. Brain Mapp. 15, 1–25 (max statistic); Smith & Nichols (2009)
//! NeuroImage 44, 83–98 (TFCE).

use ndarray::{Array1, Array2, ArrayView2, Axis, Slice};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::error::{Result, StatsError, check_finite, check_len};
use crate::geometry::{Connectivity, MaskGeometry, Neighbours, label_components, max_cluster_size};
use crate::glm::{Factorised, GlmDesign, residualise_nuisance};
use crate::tfce::{TfceParams, TfceWorkspace, tfce_positive_into};

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

/// Options for [`permutation_test`].
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

/// Result of [`permutation_test`]. Maps have length V (masked voxels, column order).
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

/// One shuffle of the rows: `W*_i = signs[i] · W_{perm[i]}` (`perm = None`: identity order).
#[derive(Debug, Clone, PartialEq)]
pub struct Shuffle {
    /// Row permutation, if any.
    pub perm: Option<Vec<u32>>,
    /// Sign (±1) per row.
    pub signs: Vec<f64>,
}

/// The shuffles [`permutation_test`] uses for `n` rows: identity first, then either all `2^n`
/// sign patterns (sign-flipping with `2^n ≤ n_perm`; returns `true`) or `n_perm` draws from a
/// ChaCha8 generator seeded with `seed`. Exposed so results can be reproduced independently.
pub fn draw_shuffles(
    n: usize,
    scheme: &Scheme,
    n_perm: usize,
    seed: u64,
) -> Result<(Vec<Shuffle>, bool)> {
    let identity = Shuffle {
        perm: None,
        signs: vec![1.0; n],
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let random_signs = |rng: &mut ChaCha8Rng| -> Vec<f64> {
        let mut out = Vec::with_capacity(n);
        let mut word = 0u64;
        for i in 0..n {
            if i % 64 == 0 {
                word = rng.random::<u64>();
            }
            out.push(if (word >> (i % 64)) & 1 == 1 {
                -1.0
            } else {
                1.0
            });
        }
        out
    };
    let groups = |blocks: &[usize]| -> Result<Vec<Vec<u32>>> {
        check_len("exchangeability blocks", n, blocks.len())?;
        let mut labels: Vec<usize> = blocks.to_vec();
        labels.sort_unstable();
        labels.dedup();
        let mut g = vec![Vec::new(); labels.len()];
        for (i, b) in blocks.iter().enumerate() {
            let k = labels.binary_search(b).expect("label present");
            g[k].push(i as u32);
        }
        Ok(g)
    };
    let random_perm = |rng: &mut ChaCha8Rng, g: &[Vec<u32>]| -> Vec<u32> {
        let mut perm: Vec<u32> = (0..n as u32).collect();
        for members in g {
            // Fisher–Yates on the block's members
            let mut vals = members.clone();
            for i in (1..vals.len()).rev() {
                let j = rng.random_range(0..=i);
                vals.swap(i, j);
            }
            for (slot, v) in members.iter().zip(vals) {
                perm[*slot as usize] = v;
            }
        }
        perm
    };
    match scheme {
        Scheme::SignFlip => {
            if n < 63 && (1u64 << n) <= n_perm as u64 {
                let total = 1usize << n;
                let out = (0..total)
                    .map(|j| Shuffle {
                        perm: None,
                        signs: (0..n)
                            .map(|i| if (j >> i) & 1 == 1 { -1.0 } else { 1.0 })
                            .collect(),
                    })
                    .collect();
                Ok((out, true))
            } else {
                let mut out = vec![identity];
                for _ in 0..n_perm {
                    out.push(Shuffle {
                        perm: None,
                        signs: random_signs(&mut rng),
                    });
                }
                Ok((out, false))
            }
        }
        Scheme::WithinBlocks { blocks } => {
            let g = groups(blocks)?;
            let mut out = vec![identity];
            for _ in 0..n_perm {
                out.push(Shuffle {
                    perm: Some(random_perm(&mut rng, &g)),
                    signs: vec![1.0; n],
                });
            }
            Ok((out, false))
        }
        Scheme::WithinBlocksSignFlip { blocks } => {
            let g = groups(blocks)?;
            let mut out = vec![identity];
            for _ in 0..n_perm {
                let perm = random_perm(&mut rng, &g);
                out.push(Shuffle {
                    perm: Some(perm),
                    signs: random_signs(&mut rng),
                });
            }
            Ok((out, false))
        }
    }
}

/// Precomputed model for the engine.
struct Engine {
    /// Residualised data (n, V).
    w: Array2<f64>,
    /// Rows: `a` then (if rank > 1) the orthonormal basis of span(X): (r, n).
    rows: Array2<f64>,
    rank1: bool,
    a2: f64,
    ss: Vec<f64>,
    df: f64,
}

const VOXEL_TILE: usize = 2048;

impl Engine {
    fn new(data: ArrayView2<'_, f32>, design: &GlmDesign) -> Result<Self> {
        let f = Factorised::new(design)?;
        let n = design.n();
        let w = residualise_nuisance(data, &f);
        let rank1 = f.rank == 1;
        let r = if rank1 { 1 } else { 1 + f.rank };
        let mut rows = Array2::zeros((r, n));
        for i in 0..n {
            rows[[0, i]] = f.a[i];
            if !rank1 {
                for j in 0..f.rank {
                    rows[[1 + j, i]] = f.q[(i, j)];
                }
            }
        }
        let a2 = f.a.dot(&f.a);
        let ss = (0..w.ncols())
            .map(|v| w.column(v).dot(&w.column(v)))
            .collect();
        Ok(Self {
            w,
            rows,
            rank1,
            a2,
            ss,
            df: (n - f.rank) as f64,
        })
    }

    fn r(&self) -> usize {
        self.rows.nrows()
    }

    /// Shuffled row block `(B·r, n)`.
    fn shuffled_rows(&self, shuffles: &[Shuffle]) -> Array2<f64> {
        let (r, n) = self.rows.dim();
        let mut m = Array2::zeros((shuffles.len() * r, n));
        for (b, sh) in shuffles.iter().enumerate() {
            for j in 0..r {
                for i in 0..n {
                    let dst = match &sh.perm {
                        Some(p) => p[i] as usize,
                        None => i,
                    };
                    m[[b * r + j, dst]] = self.rows[[j, i]] * sh.signs[i];
                }
            }
        }
        m
    }

    /// t maps of a block of shuffles, calling `visit(b, v0, t_tile_row)` per shuffle and tile.
    fn for_each_tile(&self, shuffles: &[Shuffle], mut visit: impl FnMut(usize, usize, &[f64])) {
        let m = self.shuffled_rows(shuffles);
        let r = self.r();
        let nv = self.w.ncols();
        let mut tbuf = vec![0.0; VOXEL_TILE];
        let sqrt_df = self.df.sqrt();
        let a2 = self.a2;
        let mut v0 = 0;
        while v0 < nv {
            let v1 = (v0 + VOXEL_TILE).min(nv);
            let width = v1 - v0;
            let g = m.dot(&self.w.slice_axis(Axis(1), Slice::from(v0..v1)));
            let g = g.as_standard_layout();
            let gs = g.as_slice().expect("standard layout");
            let ss = &self.ss[v0..v1];
            for b in 0..shuffles.len() {
                let tb = &mut tbuf[..width];
                let num = &gs[b * r * width..(b * r + 1) * width];
                if self.rank1 {
                    // t = num·sqrt(df) / sqrt(ss·a2 − num²)
                    for k in 0..width {
                        let nu = num[k];
                        let tot = ss[k] * a2;
                        let den2 = tot - nu * nu;
                        tb[k] = if den2 > 1e-12 * tot {
                            nu * sqrt_df / den2.sqrt()
                        } else {
                            0.0
                        };
                    }
                } else {
                    tb.fill(0.0);
                    for j in 1..r {
                        let row = &gs[(b * r + j) * width..(b * r + j + 1) * width];
                        for k in 0..width {
                            tb[k] += row[k] * row[k];
                        }
                    }
                    for k in 0..width {
                        let nu = num[k];
                        let tot = ss[k] * a2;
                        let den2 = (ss[k] - tb[k]) * a2;
                        tb[k] = if den2 > 1e-12 * tot {
                            nu * sqrt_df / den2.sqrt()
                        } else {
                            0.0
                        };
                    }
                }
                visit(b, v0, tb);
            }
            v0 = v1;
        }
    }
}

/// Count exceedances and track the maximum of the tail statistic over one tile.
#[inline]
fn scan_tile(tile: &[f64], floor: &[f64], counts: &mut [u32], tail: Tail) -> f64 {
    let mut mx = f64::NEG_INFINITY;
    match tail {
        Tail::Positive => {
            for k in 0..tile.len() {
                let st = tile[k];
                counts[k] += (st >= floor[k]) as u32;
                mx = if st > mx { st } else { mx };
            }
        }
        Tail::Negative => {
            for k in 0..tile.len() {
                let st = -tile[k];
                counts[k] += (st >= floor[k]) as u32;
                mx = if st > mx { st } else { mx };
            }
        }
        Tail::TwoSided => {
            for k in 0..tile.len() {
                let st = tile[k].abs();
                counts[k] += (st >= floor[k]) as u32;
                mx = if st > mx { st } else { mx };
            }
        }
    }
    mx
}

#[inline]
fn tail_stat(t: f64, tail: Tail) -> f64 {
    match tail {
        Tail::Positive => t,
        Tail::Negative => -t,
        Tail::TwoSided => t.abs(),
    }
}

#[inline]
fn tie_floor(obs: f64) -> f64 {
    obs - 1e-10 * obs.abs()
}

/// Spatial statistics of one t map: TFCE map (signed for two-sided) and max cluster size.
struct Spatial<'a> {
    tail: Tail,
    tfce: Option<(TfceParams, f64, &'a Neighbours)>,
    cluster: Option<(f64, &'a Neighbours)>,
}

struct Scratch {
    ws: TfceWorkspace,
    pos: Vec<f64>,
    neg: Vec<f64>,
    enh: Vec<f64>,
    tmp: Vec<f64>,
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl Scratch {
    fn new(nv: usize) -> Self {
        Self {
            ws: TfceWorkspace::new(nv),
            pos: vec![0.0; nv],
            neg: vec![0.0; nv],
            enh: vec![0.0; nv],
            tmp: vec![0.0; nv],
            parent: vec![0; nv],
            size: vec![0; nv],
        }
    }
}

impl Spatial<'_> {
    /// Fills `sc.enh` with the TFCE map of `t` (tail convention) and returns the max cluster size.
    fn run(&self, t: &[f64], sc: &mut Scratch) -> usize {
        let nv = t.len();
        if let Some((p, dh, nb)) = self.tfce {
            match self.tail {
                Tail::Positive => tfce_positive_into(t, nb, p.e, p.h, dh, &mut sc.ws, &mut sc.enh),
                Tail::Negative => {
                    for v in 0..nv {
                        sc.tmp[v] = -t[v];
                    }
                    tfce_positive_into(&sc.tmp, nb, p.e, p.h, dh, &mut sc.ws, &mut sc.enh)
                }
                Tail::TwoSided => {
                    tfce_positive_into(t, nb, p.e, p.h, dh, &mut sc.ws, &mut sc.pos);
                    for v in 0..nv {
                        sc.tmp[v] = -t[v];
                    }
                    tfce_positive_into(&sc.tmp, nb, p.e, p.h, dh, &mut sc.ws, &mut sc.neg);
                    for v in 0..nv {
                        sc.enh[v] = sc.pos[v] - sc.neg[v];
                    }
                }
            }
        }
        if let Some((thr, nb)) = self.cluster {
            match self.tail {
                Tail::Positive => max_cluster_size(t, thr, nb, &mut sc.parent, &mut sc.size),
                Tail::Negative | Tail::TwoSided => {
                    for v in 0..nv {
                        sc.tmp[v] = -t[v];
                    }
                    let neg = max_cluster_size(&sc.tmp, thr, nb, &mut sc.parent, &mut sc.size);
                    if self.tail == Tail::TwoSided {
                        neg.max(max_cluster_size(t, thr, nb, &mut sc.parent, &mut sc.size))
                    } else {
                        neg
                    }
                }
            }
        } else {
            0
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct PerShuffle {
    index: usize,
    max_t: f64,
    max_tfce: f64,
    max_cluster: usize,
}

/// Voxelwise permutation test of one contrast.
///
/// * `data`: (n, V) — rows are observations in design order, columns masked voxels (f32, any
///   units; converted to f64 internally).
/// * `design`: design matrix and contrast; for a one-sample test of difference maps use
///   [`GlmDesign::one_sample`] and [`Scheme::SignFlip`] (or [`one_sample_sign_flip`]).
/// * `geometry`: required when TFCE or clusters are requested (its voxel count must be V).
///
/// Nuisance regressors (the part of `X` not tested by the contrast) are handled by
/// Freedman–Lane (Winkler et al. 2014). See the module docs for the p-value convention.
pub fn permutation_test(
    data: ArrayView2<'_, f32>,
    design: &GlmDesign,
    scheme: &Scheme,
    geometry: Option<&MaskGeometry>,
    options: &PermutationOptions,
) -> Result<PermutationResult> {
    let spatial_needed = options.tfce.is_some() || options.cluster_threshold.is_some();
    let Some(g) = geometry.filter(|_| spatial_needed) else {
        return permutation_test_ordered(data, design, scheme, geometry, options);
    };
    check_len("geometry voxels", data.ncols(), g.n_voxels())?;
    // Work internally in a cache-friendly order (8×8×8 bricks) so that the union–find passes of
    // TFCE and clustering touch few cache lines per voxel; map results back afterwards.
    let mut order: Vec<usize> = (0..g.n_voxels()).collect();
    order.sort_by_key(|&v| {
        let [i, j, k] = g.ijk()[v];
        (k / 8, j / 8, i / 8, k, j, i)
    });
    let g2 = MaskGeometry::from_ijk(g.dims(), order.iter().map(|&v| g.ijk()[v]).collect())?;
    let data2 = data.select(Axis(1), &order);
    let mut res = permutation_test_ordered(data2.view(), design, scheme, Some(&g2), options)?;
    let back = |a: &Array1<f64>| {
        let mut out = Array1::zeros(a.len());
        for (p, &v) in order.iter().enumerate() {
            out[v] = a[p];
        }
        out
    };
    res.t = back(&res.t);
    res.effect = back(&res.effect);
    res.p_uncorrected = back(&res.p_uncorrected);
    res.p_fwe = back(&res.p_fwe);
    if let Some(tf) = res.tfce.as_mut() {
        tf.values = back(&tf.values);
        tf.p_uncorrected = back(&tf.p_uncorrected);
        tf.p_fwe = back(&tf.p_fwe);
    }
    if let Some(cl) = res.clusters.as_mut() {
        cl.p_fwe = back(&cl.p_fwe);
        for c in cl.clusters.iter_mut() {
            c.peak_voxel = order[c.peak_voxel];
        }
        // restore the documented order (size desc, then original peak column) and relabel
        cl.clusters
            .sort_by(|a, b| b.size.cmp(&a.size).then(a.peak_voxel.cmp(&b.peak_voxel)));
        let mut relabel = vec![0u32; cl.clusters.len() + 1];
        for (new, c) in cl.clusters.iter_mut().enumerate() {
            relabel[c.label as usize] = new as u32 + 1;
            c.label = new as u32 + 1;
        }
        let mut labels = vec![0u32; cl.labels.len()];
        for (p, &v) in order.iter().enumerate() {
            labels[v] = relabel[cl.labels[p] as usize];
        }
        cl.labels = labels;
    }
    Ok(res)
}

fn permutation_test_ordered(
    data: ArrayView2<'_, f32>,
    design: &GlmDesign,
    scheme: &Scheme,
    geometry: Option<&MaskGeometry>,
    options: &PermutationOptions,
) -> Result<PermutationResult> {
    let (n, nv) = data.dim();
    check_len("data rows (observations)", design.n(), n)?;
    if nv == 0 {
        return Err(StatsError::TooFewObservations {
            what: "voxels",
            needed: 1,
            got: 0,
        });
    }
    check_finite("data", data.iter().map(|&v| v as f64))?;
    if let Some(p) = &options.tfce {
        p.validate()?;
    }
    if let Some(thr) = options.cluster_threshold
        && !(thr.is_finite() && thr > 0.0)
    {
        return Err(StatsError::InvalidParameter {
            name: "cluster_threshold",
            value: thr.to_string(),
            reason: "must be finite and > 0",
        });
    }
    let spatial_needed = options.tfce.is_some() || options.cluster_threshold.is_some();
    if spatial_needed {
        match geometry {
            None => {
                return Err(StatsError::InvalidParameter {
                    name: "geometry",
                    value: "none".into(),
                    reason: "a mask geometry is required for tfce or clusters",
                });
            }
            Some(g) => check_len("geometry voxels", nv, g.n_voxels())?,
        }
    }
    let engine = Engine::new(data, design)?;
    let (shuffles, exhaustive) = draw_shuffles(n, scheme, options.n_permutations, options.seed)?;
    let tail = options.tail;

    // observed (identity) through the same kernel
    let mut t_obs = vec![0.0; nv];
    let mut effect = vec![0.0; nv];
    engine.for_each_tile(&shuffles[..1], |_, v0, tile| {
        t_obs[v0..v0 + tile.len()].copy_from_slice(tile)
    });
    {
        let mut v0 = 0;
        while v0 < nv {
            let v1 = (v0 + VOXEL_TILE).min(nv);
            let e = engine
                .rows
                .row(0)
                .dot(&engine.w.slice_axis(Axis(1), Slice::from(v0..v1)));
            effect[v0..v1].copy_from_slice(e.as_slice().expect("contiguous"));
            v0 = v1;
        }
    }
    let stat_obs: Vec<f64> = t_obs.iter().map(|&t| tail_stat(t, tail)).collect();
    let floor_obs: Vec<f64> = stat_obs.iter().map(|&s| tie_floor(s)).collect();

    let tfce_nb = options
        .tfce
        .map(|p| geometry.expect("checked").neighbours(p.connectivity));
    let cl_nb = options.cluster_threshold.map(|_| {
        geometry
            .expect("checked")
            .neighbours(options.cluster_connectivity)
    });
    let dh = options.tfce.map(|p| {
        let m = match tail {
            Tail::Positive => t_obs.iter().cloned().fold(0.0, f64::max),
            Tail::Negative => t_obs.iter().map(|t| -t).fold(0.0, f64::max),
            Tail::TwoSided => t_obs.iter().map(|t| t.abs()).fold(0.0, f64::max),
        };
        p.resolve_dh(m)
    });
    let spatial = Spatial {
        tail,
        tfce: options.tfce.map(|p| {
            (
                p,
                dh.expect("set with tfce"),
                tfce_nb.as_ref().expect("set"),
            )
        }),
        cluster: options
            .cluster_threshold
            .map(|thr| (thr, cl_nb.as_ref().expect("set"))),
    };
    let mut tfce_obs = vec![0.0; nv];
    let mut obs_labels = None;
    if spatial_needed {
        let mut sc = Scratch::new(nv);
        spatial.run(&t_obs, &mut sc);
        if options.tfce.is_some() {
            tfce_obs.copy_from_slice(&sc.enh);
        }
    }
    if let Some(thr) = options.cluster_threshold {
        obs_labels = Some(observed_clusters(
            &t_obs,
            thr,
            tail,
            cl_nb.as_ref().expect("set"),
        )?);
    }
    let tfce_floor: Vec<f64> = tfce_obs.iter().map(|&x| tie_floor(x.abs())).collect();

    // permutation loop
    let block = if spatial_needed { 8 } else { 64 };
    let blocks: Vec<&[Shuffle]> = shuffles.chunks(block).collect();
    struct Acc {
        counts: Vec<u32>,
        tfce_counts: Vec<u32>,
        per: Vec<PerShuffle>,
    }
    let track_tfce = options.tfce.is_some();
    let acc = blocks
        .par_iter()
        .enumerate()
        .fold(
            || {
                (
                    Acc {
                        counts: vec![0; nv],
                        tfce_counts: vec![0; if track_tfce { nv } else { 0 }],
                        per: Vec::new(),
                    },
                    None::<(Scratch, Vec<f64>)>,
                )
            },
            |(mut acc, mut scratch), (bi, shs)| {
                let base = bi * block;
                let mut maxes = vec![f64::NEG_INFINITY; shs.len()];
                if spatial_needed {
                    let (sc, full) =
                        scratch.get_or_insert_with(|| (Scratch::new(nv), vec![0.0; nv * block]));
                    engine.for_each_tile(shs, |b, v0, tile| {
                        let v1 = v0 + tile.len();
                        let mx = scan_tile(tile, &floor_obs[v0..v1], &mut acc.counts[v0..v1], tail);
                        maxes[b] = maxes[b].max(mx);
                        full[b * nv + v0..b * nv + v0 + tile.len()].copy_from_slice(tile);
                    });
                    for b in 0..shs.len() {
                        let maxc = spatial.run(&full[b * nv..(b + 1) * nv], sc);
                        let mut mt = 0.0f64;
                        if track_tfce {
                            for v in 0..nv {
                                let x = sc.enh[v].abs();
                                if x >= tfce_floor[v] {
                                    acc.tfce_counts[v] += 1;
                                }
                                mt = mt.max(x);
                            }
                        }
                        acc.per.push(PerShuffle {
                            index: base + b,
                            max_t: maxes[b],
                            max_tfce: mt,
                            max_cluster: maxc,
                        });
                    }
                } else {
                    engine.for_each_tile(shs, |b, v0, tile| {
                        let v1 = v0 + tile.len();
                        let mx = scan_tile(tile, &floor_obs[v0..v1], &mut acc.counts[v0..v1], tail);
                        maxes[b] = maxes[b].max(mx);
                    });
                    for b in 0..shs.len() {
                        acc.per.push(PerShuffle {
                            index: base + b,
                            max_t: maxes[b],
                            max_tfce: 0.0,
                            max_cluster: 0,
                        });
                    }
                }
                (acc, scratch)
            },
        )
        .map(|(acc, _)| acc)
        .reduce(
            || Acc {
                counts: vec![0; nv],
                tfce_counts: vec![0; if track_tfce { nv } else { 0 }],
                per: Vec::new(),
            },
            |mut a, b| {
                for (x, y) in a.counts.iter_mut().zip(&b.counts) {
                    *x += y;
                }
                for (x, y) in a.tfce_counts.iter_mut().zip(&b.tfce_counts) {
                    *x += y;
                }
                a.per.extend(b.per);
                a
            },
        );
    let mut per = acc.per;
    per.sort_by_key(|p| p.index);
    let total = shuffles.len();
    let nf = total as f64;
    let max_t_null: Vec<f64> = per.iter().map(|p| p.max_t).collect();
    let p_unc = Array1::from_iter(acc.counts.iter().map(|&c| c as f64 / nf));
    let p_fwe = fwe_p(&max_t_null, &stat_obs);

    let tfce = options.tfce.map(|_| {
        let max_null: Vec<f64> = per.iter().map(|p| p.max_tfce).collect();
        let abs_obs: Vec<f64> = tfce_obs.iter().map(|x| x.abs()).collect();
        TfceResult {
            values: Array1::from(tfce_obs.clone()),
            dh: dh.expect("set"),
            p_uncorrected: Array1::from_iter(acc.tfce_counts.iter().map(|&c| c as f64 / nf)),
            p_fwe: fwe_p(&max_null, &abs_obs),
            max_null,
        }
    });
    let clusters = match (options.cluster_threshold, obs_labels) {
        (Some(thr), Some((labels, mut list))) => {
            let max_size_null: Vec<usize> = per.iter().map(|p| p.max_cluster).collect();
            let g = geometry.expect("checked");
            let mut pmap = Array1::from_elem(nv, 1.0);
            for c in list.iter_mut() {
                c.p_fwe = max_size_null.iter().filter(|&&m| m >= c.size).count() as f64 / nf;
                c.peak_ijk = g.ijk()[c.peak_voxel];
            }
            for v in 0..nv {
                if labels[v] > 0 {
                    pmap[v] = list[labels[v] as usize - 1].p_fwe;
                }
            }
            Some(ClusterResult {
                threshold: thr,
                labels,
                clusters: list,
                p_fwe: pmap,
                max_size_null,
            })
        }
        _ => None,
    };
    Ok(PermutationResult {
        t: Array1::from(t_obs),
        effect: Array1::from(effect),
        df: engine.df,
        p_uncorrected: p_unc,
        p_fwe,
        max_t_null,
        tfce,
        clusters,
        n_shuffles: total,
        exhaustive,
        tail,
    })
}

fn fwe_p(max_null: &[f64], obs: &[f64]) -> Array1<f64> {
    let mut sorted = max_null.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let nf = sorted.len() as f64;
    Array1::from_iter(obs.iter().map(|&o| {
        let f = tie_floor(o);
        let below = sorted.partition_point(|&m| m < f);
        (sorted.len() - below) as f64 / nf
    }))
}

/// Clusters of the observed map: labels (1 = largest) and the list (p filled in later).
fn observed_clusters(
    t: &[f64],
    thr: f64,
    tail: Tail,
    nb: &Neighbours,
) -> Result<(Vec<u32>, Vec<Cluster>)> {
    let nv = t.len();
    let mut found: Vec<(i8, Vec<u32>, usize)> = Vec::new(); // sign, labels, n
    let signs: &[i8] = match tail {
        Tail::Positive => &[1],
        Tail::Negative => &[-1],
        Tail::TwoSided => &[1, -1],
    };
    for &sg in signs {
        let active: Vec<bool> = t.iter().map(|&x| sg as f64 * x >= thr).collect();
        let (labels, sizes) = label_components(nb, &active)?;
        found.push((sg, labels, sizes.len()));
    }
    let mut list = Vec::new();
    for (sg, labels, ncl) in &found {
        let mut peaks: Vec<(usize, f64, usize)> = vec![(usize::MAX, f64::NEG_INFINITY, 0); *ncl];
        for v in 0..nv {
            let l = labels[v];
            if l == 0 {
                continue;
            }
            let e = &mut peaks[l as usize - 1];
            e.2 += 1;
            let val = *sg as f64 * t[v];
            if val > e.1 {
                e.0 = v;
                e.1 = val;
            }
        }
        for (i, (pv, _, size)) in peaks.into_iter().enumerate() {
            list.push((
                Cluster {
                    label: 0,
                    sign: *sg,
                    size,
                    peak_voxel: pv,
                    peak_ijk: [0; 3],
                    peak_t: t[pv],
                    p_fwe: 1.0,
                },
                *sg,
                i as u32 + 1,
            ));
        }
    }
    list.sort_by(|a, b| {
        b.0.size
            .cmp(&a.0.size)
            .then(a.0.peak_voxel.cmp(&b.0.peak_voxel))
    });
    let mut out_labels = vec![0u32; nv];
    let mut clusters = Vec::with_capacity(list.len());
    for (new, (mut c, sg, old)) in list.into_iter().enumerate() {
        c.label = new as u32 + 1;
        let labels = &found.iter().find(|f| f.0 == sg).expect("sign present").1;
        for v in 0..nv {
            if labels[v] == old {
                out_labels[v] = c.label;
            }
        }
        clusters.push(c);
    }
    Ok((out_labels, clusters))
}

/// One-sample sign-flipping test of within-subject difference maps (`data`: (n_subjects, V)),
/// e.g. the ketamine effect `during − before`. Same as [`permutation_test`] with
/// [`GlmDesign::one_sample`] and [`Scheme::SignFlip`].
pub fn one_sample_sign_flip(
    data: ArrayView2<'_, f32>,
    geometry: Option<&MaskGeometry>,
    options: &PermutationOptions,
) -> Result<PermutationResult> {
    let design = GlmDesign::one_sample(data.nrows())?;
    permutation_test(data, &design, &Scheme::SignFlip, geometry, options)
}

/// Parametric p of a t statistic under Student's t with `df` degrees of freedom, for `tail`.
pub fn t_to_p(t: f64, df: f64, tail: Tail) -> Result<f64> {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let d = StudentsT::new(0.0, 1.0, df).map_err(|_| StatsError::InvalidParameter {
        name: "df",
        value: df.to_string(),
        reason: "must be > 0",
    })?;
    Ok(match tail {
        Tail::Positive => d.sf(t),
        Tail::Negative => d.cdf(t),
        Tail::TwoSided => (2.0 * d.sf(t.abs())).min(1.0),
    })
}

/// `-log10(p)`, the value conventionally written to stat maps (larger = more significant).
pub fn neg_log10(p: &Array1<f64>) -> Array1<f64> {
    p.mapv(|x| -x.log10())
}
