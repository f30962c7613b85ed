//! Threshold-free cluster enhancement (Smith & Nichols 2009).
//!
//! For a statistic map `t`, the TFCE score of voxel `v` is the discretised integral
//!
//! `TFCE(v) = Σ_{k ≥ 1, k·dh ≤ t(v)} e_k(v)^E · (k·dh)^H · dh`
//!
//! where `e_k(v)` is the number of voxels in the connected component containing `v` of the set
//! `{u : t(u) ≥ k·dh}`. Only the positive part of the map is enhanced; callers handle the negative
//! tail by negating the map (see [`crate::Tail`]).
//!
//! Algorithm: the component tree of the map's upper level sets `{t ≥ k·dh}` (a max-tree: one
//! node per component and level at which it gains voxels) is built by flooding (Salembier,
//! Oliveras & Garrido 1998) a padded grid of the voxels' levels; a node of level `top` whose
//! parent has level `k` contributes `size^E · dh · Σ_{j=k+1..top} (j·dh)^H` (prefix sums over
//! `h^H`), and a voxel's score is the sum of contributions from its level's node to the root,
//! summed root-first. Cost: `O(V + levels)` per map instead of `O(V · levels)`. The tree depends
//! on the map alone, so the result does not depend on the order of the mask's columns. The flood
//! reads a voxel's neighbours near the voxels it has just expanded, per load the bits of three
//! cells of a bit grid of the cells still waiting (see `tfce_positive_into`); a union–find sweep
//! level by level, used before, read each level's voxels scattered over the grid and was about
//! 1.7× slower, with the same result to the bit.
//!
//! References: Smith, S. M. & Nichols, T. E. (2009). Threshold-free cluster enhancement:
//! addressing problems of smoothing, threshold dependence and localisation in cluster
//! inference. NeuroImage 44(1), 83–98. Salembier, P., Oliveras, A. & Garrido, L. (1998).
//! Antiextensive connected operators for image and sequence processing. IEEE Trans. Image
//! Process. 7(4), 555–570 (the flooding construction of the max-tree).

use crate::error::{Result, StatsError};
use crate::geometry::{Connectivity, Neighbours};

/// TFCE parameters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TfceParams {
    /// Extent exponent `E` (0.5 for 3-D, Smith & Nichols 2009).
    pub e: f64,
    /// Height exponent `H` (2).
    pub h: f64,
    /// Step size: fixed, or a fraction of the observed maximum.
    pub step: TfceStep,
    /// Voxel adjacency (26 by default, as FSL).
    pub connectivity: Connectivity,
}

impl Default for TfceParams {
    fn default() -> Self {
        Self {
            e: 0.5,
            h: 2.0,
            step: TfceStep::ObservedMaxOver(100),
            connectivity: Connectivity::Corners26,
        }
    }
}

/// How the TFCE height step `dh` is chosen.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum TfceStep {
    /// A fixed `dh` in statistic units.
    Fixed(f64),
    /// `dh = max |t| of the unpermuted map / n`; the same `dh` is then used for every
    /// permutation, so all maps are enhanced by one function (FSL recomputes `dh` per map).
    ObservedMaxOver(usize),
}

impl TfceParams {
    pub(crate) fn validate(&self) -> Result<()> {
        if !(self.e.is_finite() && self.e > 0.0) {
            return Err(StatsError::InvalidParameter {
                name: "tfce.e",
                value: self.e.to_string(),
                reason: "must be finite and > 0",
            });
        }
        if !(self.h.is_finite() && self.h >= 0.0) {
            return Err(StatsError::InvalidParameter {
                name: "tfce.h",
                value: self.h.to_string(),
                reason: "must be finite and >= 0",
            });
        }
        match self.step {
            TfceStep::Fixed(dh) if !(dh.is_finite() && dh > 0.0) => {
                Err(StatsError::InvalidParameter {
                    name: "tfce.step",
                    value: dh.to_string(),
                    reason: "fixed dh must be finite and > 0",
                })
            }
            TfceStep::ObservedMaxOver(0) => Err(StatsError::InvalidParameter {
                name: "tfce.step",
                value: "0".into(),
                reason: "number of steps must be >= 1",
            }),
            _ => Ok(()),
        }
    }

