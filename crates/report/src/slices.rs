//! Slices of 3D volumes as RGB pictures: reorientation to the closest RAS axes, grey and
//! colour layers, label contours, and mosaics of several slices.
//!
//! Display conventions (as nilearn's): neurological (the subject's left on the viewer's left),
//! anterior up in axial slices, superior up in coronal and sagittal slices, anterior to the
//! right in sagittal slices.

use cbflow_image::Volume;
use nalgebra::{Matrix4, Vector4};
use ndarray::{Array3, Axis};

use crate::encode::RgbImage;

/// A 3D array reoriented so that voxel axes point (approximately) to R, A, S, with its
/// voxel-to-world affine and voxel sizes.
#[derive(Debug, Clone)]
pub struct Canonical {
    /// Values `[i, j, k]`, `i` towards the right, `j` anterior, `k` superior.
    pub data: Array3<f32>,
    /// Voxel → world (mm) of `data`.
    pub affine: Matrix4<f64>,
    /// Voxel sizes (mm) along `i`, `j`, `k`.
    pub voxel_mm: [f64; 3],
}

/// Reorients the first frame of `vol` to the closest RAS voxel axes (permutation and flips
/// only, no resampling), like nibabel's `as_closest_canonical`.
pub fn canonical(vol: &Volume) -> Canonical {
    let a = vol.affine;
    let frame = if vol.data.ndim() == 4 {
        vol.data.index_axis(Axis(3), 0).to_owned()
    } else {
        vol.data.clone()
    };
    let mut data = frame
        .into_dimensionality::<ndarray::Ix3>()
        .unwrap_or_else(|_| Array3::zeros((1, 1, 1)));
    // world axis of each voxel axis and its sign
    let mut used = [false; 3];
    let mut world_of = [0usize; 3];
    let mut sign = [1.0f64; 3];
    for vox in 0..3 {
        let mut best = (f64::MIN, 0usize);
        for w in 0..3 {
            if !used[w] && a[(w, vox)].abs() > best.0 {
                best = (a[(w, vox)].abs(), w);
            }
        }
        used[best.1] = true;
        world_of[vox] = best.1;
        sign[vox] = if a[(best.1, vox)] < 0.0 { -1.0 } else { 1.0 };
    }
    let dims = data.shape().to_vec();
    // perm[w] = the old voxel axis that points along world axis w
    let mut perm = [0usize; 3];
    for vox in 0..3 {
        perm[world_of[vox]] = vox;
    }
    // P maps new voxel indices to old voxel indices
    let mut p = Matrix4::<f64>::zeros();
    p[(3, 3)] = 1.0;
    for w in 0..3 {
        let old = perm[w];
        if sign[old] < 0.0 {
            p[(old, w)] = -1.0;
            p[(old, 3)] = (dims[old] - 1) as f64;
        } else {
            p[(old, w)] = 1.0;
        }
    }
    for old in 0..3 {
        if sign[old] < 0.0 {
            data.invert_axis(Axis(old));
        }
    }
    let data = data.permuted_axes(perm).as_standard_layout().to_owned();
    let affine = a * p;
    let voxel_mm = [0, 1, 2]
        .map(|c| (affine[(0, c)].powi(2) + affine[(1, c)].powi(2) + affine[(2, c)].powi(2)).sqrt());
    Canonical {
        data,
        affine,
        voxel_mm,
    }
}

impl Canonical {
    /// Fractional voxel index of a world point (mm).
    pub fn world_to_voxel(&self, p: [f64; 3]) -> [f64; 3] {
        let inv = self.affine.try_inverse().unwrap_or_else(Matrix4::identity);
        let v = inv * Vector4::new(p[0], p[1], p[2], 1.0);
        [v[0], v[1], v[2]]
    }

    /// World coordinate (mm) along the axis normal to `orient` of slice `index`.
    pub fn slice_mm(&self, orient: Orient, index: usize) -> f64 {
        let ax = orient.axis();
        let mut v = Vector4::new(0.0, 0.0, 0.0, 1.0);
        v[ax] = index as f64;
        (self.affine * v)[ax]
    }
}

/// The three slice orientations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orient {
    /// Fixed `x` (sagittal).
    Sagittal,
    /// Fixed `y` (coronal).
    Coronal,
    /// Fixed `z` (axial).
    Axial,
}

impl Orient {
    /// The canonical voxel axis held fixed.
    pub fn axis(self) -> usize {
        match self {
            Orient::Sagittal => 0,
            Orient::Coronal => 1,
            Orient::Axial => 2,
        }
    }
    /// The letter used in captions (`x`, `y`, `z`).
    pub fn letter(self) -> &'static str {
        ["x", "y", "z"][self.axis()]
    }
    /// (horizontal, vertical) canonical axes of the displayed slice.
    fn plane(self) -> (usize, usize) {
        match self {
            Orient::Sagittal => (1, 2),
            Orient::Coronal => (0, 2),
            Orient::Axial => (0, 1),
        }
    }
}

