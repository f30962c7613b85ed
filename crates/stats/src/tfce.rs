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
//! Algorithm: voxels are bucketed by their top threshold level and added from the highest level
//! down (in grid order within a level) into a union–find forest. Each addition makes one node of
//! a component tree, which absorbs the current nodes of the components the voxel joins; a node
//! absorbed at level `k` contributes `size^E · dh · Σ_{levels it lasted} h^H` (prefix sums over
//! `h^H`), and a voxel's score is the sum of contributions from its node to the root, summed
//! root-first in one sweep. Cost: `O(V α(V) + levels)` per map instead of `O(V · levels)`. The
//! tree depends on the map alone, so the result does not depend on the order of the mask's
//! columns or on the forest's internal links. Of a new voxel's active neighbours only those not
//! adjacent to an earlier one are looked up (adjacent active voxels are already connected), the
//! activity test reads a bit grid row by row, and the forest is indexed by grid rank, so the
//! random accesses stay within about 2 MB (see `tfce_positive_into`).
//!
//! Reference: Smith, S. M. & Nichols, T. E. (2009). Threshold-free cluster enhancement: addressing
//! problems of smoothing, threshold dependence and localisation in cluster inference.
//! NeuroImage 44(1), 83–98.

use crate::error::{Result, StatsError};
use crate::geometry::{Connectivity, NeighbourRows, Neighbours};

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

/// A node of the component tree: one state of a component, made when voxel `b` was added
/// (fields packed so that a merge touches one cache line per node).
#[derive(Debug, Clone, Copy, Default)]
struct TreeNode {
    /// Voxel count while the node is its component's state.
    size: u32,
    /// The level at which it was made.
    top: u32,
    /// The node that absorbed it (`u32::MAX` while current, and at the end for the last ones).
    parent: u32,
    /// Its contribution once closed, then (after the final sweep) its voxel's score.
    score: f64,
}

/// Reusable scratch space for `tfce_positive_into`; sized for one voxel count.
///
/// Voxels are numbered by their *birth position*: their index in `order`, the voxels sorted by
/// descending threshold level. Position `b` is the id of the component-tree node that voxel
/// `order[b]` creates (see [`tfce_positive_into`]). The union–find forest is over the voxels'
/// ranks in grid order, which a neighbour's cell gives from two small tables
/// ([`Neighbours::rank_of`]): its arrays stay about as small as a second-level cache.
#[derive(Debug, Clone)]
pub(crate) struct TfceWorkspace {
    /// Top threshold level of each voxel (column order).
    level: Vec<u32>,
    /// Birth position → voxel, → the voxel's cell on the padded grid, and → its rank (its
    /// index among the voxels in grid order, see [`Neighbours::rank_of`]).
    order: Vec<u32>,
    cell: Vec<u32>,
    rank: Vec<u32>,
    /// Level → first birth position of that level (levels descending), and a fill cursor.
    start: Vec<usize>,
    fill: Vec<usize>,
    /// `prefix[k] = Σ_{j=1..k} (j·dh)^H`.
    prefix: Vec<f64>,
    /// Padded grid: one bit per cell, set once the cell's voxel has been added.
    active: Vec<u64>,
    /// By rank, read only for voxels already added (so never cleared): the union–find parent,
    /// and at roots the component-tree node (birth position) that is the component's current
    /// state (side by side: a find's last read brings the root's node id with it).
    forest: Vec<[u32; 2]>,
    /// Component-tree nodes, one per birth position.
    nodes: Vec<TreeNode>,
}

impl TfceWorkspace {
    /// Scratch space for maps of `n_voxels` voxels.
    pub(crate) fn new(n_voxels: usize) -> Self {
        Self {
            level: vec![0; n_voxels],
            order: Vec::with_capacity(n_voxels),
            cell: Vec::with_capacity(n_voxels),
            rank: Vec::with_capacity(n_voxels),
            start: Vec::new(),
            fill: Vec::new(),
            prefix: Vec::new(),
            active: Vec::new(),
            forest: vec![[0; 2]; n_voxels],
            nodes: vec![TreeNode::default(); n_voxels],
        }
    }
}