    /// Resolve `dh` given the maximum absolute value of the unpermuted map.
    pub(crate) fn resolve_dh(&self, observed_max_abs: f64) -> f64 {
        match self.step {
            TfceStep::Fixed(dh) => dh,
            TfceStep::ObservedMaxOver(n) => {
                if observed_max_abs.is_finite() && observed_max_abs > 0.0 {
                    observed_max_abs / n as f64
                } else {
                    1.0 / n as f64
                }
            }
        }
    }
}

/// Top threshold level of value `x`: the largest `k` with `k as f64 * dh <= x` (0 if none).
#[cfg(test)]
fn level_of(x: f64, dh: f64) -> usize {
    level_near(x, dh, 1.0 / dh)
}

/// [`level_of`] with `inv = 1 / dh` given, for finite `x` or NaN (level 0); levels above
/// 2·10⁹ are cut there. The estimate `x · inv` is within one of the answer; one step each way
/// makes it exact whatever the rounding of `inv`, without branches (the sign of a noise map's
/// voxels is unpredictable) and in 32-bit integers (whose conversions to and from `f64` are
/// single instructions).
#[inline]
fn level_near(x: f64, dh: f64, inv: f64) -> usize {
    // `as` truncates towards zero and maps NaN to 0
    let mut k = (x * inv).clamp(0.0, 2e9) as i32;
    k -= i32::from((k > 0) & (f64::from(k) * dh > x));
    k += i32::from(f64::from(k + 1) * dh <= x);
    k as usize
}

/// What [`fill_levels`] reads and writes: each voxel's level ([`level_near`]) of `sign · values`
/// goes into `level` in rank order (the voxel of rank `r` is column `columns[r]`, or column `r`
/// without `columns`; cells of one byte hold at most 255).
struct Fill<'a, G> {
    values: &'a [f64],
    sign: f64,
    dh: f64,
    columns: Option<&'a [u32]>,
    level: &'a mut [G],
}

impl<'a, G> Fill<'a, G> {
    /// The levels of `values` (see [`level_near`]), or of `-values` if `negate`, into `level`.
    fn new(
        values: &'a [f64],
        negate: bool,
        dh: f64,
        nb: &'a Neighbours,
        level: &'a mut [G],
    ) -> Self {
        Self {
            values,
            sign: if negate { -1.0 } else { 1.0 },
            dh,
            columns: nb.column_by_rank.as_deref(),
            level,
        }
    }
}