/// A colour map: piecewise linear between anchors at `t = 0 .. 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmap {
    /// Black → white.
    Gray,
    /// Perceptual black → purple → orange → yellow (an approximation of matplotlib's inferno),
    /// for CBF.
    Inferno,
    /// FSL's red → yellow, for positive statistics.
    RedYellow,
    /// FSL's blue → light blue, for negative statistics.
    BlueLightBlue,
}

impl Cmap {
    fn anchors(self) -> &'static [[u8; 3]] {
        match self {
            Cmap::Gray => &[[0, 0, 0], [255, 255, 255]],
            Cmap::Inferno => &[
                [0, 0, 4],
                [40, 11, 84],
                [101, 21, 110],
                [159, 42, 99],
                [212, 72, 66],
                [245, 125, 21],
                [250, 193, 39],
                [252, 255, 164],
            ],
            Cmap::RedYellow => &[[200, 0, 0], [255, 128, 0], [255, 255, 0]],
            Cmap::BlueLightBlue => &[[0, 0, 220], [0, 128, 255], [120, 230, 255]],
        }
    }

    /// Colour at `t` (clamped to `[0, 1]`).
    pub fn at(self, t: f64) -> [u8; 3] {
        let a = self.anchors();
        let t = if t.is_finite() {
            t.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let x = t * (a.len() - 1) as f64;
        let i = (x.floor() as usize).min(a.len() - 2);
        let f = x - i as f64;
        [0, 1, 2].map(|c| (a[i][c] as f64 * (1.0 - f) + a[i + 1][c] as f64 * f).round() as u8)
    }

    /// A CSS `linear-gradient` of this map (for HTML colour bars).
    pub fn css_gradient(self) -> String {
        let a = self.anchors();
        let stops: Vec<String> = a
            .iter()
            .map(|c| format!("rgb({},{},{})", c[0], c[1], c[2]))
            .collect();
        format!("linear-gradient(to right, {})", stops.join(", "))
    }
}

/// One layer of a [`Scene`]; all layers of a scene share one canonical grid.
#[derive(Debug, Clone)]
pub enum Layer {
    /// Values mapped through `cmap` between `lo` and `hi`; voxels where `show` is false (when
    /// given) are left to the layers below.
    Map {
        /// Values.
        data: Array3<f32>,
        /// Value shown with the first colour.
        lo: f64,
        /// Value shown with the last colour.
        hi: f64,
        /// Colour map.
        cmap: Cmap,
        /// Where to draw (all voxels when `None`).
        show: Option<Array3<bool>>,
    },
    /// Outlines of the regions of a label image (0 = background), drawn one pixel wide.
    Contour {
        /// Labels.
        labels: Array3<i32>,
        /// Line colour.
        colour: [u8; 3],
    },
}

/// Layers on one grid, drawn bottom to top.
#[derive(Debug, Clone)]
pub struct Scene {
    /// Grid shape `[nx, ny, nz]` (canonical).
    pub dims: [usize; 3],
    /// Voxel sizes (mm).
    pub voxel_mm: [f64; 3],
    /// The layers.
    pub layers: Vec<Layer>,
}

impl Scene {
    /// An empty scene on the grid of `c`.
    pub fn on(c: &Canonical) -> Self {
        let s = c.data.shape();
        Self {
            dims: [s[0], s[1], s[2]],
            voxel_mm: c.voxel_mm,
            layers: Vec::new(),
        }
    }

    /// Adds a layer (builder style).
    pub fn with(mut self, layer: Layer) -> Self {
        self.layers.push(layer);
        self
    }

    /// Pixel size of one voxel (horizontal, vertical) for a slice `orient`, with `px_per_mm`
    /// pixels per millimetre, at least 1.
    pub fn pixel_scale(&self, orient: Orient, px_per_mm: f64) -> (usize, usize) {
        let (h, v) = orient.plane();
        let s = |a: usize| ((self.voxel_mm[a] * px_per_mm).round() as usize).max(1);
        (s(h), s(v))
    }

    /// Size in pixels of a rendered slice.
    pub fn slice_size(&self, orient: Orient, px_per_mm: f64) -> (usize, usize) {
        let (h, v) = orient.plane();
        let (sx, sy) = self.pixel_scale(orient, px_per_mm);
        (self.dims[h] * sx, self.dims[v] * sy)
    }

