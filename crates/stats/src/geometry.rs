//! Mask geometry, voxel neighbourhoods and connected-component labelling.
//!
//! Masked voxels are the columns of the data matrices used everywhere in this crate. A
//! [`MaskGeometry`] records where each column sits on the 3-D grid so that spatial statistics
//! (TFCE, clusters) can find neighbours.
//!
//! Linear-index convention: `linear = i + nx * (j + ny * k)` for voxel `(i, j, k)` on a grid of
//! `dims = [nx, ny, nz]` — NIfTI (Fortran) order, `i` fastest.

use crate::error::{Result, StatsError};

/// Voxel adjacency used for clusters and TFCE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Connectivity {
    /// Face neighbours only (6).
    Faces6,
    /// Faces and edges (18).
    Edges18,
    /// Faces, edges and corners (26); the default, as in FSL `randomise` TFCE.
    #[default]
    Corners26,
}

impl Connectivity {
    /// Largest squared offset length that counts as adjacent (1, 2 or 3).
    fn max_norm2(self) -> i32 {
        match self {
            Connectivity::Faces6 => 1,
            Connectivity::Edges18 => 2,
            Connectivity::Corners26 => 3,
        }
    }

    /// The neighbour offsets `(di, dj, dk)` of this connectivity.
    pub fn offsets(self) -> Vec<[i32; 3]> {
        let mut out = Vec::new();
        for dk in -1..=1i32 {
            for dj in -1..=1i32 {
                for di in -1..=1i32 {
                    let n2 = di * di + dj * dj + dk * dk;
                    if n2 > 0 && n2 <= self.max_norm2() {
                        out.push([di, dj, dk]);
                    }
                }
            }
        }
        out
    }
}

/// Where the masked voxels (data columns) sit on the image grid.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskGeometry {
    dims: [usize; 3],
    ijk: Vec<[usize; 3]>,
}

impl MaskGeometry {
    /// Build from voxel coordinates, one per data column, in column order.
    ///
    /// Errors if a coordinate lies outside `dims` or a voxel is listed twice.
    pub fn from_ijk(dims: [usize; 3], ijk: Vec<[usize; 3]>) -> Result<Self> {
        let total = dims[0]
            .checked_mul(dims[1])
            .and_then(|v| v.checked_mul(dims[2]))
            .ok_or(StatsError::InvalidParameter {
                name: "dims",
                value: format!("{dims:?}"),
                reason: "grid size overflows",
            })?;
        let mut seen = vec![false; total];
        for (index, c) in ijk.iter().enumerate() {
            if c[0] >= dims[0] || c[1] >= dims[1] || c[2] >= dims[2] {
                return Err(StatsError::OutOfGrid { index, dims });
            }
            let lin = c[0] + dims[0] * (c[1] + dims[1] * c[2]);
            if seen[lin] {
                return Err(StatsError::DuplicateVoxel { index });
            }
            seen[lin] = true;
        }
        Ok(Self { dims, ijk })
    }

    /// Build from linear indices (`i + nx*(j + ny*k)`), one per data column, in column order.
    pub fn from_linear(dims: [usize; 3], linear: &[usize]) -> Result<Self> {
        let total = dims[0] * dims[1] * dims[2];
        let mut ijk = Vec::with_capacity(linear.len());
        for (index, &l) in linear.iter().enumerate() {
            if l >= total {
                return Err(StatsError::OutOfGrid { index, dims });
            }
            ijk.push([
                l % dims[0],
                (l / dims[0]) % dims[1],
                l / (dims[0] * dims[1]),
            ]);
        }
        Self::from_ijk(dims, ijk)
    }

    /// Build from a full-grid boolean mask in linear (`i` fastest) order; columns follow
    /// increasing linear index. `mask.len()` must be `nx*ny*nz`.
    pub fn from_mask(dims: [usize; 3], mask: &[bool]) -> Result<Self> {
        let total = dims[0] * dims[1] * dims[2];
        crate::error::check_len("mask", total, mask.len())?;
        let linear: Vec<usize> = (0..total).filter(|&l| mask[l]).collect();
        Self::from_linear(dims, &linear)
    }

