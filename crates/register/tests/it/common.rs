use cbflow_image::{Grid, Interp, Volume, read, resample_mapped};
use cbflow_register::AffineTransform;
use nalgebra::Matrix4;
use ndarray::Array3;

/// A file of the test data by its path in `shared/data`, read (`cbflow_testdata::resource`:
/// the resource directory cbflow reads, else `shared/data`).
pub fn load(rel: &str) -> Volume {
    let p = cbflow_testdata::resource(rel);
    read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

pub fn mni_t1() -> Volume {
    load("templates/fsl_mni152nlin6asym_2mm/MNI152_T1_2mm.nii.gz")
}

pub fn mni_mask() -> Array3<bool> {
    let m = load("templates/fsl_mni152nlin6asym_2mm/MNI152_T1_2mm_brain_mask.nii.gz");
    m.frame(0).mapv(|v| v > 0.5)
}

/// Mean |a(x) - b(x)| (mm) over the world positions of the true voxels of `mask` on `grid`.
pub fn mean_displacement(
    a: &AffineTransform,
    b: &AffineTransform,
    grid: &Grid,
    mask: &Array3<bool>,
) -> f64 {
    let (mut s, mut n) = (0.0, 0usize);
    for ((i, j, k), &m) in mask.indexed_iter() {
        if m {
            let x = grid.voxel_to_world([i as f64, j as f64, k as f64]);
            let (p, q) = (a.map_point(x), b.map_point(x));
            s += ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2)).sqrt();
            n += 1;
        }
    }
    s / n as f64
}

/// A grid of `dims` with isotropic voxels `vox` (mm) whose centre is at world `centre`.
pub fn centred_grid(dims: [usize; 3], vox: f64, centre: [f64; 3]) -> Grid {
    let mut a = Matrix4::identity() * vox;
    a[(3, 3)] = 1.0;
    for c in 0..3 {
        a[(c, 3)] = centre[c] - vox * (dims[c] as f64 - 1.0) / 2.0;
    }
    Grid::new(dims, a).unwrap()
}

/// World centre of a grid.
pub fn grid_centre(g: &Grid) -> [f64; 3] {
    g.voxel_to_world([
        (g.dims[0] - 1) as f64 / 2.0,
        (g.dims[1] - 1) as f64 / 2.0,
        (g.dims[2] - 1) as f64 / 2.0,
    ])
}

/// The image seen through `t` (fixed → moving): `moving(y) = fixed(t⁻¹ y)` on `grid`.
pub fn simulate_moving(fixed: &Volume, t: &AffineTransform, grid: &Grid) -> Volume {
    let inv = t.inverse().unwrap();
    resample_mapped(fixed, grid, Interp::Linear, &|y| inv.map_point(y)).unwrap()
}