/// Fills the levels of [`Fill`] and returns the largest. Compiled for AVX2 too (`crate::simd`:
/// four lanes of the conversions and comparisons, where the baseline build does them one voxel
/// at a time).
fn fill_levels<G: Level>(fill: Fill<'_, G>) -> usize {
    crate::simd::avx2_or!(fill_levels_avx2(fill), fill_levels_body(fill))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn fill_levels_avx2<G: Level>(fill: Fill<'_, G>) -> usize {
    fill_levels_body(fill)
}

#[inline(always)]
fn fill_levels_body<G: Level>(fill: Fill<'_, G>) -> usize {
    let Fill {
        values,
        sign,
        dh,
        columns,
        level,
    } = fill;
    let inv = 1.0 / dh;
    let mut kmax = 0u32;
    // `-x` exactly, as the negated map would hold it
    let mut put = |l: &mut G, x: f64| {
        let k = level_near(sign * x, dh, inv) as u32;
        *l = G::from_level(k);
        kmax = kmax.max(k);
    };
    match columns {
        None => level.iter_mut().zip(values).for_each(|(l, &x)| put(l, x)),
        Some(c) => level
            .iter_mut()
            .zip(c)
            .for_each(|(l, &v)| put(l, values[v as usize])),
    }
    kmax as usize
}

/// Reusable scratch space for `tfce_positive_into`; sized for one mask.
///
/// The component tree is built by flooding (Salembier et al. 1998) a padded grid whose bits (one
/// per cell) mark the mask cells at level 1 or above that the flood has not reached yet (so they
/// are all 0 between calls); each voxel's level is kept in rank order (cell order, see
/// `Neighbours::rank_of`), read once per voxel reached, in one byte while the levels fit (most
/// maps: `dh` is a hundredth of the observed maximum), else four.
#[derive(Debug, Clone)]
pub(crate) struct TfceWorkspace {
    /// Top threshold level of each voxel by rank, of one byte or (allocated when needed) four.
    level8: Vec<u8>,
    level32: Vec<u32>,
    /// The padded grid's bits of the cells waiting to be reached (two spare bytes at its end).
    wait: Vec<u8>,
    tree: Tree,
}

/// The component tree of one map, and the flood's stacks.
#[derive(Debug, Clone, Default)]
struct Tree {
    /// Per level: the cells reached and waiting to be expanded.
    stacks: Vec<Vec<u32>>,
    /// Per level: the node being filled at that level (`NONE` if none), and one bit per level
    /// for the levels that have one.
    current: Vec<u32>,
    open: Vec<u64>,
    /// By rank (cell order): the node of each voxel reached.
    node_of: Vec<u32>,
    /// Nodes: level, voxel count (the node's component, all its levels), parent (`NONE` for a
    /// root), and the nodes in the order they were closed (children before parents).
    node_level: Vec<u32>,
    node_size: Vec<u32>,
    node_parent: Vec<u32>,
    closed: Vec<u32>,
    /// Node scores, summed root-first.
    score: Vec<f64>,
    /// `prefix[k] = Σ_{j=1..k} (j·dh)^H`.
    prefix: Vec<f64>,
}

const NONE: u32 = u32::MAX;

/// A cell of the grid of levels.
trait Level: Copy {
    fn from_level(k: u32) -> Self;
    fn level(self) -> u32;
}

impl Level for u8 {
    /// Levels above 255 are cut there (the caller uses four-byte cells then).
    fn from_level(k: u32) -> Self {
        k.min(255) as u8
    }
    fn level(self) -> u32 {
        u32::from(self)
    }
}

impl Level for u32 {
    fn from_level(k: u32) -> Self {
        k
    }
    fn level(self) -> u32 {
        self
    }
}

/// Which of the three cells from `q` on wait in the bit grid `wait` (bit `i` for cell `q + i`):
/// one two-byte load (the grid has a spare byte at its end).
#[inline]
fn three(wait: &[u8], q: usize) -> usize {
    let b = q >> 3;
    let w = u16::from_le_bytes(wait[b..b + 2].try_into().expect("two bytes"));
    (usize::from(w) >> (q & 7)) & 7
}

impl TfceWorkspace {
    /// Scratch space for maps on the mask of `neighbours`.
    pub(crate) fn new(neighbours: &Neighbours) -> Self {
        let n_voxels = neighbours.n_voxels();
        Self {
            level8: vec![0; n_voxels],
            level32: Vec::new(),
            wait: vec![0; neighbours.padded_len / 8 + 2],
            tree: Tree {
                node_of: vec![0; n_voxels],
                ..Tree::default()
            },
        }
    }
}

impl Tree {
    fn new_node(&mut self, level: u32) -> u32 {
        let id = self.node_level.len() as u32;
        self.node_level.push(level);
        self.node_size.push(0);
        self.node_parent.push(NONE);
        self.current[level as usize] = id;
        self.open[level as usize >> 6] |= 1 << (level & 63);
        id
    }

    /// The highest level below `h` with a node being filled, 0 if none.
    fn open_below(&self, h: u32) -> u32 {
        let h = h as usize - 1;
        let mut w = h >> 6;
        let mut bits = self.open[w] & (u64::MAX >> (63 - (h & 63)));
        loop {
            if bits != 0 {
                return (w * 64 + 63 - bits.leading_zeros() as usize) as u32;
            }
            if w == 0 {
                return 0;
            }
            w -= 1;
            bits = self.open[w];
        }
    }

    /// Builds the tree of the levels `level` (rank order, at most `kmax`) by flooding the padded
    /// grid; `wait` (one bit per cell) is all 0 before and after.
    fn flood<G: Level>(&mut self, level: &[G], wait: &mut [u8], kmax: usize, nb: &Neighbours) {
        crate::simd::avx2_or!(
            self.flood_avx2(level, wait, kmax, nb),
            self.flood_body(level, wait, kmax, nb)
        )
    }

    /// [`Self::flood`] where the CPU has AVX2 (and POPCNT, for a cell's rank).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,popcnt")]
    fn flood_avx2<G: Level>(&mut self, level: &[G], wait: &mut [u8], kmax: usize, nb: &Neighbours) {
        self.flood_body(level, wait, kmax, nb)
    }

    #[inline(always)]
    fn flood_body<G: Level>(&mut self, level: &[G], wait: &mut [u8], kmax: usize, nb: &Neighbours) {
        for (&k, &c) in level.iter().zip(&nb.cell_by_rank) {
            let c = c as usize;
            wait[c >> 3] |= u8::from(k.level() > 0) << (c & 7);
        }
        if self.stacks.len() < kmax + 1 {
            self.stacks.resize(kmax + 1, Vec::new());
        }
        self.current.clear();
        self.current.resize(kmax + 1, NONE);
        self.open.clear();
        self.open.resize(kmax / 64 + 1, 0);
        self.node_level.clear();
        self.node_size.clear();
        self.node_parent.clear();
        self.closed.clear();
        for (r, &seed) in nb.cell_by_rank.iter().enumerate() {
            let seed = seed as usize;
            if wait[seed >> 3] >> (seed & 7) & 1 == 0 {
                continue;
            }
            wait[seed >> 3] &= !(1 << (seed & 7));
            let l = level[r].level();
            let node = self.new_node(l);
            self.node_size[node as usize] = 1;
            self.node_of[r] = node;
            self.stacks[l as usize].push(seed as u32);
            let mut hl = l;
            loop {
                'level: while let Some(p) = self.stacks[hl as usize].pop() {
                    // which neighbours wait to be reached: a row of three cells' bits per
                    // load, without a branch per neighbour
                    let mut todo = nb.rows.rows.iter().fold(0u32, |m, (base, table)| {
                        m | table[three(wait, (p as isize + base) as usize)]
                    });
                    while todo != 0 {
                        let i = todo.trailing_zeros() as usize;
                        todo &= todo - 1;
                        let q = (p as isize + nb.rows.offsets[i]) as usize;
                        let rq = nb.rank_of(q);
                        let lq = level[rq].level();
                        wait[q >> 3] &= !(1 << (q & 7));
                        let mut nq = self.current[lq as usize];
                        if nq == NONE {
                            nq = self.new_node(lq);
                        }
                        self.node_size[nq as usize] += 1;
                        self.node_of[rq] = nq;
                        self.stacks[lq as usize].push(q as u32);
                        if lq > hl {
                            // climb: expand the higher level first, come back to `p` after
                            self.stacks[hl as usize].push(p);
                            hl = lq;
                            continue 'level;
                        }
                    }
                }
                // the level's stack is empty: its node is complete
                let node = self.current[hl as usize];
                self.current[hl as usize] = NONE;
                self.open[hl as usize >> 6] &= !(1 << (hl & 63));
                self.closed.push(node);
                let m = self.open_below(hl);
                if m == 0 {
                    break;
                }
                let up = self.current[m as usize];
                self.node_parent[node as usize] = up;
                self.node_size[up as usize] += self.node_size[node as usize];
                hl = m;
            }
        }
    }
}