/// TFCE of the positive part of `values` (length V, one per masked voxel), written to `out`
/// (length V; voxels below `dh` get 0). `e`, `h`: exponents; `dh` > 0: step.
///
/// Voxels are added from the highest threshold level down into a union–find forest (over their
/// ranks in grid order). Each addition makes one node of a *component tree*: the new voxel's node absorbs
/// the current node of every neighbouring component (every merge involves the new voxel, so no
/// other nodes are needed). A node absorbed at level `k` contributes
/// `size^E · dh · Σ_{j=k+1..top} (j·dh)^H` (the levels during which it was its component's
/// state); the nodes still current at the end are closed at level 0. A voxel's score is the sum
/// of contributions from its own node to the root, accumulated root-first in one sweep over
/// the nodes (a node's parent is always made after it). The tree, and with it every sum and its
/// order, depends only on the map, not on the union–find's internal links.
///
/// Two active neighbours that are adjacent to each other are already in one component, so of
/// the new voxel's active neighbours only those with no earlier adjacent active neighbour are
/// looked up ([`NeighbourRows::earlier`]): about one or two finds per voxel instead of
/// one per active neighbour, and the activity test reads a bit grid of a few hundred kB.
///
/// Panics only on length mismatch between `values`, `out`, `neighbours` and `ws` (internal use);
/// the public entry point is [`tfce`].
pub(crate) fn tfce_positive_into(
    values: &[f64],
    neighbours: &Neighbours,
    e: f64,
    h: f64,
    dh: f64,
    ws: &mut TfceWorkspace,
    out: &mut [f64],
) {
    const NONE: u32 = u32::MAX;
    let n = values.len();
    debug_assert_eq!(out.len(), n);
    out.fill(0.0);
    // levels and bucket sort (descending level, ascending grid position within a level)
    let mut kmax = 0usize;
    let inv = 1.0 / dh;
    for v in 0..n {
        let k = level_near(values[v], dh, inv);
        ws.level[v] = k as u32;
        kmax = kmax.max(k);
    }
    if kmax == 0 {
        return;
    }
    ws.start.clear();
    ws.start.resize(kmax + 2, 0);
    for &k in &ws.level {
        if k > 0 {
            ws.start[k as usize] += 1;
        }
    }
    let mut acc = 0usize;
    for k in (1..=kmax).rev() {
        let c = ws.start[k];
        ws.start[k] = acc;
        acc += c;
    }
    ws.order.clear();
    ws.order.resize(acc, 0);
    ws.cell.clear();
    ws.cell.resize(acc, 0);
    ws.rank.clear();
    ws.rank.resize(acc, 0);
    ws.fill.clear();
    ws.fill.extend_from_slice(&ws.start);
    // within a level in grid order (whatever the columns' order), so the sweep below walks
    // the grid forwards and its result depends on the map alone
    for (r, &v) in neighbours.by_cell.iter().enumerate() {
        let k = ws.level[v as usize];
        if k > 0 {
            let f = &mut ws.fill[k as usize];
            ws.order[*f] = v;
            ws.cell[*f] = neighbours.padded_pos[v as usize];
            ws.rank[*f] = r as u32;
            *f += 1;
        }
    }
    ws.prefix.clear();
    ws.prefix.push(0.0);
    let mut s = 0.0;
    for k in 1..=kmax {
        s += (k as f64 * dh).powf(h);
        ws.prefix.push(s);
    }
    let prefix = &ws.prefix;
    let contribution = |size: u32, top: u32, k: usize| -> f64 {
        let t = top as usize;
        if t <= k {
            return 0.0;
        }
        let ext = if e == 0.5 {
            (size as f64).sqrt()
        } else {
            (size as f64).powf(e)
        };
        ext * dh * (prefix[t] - prefix[k])
    };

    ws.active.clear();
    ws.active.resize(neighbours.padded_len.div_ceil(64) + 1, 0);
    let active = &mut ws.active;
    let forest = &mut ws.forest;
    let nodes = &mut ws.nodes;
    let offs = &neighbours.padded_offsets;
    let NeighbourRows { earlier, rows } = &neighbours.rows;
    // the activity of the three cells from `q` on (the grid has a spare word at its end)
    let three = |active: &[u64], q: usize| -> usize {
        let w = q >> 6;
        let pair = u128::from(active[w]) | u128::from(active[w + 1]) << 64;
        (pair >> (q & 63)) as usize & 7
    };
    // union–find find with path halving
    let find = |uf: &mut [[u32; 2]], mut x: usize| -> usize {
        loop {
            let p = uf[x][0] as usize;
            if p == x {
                return x;
            }
            let g = uf[p][0] as usize;
            uf[x][0] = g as u32;
            x = g;
        }
    };

    for k in (1..=kmax).rev() {
        let end = if k > 1 { ws.start[k - 1] } else { acc };
        for b in ws.start[k]..end {
            let p = ws.cell[b] as usize;
            let r = ws.rank[b] as usize;
            forest[r] = [r as u32, b as u32];
            nodes[b] = TreeNode {
                size: 1,
                top: k as u32,
                parent: NONE,
                score: 0.0,
            };
            let mask = rows.iter().fold(0u32, |m, (base, table)| {
                m | table[three(active, (p as isize + base) as usize)]
            });
            active[p >> 6] |= 1 << (p & 63);
            let mut rv = r;
            let mut todo = mask;
            while todo != 0 {
                let i = todo.trailing_zeros() as usize;
                todo &= todo - 1;
                if mask & earlier[i] != 0 {
                    continue;
                }
                let ru = find(forest, neighbours.rank_of((p as isize + offs[i]) as usize));
                if ru == rv {
                    continue;
                }
                // the neighbour's component ends at level k: its node is absorbed by `b`'s
                let c = forest[ru][1] as usize;
                let sv = nodes[b].size;
                let node = &mut nodes[c];
                let su = node.size;
                node.score = contribution(su, node.top, k);
                node.parent = b as u32;
                nodes[b].size = su + sv;
                // union by size (of the components: the forest's depth stays logarithmic)
                let (big, small) = if su >= sv { (ru, rv) } else { (rv, ru) };
                forest[small][0] = big as u32;
                forest[big][1] = b as u32;
                rv = big;
            }
        }
    }
    // the components left at the end: their current nodes close at level 0
    for &r in &ws.rank {
        let r = r as usize;
        let [up, c] = forest[r];
        if up as usize == r {
            let c = c as usize;
            nodes[c].score = contribution(nodes[c].size, nodes[c].top, 0);
        }
    }
    // root-first: a node's parent was made after it
    for b in (0..acc).rev() {
        let q = nodes[b].parent;
        if q != NONE {
            nodes[b].score += nodes[q as usize].score;
        }
        out[ws.order[b] as usize] = nodes[b].score;
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
    let mut ws = TfceWorkspace::new(values.len());
    let mut out = vec![0.0; values.len()];
    tfce_positive_into(values, neighbours, e, h, dh, &mut ws, &mut out);
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

    /// The row tables read the same neighbours as testing each offset's cell one by one, and
    /// `earlier` marks exactly the earlier offsets adjacent under the connectivity.
    #[test]
    fn neighbour_rows_match_the_offsets() {
        for conn in [
            Connectivity::Faces6,
            Connectivity::Edges18,
            Connectivity::Corners26,
        ] {
            let offs = conn.offsets();
            let (px, py) = (6usize, 5usize);
            let rows = NeighbourRows::new(&offs, px, py);
            let flat: Vec<isize> = offs
                .iter()
                .map(|o| {
                    o[0] as isize + px as isize * (o[1] as isize + py as isize * o[2] as isize)
                })
                .collect();
            let centre = 1 + px as isize * (2 + py as isize * 2);
            // every pattern of the 27 cells around the centre that the offsets can tell apart
            for pattern in [
                0u32, 0x1ff_ffff, 0x155_5555, 0x0aa_aaaa, 0x123_4567, 0x0f0_f0f0,
            ] {
                let mut grid = vec![0u64; 2 + (px * py * 5) / 64];
                for (i, &o) in flat.iter().enumerate() {
                    if pattern >> i & 1 != 0 {
                        let q = (centre + o) as usize;
                        grid[q >> 6] |= 1 << (q & 63);
                    }
                }
                let got = rows.rows.iter().fold(0u32, |m, (base, table)| {
                    let q = (centre + base) as usize;
                    let pair = u128::from(grid[q >> 6]) | u128::from(grid[(q >> 6) + 1]) << 64;
                    m | table[(pair >> (q & 63)) as usize & 7]
                });
                let want = pattern & ((1u64 << offs.len()) - 1) as u32;
                assert_eq!(got, want, "{conn:?} pattern {pattern:#x}");
            }
            for (i, oi) in offs.iter().enumerate() {
                for (j, oj) in offs.iter().enumerate().take(i) {
                    let d2: i32 = (0..3).map(|a| (oi[a] - oj[a]).pow(2)).sum();
                    let max = match conn {
                        Connectivity::Faces6 => 1,
                        Connectivity::Edges18 => 2,
                        Connectivity::Corners26 => 3,
                    };
                    let near = (0..3).all(|a| (oi[a] - oj[a]).abs() <= 1) && d2 <= max;
                    assert_eq!(
                        rows.earlier[i] >> j & 1 != 0,
                        near,
                        "{conn:?} {oi:?} {oj:?}"
                    );
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