    /// Grid dimensions `[nx, ny, nz]`.
    pub fn dims(&self) -> [usize; 3] {
        self.dims
    }

    /// Number of masked voxels (data columns).
    pub fn n_voxels(&self) -> usize {
        self.ijk.len()
    }

    /// Voxel coordinates, one per column.
    pub fn ijk(&self) -> &[[usize; 3]] {
        &self.ijk
    }

    /// Linear index (`i + nx*(j + ny*k)`) of column `v`.
    pub fn linear(&self, v: usize) -> usize {
        let c = self.ijk[v];
        c[0] + self.dims[0] * (c[1] + self.dims[1] * c[2])
    }

    /// Neighbour lists of every masked voxel under `connectivity` (only masked neighbours).
    pub fn neighbours(&self, connectivity: Connectivity) -> Neighbours {
        let [nx, ny, nz] = self.dims;
        let mut grid = vec![u32::MAX; nx * ny * nz];
        for v in 0..self.ijk.len() {
            grid[self.linear(v)] = v as u32;
        }
        let offs = connectivity.offsets();
        let mut offsets = Vec::with_capacity(self.ijk.len() + 1);
        let mut indices = Vec::new();
        offsets.push(0u32);
        for c in &self.ijk {
            for o in &offs {
                let i = c[0] as i64 + o[0] as i64;
                let j = c[1] as i64 + o[1] as i64;
                let k = c[2] as i64 + o[2] as i64;
                if i < 0 || j < 0 || k < 0 || i >= nx as i64 || j >= ny as i64 || k >= nz as i64 {
                    continue;
                }
                let u = grid[i as usize + nx * (j as usize + ny * k as usize)];
                if u != u32::MAX {
                    indices.push(u);
                }
            }
            offsets.push(indices.len() as u32);
        }
        let (px, py) = (nx + 2, ny + 2);
        let padded_pos: Vec<u32> = self
            .ijk
            .iter()
            .map(|c| ((c[0] + 1) + px * ((c[1] + 1) + py * (c[2] + 1))) as u32)
            .collect();
        let mut by_cell: Vec<u32> = (0..padded_pos.len() as u32).collect();
        by_cell.sort_unstable_by_key(|&v| padded_pos[v as usize]);
        let cell_by_rank = by_cell.iter().map(|&v| padded_pos[v as usize]).collect();
        let mut rank_by_column = vec![0u32; by_cell.len()];
        for (r, &v) in by_cell.iter().enumerate() {
            rank_by_column[v as usize] = r as u32;
        }
        let in_rank_order = by_cell.iter().enumerate().all(|(r, &v)| v as usize == r);
        let column_by_rank = (!in_rank_order).then_some(by_cell);
        let padded_len = px * py * (nz + 2);
        let mut mask_bits = vec![0u64; padded_len.div_ceil(64) + 1];
        for &p in &padded_pos {
            mask_bits[p as usize >> 6] |= 1 << (p & 63);
        }
        let mut mask_before = Vec::with_capacity(mask_bits.len());
        let mut seen = 0u32;
        for w in &mask_bits {
            mask_before.push(seen);
            seen += w.count_ones();
        }
        let rows = NeighbourRows::new(&offs, px, py);
        Neighbours {
            offsets,
            indices,
            padded_pos,
            padded_len,
            cell_by_rank,
            rank_by_column,
            column_by_rank,
            mask_bits,
            mask_before,
            rows,
        }
    }
}

/// Compressed neighbour lists: the masked neighbours of column `v` are `of(v)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbours {
    offsets: Vec<u32>,
    indices: Vec<u32>,
    /// Linear position (cell) of each voxel on the grid padded by one voxel on every side.
    pub(crate) padded_pos: Vec<u32>,
    /// Number of cells of the padded grid.
    pub(crate) padded_len: usize,
    /// A voxel's rank is its index among the mask's cells in cell order (ascending
    /// `padded_pos`): rank → cell, and column → rank.
    pub(crate) cell_by_rank: Vec<u32>,
    pub(crate) rank_by_column: Vec<u32>,
    /// Rank → column, `None` where the columns are in rank order (a mask listed in cell order,
    /// as [`MaskGeometry::from_mask`] lists it).
    pub(crate) column_by_rank: Option<Vec<u32>>,
    /// The mask on the padded grid, one bit per cell (a spare word at the end), and the number
    /// of mask cells before each word: a cell's rank without a grid-sized table.
    mask_bits: Vec<u64>,
    mask_before: Vec<u32>,
    /// The neighbour offsets on the padded grid, in rows of three cells (no bounds checks
    /// needed).
    pub(crate) rows: NeighbourRows,
}