/// TFCE of the positive part of `values` (length V, one per masked voxel; of `-values` if
/// `negate`), handed to `emit(v, score)` for every voxel `v` in column order (0 below `dh`).
/// `e`, `h`: exponents; `dh` > 0: step.
///
/// The component tree of the map's upper level sets `{t ≥ k·dh}` (a max-tree: one node per
/// component and level at which it gains voxels) is built by flooding (Salembier, Oliveras &
/// Garrido 1998): from a voxel not yet reached, neighbours are reached and put on their level's
/// stack; a neighbour on a higher level is expanded first (the flood climbs), and when a level's
/// stack is empty its node is complete, becomes a child of the node being filled at the next
/// lower open level, and the flood descends there. A node of level `top` whose parent has
/// level `k` (0 for a root) contributes `size^E · dh · Σ_{j=k+1..top} (j·dh)^H`, and a voxel's
/// score is the sum of contributions from its own level's node to the root, summed root-first.
/// The tree depends on the map alone, and so do the sums and their order: the result does not
/// depend on the order of the mask's columns. The flood reads each voxel's neighbours next to
/// the voxels it has just expanded, so its reads stay in the cache, and finds which of them wait
/// with one load per row of three cells of a bit grid and a table (the union–find sweep level by
/// level used before read each level's voxels scattered over the whole grid).
///
/// Returns the largest score handed to `emit` (at least 0). Panics only on length mismatch
/// between `values`, `out`, `neighbours` and `ws` (internal use); the public entry point is
/// [`tfce`].
pub(crate) fn tfce_positive_into(
    values: &[f64],
    negate: bool,
    neighbours: &Neighbours,
    e: f64,
    h: f64,
    dh: f64,
    ws: &mut TfceWorkspace,
    emit: impl FnMut(usize, f64),
) -> f64 {
    let n = values.len();
    debug_assert_eq!(ws.level8.len(), n);
    let kmax = fill_levels(Fill::new(values, negate, dh, neighbours, &mut ws.level8));
    if kmax > usize::from(u8::MAX) {
        ws.level32.resize(n, 0);
        fill_levels(Fill::new(values, negate, dh, neighbours, &mut ws.level32));
        ws.tree.flood(&ws.level32, &mut ws.wait, kmax, neighbours);
    } else {
        ws.tree.flood(&ws.level8, &mut ws.wait, kmax, neighbours);
    }
    ws.tree
        .emit_scores(&ws.level8, kmax, neighbours, e, h, dh, emit)
}

