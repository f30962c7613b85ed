//! Exact k nearest neighbours of points in space, by a grid of cubic cells.
//!
//! A point's candidates are the points of the cells that meet the cube of half-side `r` around
//! it; `r` starts from the radius that would hold `k` points at the cloud's mean density and is
//! doubled until at least `k` candidates lie within `r`. Every point within `r` is then a
//! candidate, so the `k` nearest candidates (ordered by distance, then index) are the `k`
//! nearest points that a search over all points finds: the same neighbours, the same order.

use rayon::prelude::*;

use super::distance::dist;

/// The smallest and largest coordinate along each axis.
fn bounds(coords: &[[f64; 3]]) -> ([f64; 3], [f64; 3]) {
    let mut lo = [f64::INFINITY; 3];
    let mut hi = [f64::NEG_INFINITY; 3];
    for c in coords {
        for a in 0..3 {
            lo[a] = lo[a].min(c[a]);
            hi[a] = hi[a].max(c[a]);
        }
    }
    (lo, hi)
}

/// Points binned into cubic cells.
struct Cells {
    origin: [f64; 3],
    size: f64,
    dims: [usize; 3],
    /// Points of cell `c`: `points[start[c]..start[c + 1]]`.
    start: Vec<usize>,
    points: Vec<u32>,
}

impl Cells {
    fn new(coords: &[[f64; 3]], size: f64) -> Self {
        let (lo, hi) = bounds(coords);
        let dims = [0, 1, 2].map(|a| (((hi[a] - lo[a]) / size).floor() as usize + 1).max(1));
        let mut s = Self {
            origin: lo,
            size,
            dims,
            start: vec![0; dims[0] * dims[1] * dims[2] + 1],
            points: vec![0; coords.len()],
        };
        let cell: Vec<usize> = coords.iter().map(|c| s.flat(s.cell(c))).collect();
        for &c in &cell {
            s.start[c + 1] += 1;
        }
        for c in 1..s.start.len() {
            s.start[c] += s.start[c - 1];
        }
        let mut next = s.start.clone();
        for (i, &c) in cell.iter().enumerate() {
            s.points[next[c]] = i as u32;
            next[c] += 1;
        }
        s
    }

    /// The cell (clamped to the grid) holding position `p`.
    fn cell(&self, p: &[f64; 3]) -> [usize; 3] {
        [0, 1, 2].map(|a| {
            let c = ((p[a] - self.origin[a]) / self.size).floor();
            if c <= 0.0 {
                0
            } else {
                (c as usize).min(self.dims[a] - 1)
            }
        })
    }

    fn flat(&self, c: [usize; 3]) -> usize {
        (c[0] * self.dims[1] + c[1]) * self.dims[2] + c[2]
    }
}

/// The `k` nearest other points of every point (`coords` in mm, `k` < n), nearest first, ties
/// by index: neighbour indices and distances, each n × k row-major. In parallel over points.
pub(super) fn k_nearest(coords: &[[f64; 3]], k: usize) -> (Vec<u32>, Vec<f32>) {
    let n = coords.len();
    let (lo, hi) = bounds(coords);
    // the radius holding k points at the mean density of the bounding box (at least 1 mm)
    let volume: f64 = (0..3).map(|a| (hi[a] - lo[a]).max(1.0)).product();
    let r0 = (3.0 * (k as f64) * volume / (4.0 * std::f64::consts::PI * n as f64))
        .cbrt()
        .max(1e-6);
    let cells = Cells::new(coords, r0 / 2.0);
    let mut nb_idx = vec![0u32; n * k];
    let mut nb_dist = vec![0.0f32; n * k];
    nb_idx
        .par_chunks_mut(k)
        .zip(nb_dist.par_chunks_mut(k))
        .enumerate()
        .for_each_init(Vec::new, |cand: &mut Vec<(f64, u32)>, (i, (ri, rd))| {
            let ci = coords[i];
            let mut r = r0;
            loop {
                cand.clear();
                // a little wider than r, so that rounding cannot leave a point within r out
                let reach = r * (1.0 + 1e-9) + 1e-9;
                let a = cells.cell(&[ci[0] - reach, ci[1] - reach, ci[2] - reach]);
                let b = cells.cell(&[ci[0] + reach, ci[1] + reach, ci[2] + reach]);
                for x in a[0]..=b[0] {
                    for y in a[1]..=b[1] {
                        let row = cells.flat([x, y, a[2]]);
                        let span = cells.start[row]..cells.start[row + b[2] - a[2] + 1];
                        for &j in &cells.points[span] {
                            if j as usize != i {
                                cand.push((dist(&ci, &coords[j as usize]), j));
                            }
                        }
                    }
                }
                let within = cand.iter().filter(|c| c.0 <= r).count();
                if within >= k || cand.len() == n - 1 {
                    break;
                }
                r *= 2.0;
            }
            let cmp = |a: &(f64, u32), b: &(f64, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
            cand.select_nth_unstable_by(k - 1, cmp);
            cand.truncate(k);
            cand.sort_by(cmp);
            for (q, c) in cand.iter().enumerate() {
                ri[q] = c.1;
                rd[q] = c.0 as f32;
            }
        });
    (nb_idx, nb_dist)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The grid search finds what a search over all points finds, ties included: points on a
    /// lattice (many equal distances), a clustered cloud and a line.
    #[test]
    fn same_neighbours_as_brute_force() {
        let lattice: Vec<[f64; 3]> = (0..512)
            .map(|i| {
                [
                    (i % 8) as f64 * 4.0,
                    (i / 8 % 8) as f64 * 4.0,
                    (i / 64) as f64 * 4.0,
                ]
            })
            .collect();
        let cloud: Vec<[f64; 3]> = (0..300)
            .map(|i| {
                let t = i as f64;
                let c = if i % 3 == 0 { 50.0 } else { 0.0 };
                [
                    c + (t * 1.7).sin() * 9.0,
                    (t * 0.37).cos() * 4.0,
                    (t * 2.3).sin() * 0.5,
                ]
            })
            .collect();
        let line: Vec<[f64; 3]> = (0..100).map(|i| [i as f64, 0.0, 0.0]).collect();
        for (coords, k) in [(&lattice, 60), (&lattice, 511), (&cloud, 25), (&line, 7)] {
            let (idx, d) = k_nearest(coords, k);
            for i in 0..coords.len() {
                let mut all: Vec<(f64, u32)> = (0..coords.len())
                    .filter(|&j| j != i)
                    .map(|j| (dist(&coords[i], &coords[j]), j as u32))
                    .collect();
                all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                let want: Vec<u32> = all[..k].iter().map(|c| c.1).collect();
                assert_eq!(&idx[i * k..(i + 1) * k], &want[..], "point {i}, k {k}");
                let wd: Vec<f32> = all[..k].iter().map(|c| c.0 as f32).collect();
                assert_eq!(&d[i * k..(i + 1) * k], &wd[..]);
            }
        }
    }
}