    /// Renders slice `index` of orientation `orient`, each voxel an integer block of pixels.
    pub fn render(&self, orient: Orient, index: usize, px_per_mm: f64) -> RgbImage {
        let (h, v) = orient.plane();
        let ax = orient.axis();
        let (sx, sy) = self.pixel_scale(orient, px_per_mm);
        let (nh, nv) = (self.dims[h], self.dims[v]);
        let index = index.min(self.dims[ax].saturating_sub(1));
        let mut img = RgbImage::new(nh * sx, nv * sy, [0, 0, 0]);
        // voxel index of display cell (col, row): vertical axis points up
        let vox = |col: usize, row: usize| -> [usize; 3] {
            let mut p = [0usize; 3];
            p[ax] = index;
            p[h] = col;
            p[v] = nv - 1 - row;
            p
        };
        let mut cells = vec![[0u8; 3]; nh * nv];
        for layer in &self.layers {
            if let Layer::Map {
                data,
                lo,
                hi,
                cmap,
                show,
            } = layer
            {
                for row in 0..nv {
                    for col in 0..nh {
                        let p = vox(col, row);
                        if let Some(m) = show
                            && !m[p]
                        {
                            continue;
                        }
                        let x = data[p] as f64;
                        let t = if hi > lo { (x - lo) / (hi - lo) } else { 0.0 };
                        cells[row * nh + col] = cmap.at(t);
                    }
                }
            }
        }
        for y in 0..nv * sy {
            for x in 0..nh * sx {
                img.put(x, y, cells[(y / sy) * nh + x / sx]);
            }
        }
        for layer in &self.layers {
            if let Layer::Contour { labels, colour } = layer {
                let lab = |x: usize, y: usize| labels[vox(x / sx, y / sy)];
                for y in 0..nv * sy {
                    for x in 0..nh * sx {
                        let l = lab(x, y);
                        if l == 0 {
                            continue;
                        }
                        let edge = x == 0
                            || y == 0
                            || x + 1 == nh * sx
                            || y + 1 == nv * sy
                            || lab(x + 1, y) != l
                            || lab(x - 1, y) != l
                            || lab(x, y + 1) != l
                            || lab(x, y - 1) != l;
                        if edge {
                            img.put(x, y, *colour);
                        }
                    }
                }
            }
        }
        img
    }

    /// Several slices side by side in rows of `columns`, separated by `gap` black pixels.
    pub fn mosaic(
        &self,
        orient: Orient,
        indices: &[usize],
        px_per_mm: f64,
        columns: usize,
    ) -> RgbImage {
        let gap = 2;
        let (w, h) = self.slice_size(orient, px_per_mm);
        let columns = columns.max(1).min(indices.len().max(1));
        let rows = indices.len().div_ceil(columns).max(1);
        let mut out = RgbImage::new(
            columns * w + (columns - 1) * gap,
            rows * h + (rows - 1) * gap,
            [0, 0, 0],
        );
        for (n, &i) in indices.iter().enumerate() {
            let img = self.render(orient, i, px_per_mm);
            out.blit(&img, (n % columns) * (w + gap), (n / columns) * (h + gap));
        }
        out
    }
}

/// `n` slice indices spread evenly through the part of axis `orient` where `mask` has voxels
/// (the outer 8 % of that extent on each side left out); the whole axis when `mask` is empty.
pub fn spread_slices(mask: &Array3<bool>, orient: Orient, n: usize) -> Vec<usize> {
    let ax = orient.axis();
    let len = mask.shape()[ax];
    let mut lo = usize::MAX;
    let mut hi = 0usize;
    for (i, plane) in mask.axis_iter(Axis(ax)).enumerate() {
        if plane.iter().any(|&b| b) {
            lo = lo.min(i);
            hi = hi.max(i);
        }
    }
    if lo == usize::MAX {
        lo = 0;
        hi = len.saturating_sub(1);
    }
    let span = (hi - lo) as f64;
    let (a, b) = (lo as f64 + 0.08 * span, hi as f64 - 0.08 * span);
    if n <= 1 {
        return vec![((a + b) / 2.0).round() as usize];
    }
    let mut v: Vec<usize> = (0..n)
        .map(|t| (a + (b - a) * t as f64 / (n - 1) as f64).round() as usize)
        .collect();
    v.dedup();
    v
}