impl Neighbours {
    /// Number of voxels.
    pub fn n_voxels(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Rank (see `cell_by_rank`) of a padded-grid cell that is in the mask.
    #[inline]
    pub(crate) fn rank_of(&self, cell: usize) -> usize {
        let w = cell >> 6;
        let below = self.mask_bits[w] & ((1u64 << (cell & 63)) - 1);
        self.mask_before[w] as usize + below.count_ones() as usize
    }

    /// Neighbours (column indices) of column `v`.
    #[inline]
    pub fn of(&self, v: usize) -> &[u32] {
        &self.indices[self.offsets[v] as usize..self.offsets[v + 1] as usize]
    }
}

/// Connected components of the `active` voxels.
///
/// Returns `(labels, sizes)`: `labels[v]` is 0 for inactive voxels and `1..=n_components`
/// otherwise, numbered in order of each component's lowest column index; `sizes[l - 1]` is the
/// voxel count of component `l`. `active.len()` must equal `neighbours.n_voxels()`.
pub fn label_components(
    neighbours: &Neighbours,
    active: &[bool],
) -> Result<(Vec<u32>, Vec<usize>)> {
    crate::error::check_len("active", neighbours.n_voxels(), active.len())?;
    let n = active.len();
    let mut labels = vec![0u32; n];
    let mut sizes = Vec::new();
    let mut stack = Vec::new();
    for seed in 0..n {
        if !active[seed] || labels[seed] != 0 {
            continue;
        }
        let label = sizes.len() as u32 + 1;
        labels[seed] = label;
        stack.push(seed as u32);
        let mut size = 0usize;
        while let Some(v) = stack.pop() {
            size += 1;
            for &u in neighbours.of(v as usize) {
                if active[u as usize] && labels[u as usize] == 0 {
                    labels[u as usize] = label;
                    stack.push(u);
                }
            }
        }
        sizes.push(size);
    }
    Ok((labels, sizes))
}

/// Size of the largest connected component of the voxels `v` with `active(v)` (e.g. a
/// statistic at or above the cluster-forming threshold), using `parent` and `size` as scratch
/// (union–find). Returns 0 when no voxel is active.
pub(crate) fn max_cluster_size(
    active: impl Fn(usize) -> bool,
    neighbours: &Neighbours,
    parent: &mut [u32],
    size: &mut [u32],
) -> usize {
    const NONE: u32 = u32::MAX;
    parent.fill(NONE);
    let mut best = 0u32;
    for v in 0..neighbours.n_voxels() {
        if !active(v) {
            continue;
        }
        parent[v] = v as u32;
        size[v] = 1;
        let mut rv = v as u32;
        for &u in neighbours.of(v) {
            if parent[u as usize] == NONE {
                continue;
            }
            let ru = find(parent, u);
            if ru != rv {
                let (big, small) = if size[ru as usize] >= size[rv as usize] {
                    (ru, rv)
                } else {
                    (rv, ru)
                };
                parent[small as usize] = big;
                size[big as usize] += size[small as usize];
                rv = big;
            }
        }
        best = best.max(size[rv as usize]);
    }
    best as usize
}

#[inline]
fn find(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        let p = parent[x as usize];
        let g = parent[p as usize];
        parent[x as usize] = g;
        x = g;
    }
    x
}