/// The one-byte levels (cut at 255, see [`level_near`]) by rank of a tile of a map whose
/// columns are in rank order ([`Neighbours::column_by_rank`] `None`): the levels of
/// `sign · values` into `out` (the tile's part of a map's levels); returns the largest level,
/// uncut (above 255: the levels do not fit one byte).
pub(crate) fn tile_levels(values: &[f64], sign: f64, dh: f64, out: &mut [u8]) -> usize {
    fill_levels(Fill {
        values,
        sign,
        dh,
        columns: None,
        level: out,
    })
}

/// [`tfce_positive_into`] from a map's one-byte levels by rank (`level`, at most `kmax` ≤ 255),
/// e.g. from [`tile_levels`]; returns the largest score handed to `emit` (at least 0).
pub(crate) fn tfce_of_one_byte_levels(
    level: &[u8],
    kmax: usize,
    neighbours: &Neighbours,
    e: f64,
    h: f64,
    dh: f64,
    ws: &mut TfceWorkspace,
    emit: impl FnMut(usize, f64),
) -> f64 {
    assert!(kmax <= usize::from(u8::MAX), "one-byte levels");
    ws.tree.flood(level, &mut ws.wait, kmax, neighbours);
    ws.tree.emit_scores(level, kmax, neighbours, e, h, dh, emit)
}