/// Robust display window: the `lo_q` and `hi_q` quantiles of the finite values where `mask`
/// is true (all finite values when no voxel is in the mask).
pub fn window(data: &Array3<f32>, mask: Option<&Array3<bool>>, lo_q: f64, hi_q: f64) -> (f64, f64) {
    let mut v: Vec<f32> = match mask {
        Some(m) => data
            .iter()
            .zip(m.iter())
            .filter(|(x, b)| **b && x.is_finite())
            .map(|(x, _)| *x)
            .collect(),
        None => Vec::new(),
    };
    if v.is_empty() {
        v = data.iter().copied().filter(|x| x.is_finite()).collect();
    }
    if v.is_empty() {
        return (0.0, 1.0);
    }
    v.sort_by(f32::total_cmp);
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize] as f64;
    let (lo, hi) = (q(lo_q), q(hi_q));
    if hi > lo { (lo, hi) } else { (lo, lo + 1.0) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Matrix4;
    use ndarray::ArrayD;

    #[test]
    fn canonical_undoes_flips_and_permutations() {
        // a LAS-like grid with a permutation: voxel axis 0 → -x, 1 → z, 2 → y
        let dims = (4, 3, 5);
        let mut a = Matrix4::<f64>::zeros();
        a[(0, 0)] = -2.0;
        a[(2, 1)] = 3.0;
        a[(1, 2)] = 2.5;
        a[(0, 3)] = 10.0;
        a[(1, 3)] = -5.0;
        a[(2, 3)] = 7.0;
        a[(3, 3)] = 1.0;
        let data = ArrayD::from_shape_fn(vec![dims.0, dims.1, dims.2], |ix| {
            (ix[0] * 100 + ix[1] * 10 + ix[2]) as f32
        });
        let vol = Volume::new(data.clone(), a).unwrap();
        let c = canonical(&vol);
        assert_eq!(c.data.shape(), &[4, 5, 3]);
        assert_eq!(c.voxel_mm, [2.0, 2.5, 3.0]);
        // every canonical voxel has the value of the original voxel at the same world point
        let inv = a.try_inverse().unwrap();
        for i in 0..4 {
            for j in 0..5 {
                for k in 0..3 {
                    let w = c.affine * Vector4::new(i as f64, j as f64, k as f64, 1.0);
                    let o = inv * w;
                    let o = [0, 1, 2].map(|d| o[d].round() as usize);
                    assert_eq!(c.data[[i, j, k]], data[[o[0], o[1], o[2]]]);
                    // axes point to R, A, S
                }
            }
        }
        for d in 0..3 {
            assert!(c.affine[(d, d)] > 0.0);
        }
    }

    #[test]
    fn axial_render_puts_anterior_up_and_right_right() {
        let mut d = Array3::<f32>::zeros((4, 6, 2));
        d[[3, 5, 1]] = 1.0; // right, anterior
        let c = Canonical {
            data: d.clone(),
            affine: Matrix4::identity(),
            voxel_mm: [1.0; 3],
        };
        let s = Scene::on(&c).with(Layer::Map {
            data: d,
            lo: 0.0,
            hi: 1.0,
            cmap: Cmap::Gray,
            show: None,
        });
        let img = s.render(Orient::Axial, 1, 2.0);
        assert_eq!((img.width, img.height), (8, 12));
        // top-right block white, bottom-left black
        assert_eq!(img.get(7, 0), [255, 255, 255]);
        assert_eq!(img.get(6, 1), [255, 255, 255]);
        assert_eq!(img.get(0, 11), [0, 0, 0]);
        assert_eq!(img.get(5, 0), [0, 0, 0]);
    }

    #[test]
    fn contour_draws_only_the_boundary() {
        let mut l = Array3::<i32>::zeros((7, 7, 1));
        for i in 2..5 {
            for j in 2..5 {
                l[[i, j, 0]] = 1;
            }
        }
        let c = Canonical {
            data: Array3::zeros((7, 7, 1)),
            affine: Matrix4::identity(),
            voxel_mm: [1.0; 3],
        };
        let s = Scene::on(&c).with(Layer::Contour {
            labels: l,
            colour: [255, 0, 0],
        });
        let img = s.render(Orient::Axial, 0, 1.0);
        // centre of the square is not an edge, its border is
        assert_eq!(img.get(3, 3), [0, 0, 0]);
        assert_eq!(img.get(2, 3), [255, 0, 0]);
        assert_eq!(img.get(0, 0), [0, 0, 0]);
    }

    #[test]
    fn spread_slices_stays_inside_the_mask_extent() {
        let mut m = Array3::from_elem((5, 5, 40), false);
        for k in 10..30 {
            m[[2, 2, k]] = true;
        }
        let s = spread_slices(&m, Orient::Axial, 6);
        assert_eq!(s.len(), 6);
        assert!(s.iter().all(|&k| (10..30).contains(&k)), "{s:?}");
        assert!(s.windows(2).all(|w| w[0] < w[1]));
    }
}