/// The neighbour offsets of one connectivity on the padded grid, grouped into rows of three
/// cells along the first axis (`di` = -1, 0, 1), so that the TFCE flood reads a row's cells
/// with one load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NeighbourRows {
    /// The cell offset of each neighbour offset, in the order of [`Connectivity::offsets`].
    pub(crate) offsets: Vec<isize>,
    /// Per row: the cell offset of its first cell (`di` = -1), and for each of the 8 patterns
    /// of its three cells (bit `di + 1`), the mask of the neighbour offsets they are.
    pub(crate) rows: Vec<(isize, [u32; 8])>,
}

impl NeighbourRows {
    /// From the offsets `(di, dj, dk)` of one connectivity and the padded grid's first two
    /// dimensions.
    fn new(offsets: &[[i32; 3]], px: usize, py: usize) -> Self {
        assert!(offsets.len() <= 32, "at most 32 neighbour offsets");
        let cell = |o: &[i32; 3]| {
            o[0] as isize + px as isize * (o[1] as isize + py as isize * o[2] as isize)
        };
        let mut rows: Vec<([i32; 2], isize, [u32; 8])> = Vec::new();
        for (i, o) in offsets.iter().enumerate() {
            let key = [o[1], o[2]];
            let r = match rows.iter().position(|r| r.0 == key) {
                Some(r) => r,
                None => {
                    rows.push((key, cell(&[-1, o[1], o[2]]), [0; 8]));
                    rows.len() - 1
                }
            };
            let bit = (o[0] + 1) as usize;
            for (pattern, m) in rows[r].2.iter_mut().enumerate() {
                if pattern >> bit & 1 != 0 {
                    *m |= 1 << i;
                }
            }
        }
        Self {
            offsets: offsets.iter().map(cell).collect(),
            rows: rows.into_iter().map(|(_, b, t)| (b, t)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connectivity_counts() {
        assert_eq!(Connectivity::Faces6.offsets().len(), 6);
        assert_eq!(Connectivity::Edges18.offsets().len(), 18);
        assert_eq!(Connectivity::Corners26.offsets().len(), 26);
    }

    #[test]
    fn labels_diagonal_depends_on_connectivity() {
        // two voxels touching at a corner, one isolated voxel
        let g = MaskGeometry::from_ijk([4, 4, 4], vec![[0, 0, 0], [1, 1, 1], [3, 3, 3], [3, 3, 2]])
            .unwrap();
        let active = [true; 4];
        let (l6, s6) = label_components(&g.neighbours(Connectivity::Faces6), &active).unwrap();
        assert_eq!(s6, vec![1, 1, 2]);
        assert_eq!(l6, vec![1, 2, 3, 3]);
        let (l26, s26) = label_components(&g.neighbours(Connectivity::Corners26), &active).unwrap();
        assert_eq!(s26, vec![2, 2]);
        assert_eq!(l26, vec![1, 1, 2, 2]);
        let mut p = vec![0; 4];
        let mut s = vec![0; 4];
        let vals = [1.0, 1.0, 1.0, 0.5];
        assert_eq!(
            max_cluster_size(
                |v| vals[v] >= 0.9,
                &g.neighbours(Connectivity::Corners26),
                &mut p,
                &mut s
            ),
            2
        );
        assert_eq!(
            max_cluster_size(
                |v| vals[v] >= 0.4,
                &g.neighbours(Connectivity::Faces6),
                &mut p,
                &mut s
            ),
            2
        );
        assert_eq!(
            max_cluster_size(
                |v| vals[v] >= 2.0,
                &g.neighbours(Connectivity::Faces6),
                &mut p,
                &mut s
            ),
            0
        );
    }

    #[test]
    fn rejects_bad_geometry() {
        assert!(matches!(
            MaskGeometry::from_ijk([2, 2, 2], vec![[0, 0, 2]]),
            Err(StatsError::OutOfGrid { index: 0, .. })
        ));
        assert!(matches!(
            MaskGeometry::from_linear([2, 2, 2], &[1, 1]),
            Err(StatsError::DuplicateVoxel { index: 1 })
        ));
        let g = MaskGeometry::from_linear([3, 2, 2], &[5, 7]).unwrap();
        assert_eq!(g.ijk(), &[[2, 1, 0], [1, 0, 1]]);
        assert_eq!(g.linear(1), 7);
    }
}