impl Tree {
    /// The scores of the tree just flooded, handed to `emit` voxel by voxel in column order
    /// (`level8`: the voxels' one-byte levels by rank, 0 exactly where the level is); returns
    /// the largest score handed over (every node holds a voxel of its level: the largest node
    /// score, at least 0).
    #[allow(clippy::too_many_arguments)]
    fn emit_scores(
        &mut self,
        level8: &[u8],
        kmax: usize,
        neighbours: &Neighbours,
        e: f64,
        h: f64,
        dh: f64,
        mut emit: impl FnMut(usize, f64),
    ) -> f64 {
        self.prefix.clear();
        self.prefix.push(0.0);
        let mut s = 0.0;
        for k in 1..=kmax {
            s += (k as f64 * dh).powf(h);
            self.prefix.push(s);
        }
        let prefix = &self.prefix;
        let contribution = |size: u32, top: u32, k: u32| -> f64 {
            let (t, k) = (top as usize, k as usize);
            let ext = if e == 0.5 {
                (size as f64).sqrt()
            } else {
                (size as f64).powf(e)
            };
            ext * dh * (prefix[t] - prefix[k])
        };
        // root-first: a node's parent was closed after it
        self.score.clear();
        self.score.resize(self.node_level.len(), 0.0);
        for &c in self.closed.iter().rev() {
            let c = c as usize;
            let (size, top) = (self.node_size[c], self.node_level[c]);
            let q = self.node_parent[c];
            self.score[c] = if q == NONE {
                contribution(size, top, 0)
            } else {
                let q = q as usize;
                contribution(size, top, self.node_level[q]) + self.score[q]
            };
        }
        for (v, &r) in neighbours.rank_by_column.iter().enumerate() {
            let r = r as usize;
            emit(
                v,
                if level8[r] > 0 {
                    self.score[self.node_of[r] as usize]
                } else {
                    0.0
                },
            );
        }
        self.score
            .iter()
            .fold(0.0, |m, &x| if x > m { x } else { m })
    }
}

/// TFCE of the positive part of a statistic map.
///
/// `values`: one value per masked voxel (length `neighbours.n_voxels()`), in statistic units;
/// `e`, `h`: exponents (0.5, 2 in Smith & Nichols 2009); `dh`: height step (> 0). Returns the
/// TFCE map (same length; zero where `values < dh`). For the negative tail, pass the negated map.
/// Errors if the lengths differ, a parameter is out of range or a value is not finite.
pub fn tfce(values: &[f64], neighbours: &Neighbours, e: f64, h: f64, dh: f64) -> Result<Vec<f64>> {
    crate::error::check_len("values", neighbours.n_voxels(), values.len())?;
    crate::error::check_finite("values", values.iter().copied())?;
    TfceParams {
        e,
        h,
        step: TfceStep::Fixed(dh),
        connectivity: Connectivity::Corners26,
    }
    .validate()?;
    let mut ws = TfceWorkspace::new(neighbours);
    let mut out = vec![0.0; values.len()];
    tfce_positive_into(values, false, neighbours, e, h, dh, &mut ws, |v, x| {
        out[v] = x
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::MaskGeometry;

    #[test]
    fn single_voxel_closed_form() {
        let g = MaskGeometry::from_ijk([3, 3, 3], vec![[1, 1, 1]]).unwrap();
        let nb = g.neighbours(Connectivity::Corners26);
        let out = tfce(&[1.0], &nb, 0.5, 2.0, 0.25).unwrap();
        // Σ_{k=1..4} 1 * (k/4)^2 * 0.25 = 0.25 * (1+4+9+16)/16
        assert!((out[0] - 0.25 * 30.0 / 16.0).abs() < 1e-12);
    }

    #[test]
    fn two_voxels_merge() {
        let g = MaskGeometry::from_ijk([3, 1, 1], vec![[0, 0, 0], [1, 0, 0]]).unwrap();
        let nb = g.neighbours(Connectivity::Faces6);
        let out = tfce(&[2.0, 1.0], &nb, 0.5, 2.0, 1.0).unwrap();
        // voxel 0: level 2 alone (size 1): 1*4*1; level 1 with voxel 1 (size 2): sqrt2*1*1
        let s2 = 2f64.sqrt();
        assert!((out[0] - (4.0 + s2)).abs() < 1e-12);
        assert!((out[1] - s2).abs() < 1e-12);
    }

    /// The flood's row reads (one load of a row of three cells' bits, then the row tables)
    /// find exactly the neighbours whose bits are set, for every connectivity, at every bit
    /// offset of the centre within its byte.
    #[test]
    fn neighbour_rows_find_the_waiting_cells() {
        for conn in [
            Connectivity::Faces6,
            Connectivity::Edges18,
            Connectivity::Corners26,
        ] {
            let g = MaskGeometry::from_mask([10, 3, 3], &[true; 90]).unwrap();
            let nb = g.neighbours(conn);
            let offs = conn.offsets();
            for x in 1..9 {
                // voxel (x, 1, 1): all its neighbours are in the mask
                let v = g.ijk().iter().position(|c| *c == [x, 1, 1]).unwrap();
                let centre = nb.padded_pos[v] as isize;
                for pattern in [
                    0u32, 0x3ff_ffff, 0x155_5555, 0x2aa_aaaa, 0x123_4567, 0x0f0_f0f0,
                ] {
                    let mut wait = vec![0u8; nb.padded_len / 8 + 2];
                    for (i, &o) in nb.rows.offsets.iter().enumerate() {
                        let o3 = offs[i];
                        let flat = o3[0] as isize + 12 * (o3[1] as isize + 5 * o3[2] as isize);
                        assert_eq!(o, flat, "{conn:?} offset {i}");
                        if pattern >> i & 1 != 0 {
                            let q = (centre + o) as usize;
                            wait[q >> 3] |= 1 << (q & 7);
                        }
                    }
                    let got = nb.rows.rows.iter().fold(0u32, |m, (base, table)| {
                        m | table[three(&wait, (centre + base) as usize)]
                    });
                    let want = pattern & ((1u64 << offs.len()) - 1) as u32;
                    assert_eq!(got, want, "{conn:?} x {x} {pattern:#x}");
                }
            }
        }
    }

    /// The dispatched levels (the AVX2 copy on a machine that has it) equal the baseline
    /// body's, on values at and beside level boundaries, negative, huge and NaN, both signs.
    #[test]
    fn dispatched_levels_equal_the_baseline() {
        let dh = 0.0758;
        let mut values = vec![0.0, -0.0, f64::NAN, 1e300, -1e300, 3e9 * dh, 0.5 * dh];
        for k in 0..300 {
            let x = k as f64 * dh;
            values.extend([x, x.next_up(), x.next_down(), -x, 0.37 * x]);
        }
        let reversed: Vec<u32> = (0..values.len() as u32).rev().collect();
        for sign in [1.0, -1.0] {
            for columns in [None, Some(&reversed[..])] {
                let fill = |level| Fill {
                    values: &values,
                    sign,
                    dh,
                    columns,
                    level,
                };
                let (mut a, mut b) = (vec![9u32; values.len()], vec![7u32; values.len()]);
                let ka = fill_levels(fill(&mut a[..]));
                let kb = fill_levels_body(fill(&mut b[..]));
                assert_eq!((ka, &a), (kb, &b), "sign {sign}");
                let mut c = vec![5u8; values.len()];
                assert_eq!(
                    fill_levels(Fill {
                        values: &values,
                        sign,
                        dh,
                        columns,
                        level: &mut c[..]
                    }),
                    ka
                );
                let cut: Vec<u8> = a.iter().map(|&k| k.min(255) as u8).collect();
                assert_eq!(c, cut, "one-byte cells, sign {sign}");
                if columns.is_some() {
                    assert_eq!(a[0], level_of(sign * values[values.len() - 1], dh) as u32);
                }
            }
        }
    }

    #[test]
    fn level_boundaries() {
        assert_eq!(level_of(0.35, 0.1), 3);
        // 3 * 0.1 = 0.30000000000000004 > 0.3: the definition is k·dh <= x in floating point
        assert_eq!(level_of(0.3, 0.1), 2);
        assert_eq!(level_of(0.0999, 0.1), 0);
        assert_eq!(level_of(-1.0, 0.1), 0);
        assert_eq!(level_of(f64::NAN, 0.1), 0);
    }
}
