//! The template space the truth lives in: tissue probabilities, labels and a brain mask.

use std::path::Path;

use cbflow_image::{Grid, Volume};
use nalgebra::Matrix4;
use ndarray::{Array3, Zip};

use crate::{Error, Result};

/// AAL3 labels of the anterior cingulate subdivisions (Rolls et al. 2020): `ACC_sub_L/R`
/// (subgenual, 151/152), `ACC_pre_L/R` (pregenual, 153/154), `ACC_sup_L/R` (supracallosal,
/// dorsal, 155/156). The phantom uses the same numbers so one ROI definition serves both.
pub const ACC_LABELS: [i32; 6] = [151, 152, 153, 154, 155, 156];

/// Template space: grid plus tissue maps, all on the same grid.
#[derive(Debug, Clone)]
pub struct Space {
    /// Name written into derivative names (`space-<name>`).
    pub name: String,
    /// The grid of every map below.
    pub grid: Grid,
    /// Grey-matter probability, 0–1.
    pub gm: Array3<f32>,
    /// White-matter probability, 0–1.
    pub wm: Array3<f32>,
    /// CSF probability, 0–1.
    pub csf: Array3<f32>,
    /// Non-brain tissue inside the head (scalp, skull marrow), 0–1: visible on the T1w only.
    pub scalp: Array3<f32>,
    /// The share of each voxel at the brain's edge, inside the skull, that the tissue priors
    /// leave unassigned (dura, meninges, vessels, the partial volume of the inner table), 0–1:
    /// visible on the T1w only, at CSF's intensity. Zero in the phantom, whose tissue fractions
    /// sum to one inside its skull.
    pub meninges: Array3<f32>,
    /// Tissue intensities of the synthetic T1w.
    pub contrast: T1wContrast,
    /// Atlas labels (AAL3 numbering for the ACC; 0 elsewhere in the phantom).
    pub labels: Array3<i32>,
}

/// Ellipsoid in world mm: centre and semi-axes.
#[derive(Debug, Clone, Copy)]
struct Ellipsoid {
    c: [f64; 3],
    r: [f64; 3],
}

impl Ellipsoid {
    const fn new(c: [f64; 3], r: [f64; 3]) -> Self {
        Self { c, r }
    }
    fn rho(&self, p: [f64; 3]) -> f64 {
        (0..3)
            .map(|a| ((p[a] - self.c[a]) / self.r[a]).powi(2))
            .sum::<f64>()
            .sqrt()
    }
    fn contains(&self, p: [f64; 3]) -> bool {
        self.rho(p) <= 1.0
    }
}

const BRAIN: Ellipsoid = Ellipsoid::new([0.0, -17.0, 14.0], [68.0, 86.0, 62.0]);
const VENTRICLES: [Ellipsoid; 2] = [
    Ellipsoid::new([-9.0, -12.0, 18.0], [5.0, 22.0, 8.0]),
    Ellipsoid::new([9.0, -12.0, 18.0], [5.0, 22.0, 8.0]),
];
const DEEP_GM: [Ellipsoid; 4] = [
    Ellipsoid::new([-12.0, -18.0, 6.0], [7.0, 10.0, 7.0]),
    Ellipsoid::new([12.0, -18.0, 6.0], [7.0, 10.0, 7.0]),
    Ellipsoid::new([-14.0, 10.0, 8.0], [5.0, 9.0, 8.0]),
    Ellipsoid::new([14.0, 10.0, 8.0], [5.0, 9.0, 8.0]),
];
/// Phantom ACC subregions in the order of [`ACC_LABELS`], placed where AAL3 has them in MNI space.
const ACC: [Ellipsoid; 6] = [
    Ellipsoid::new([-5.0, 24.0, -8.0], [4.5, 8.0, 6.0]),
    Ellipsoid::new([5.0, 24.0, -8.0], [4.5, 8.0, 6.0]),
    Ellipsoid::new([-5.0, 40.0, 8.0], [4.5, 7.0, 9.0]),
    Ellipsoid::new([5.0, 40.0, 8.0], [4.5, 7.0, 9.0]),
    Ellipsoid::new([-5.0, 16.0, 30.0], [4.5, 13.0, 6.0]),
    Ellipsoid::new([5.0, 16.0, 30.0], [4.5, 13.0, 6.0]),
];

/// Tissue class of one point of the phantom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tissue {
    Outside,
    Scalp,
    Csf,
    Gm,
    Wm,
}

/// Where the grey/white boundary lies, as a fraction of the brain radius, in the direction of
/// `p`: a folded surface (gyri) so that nonlinear registration has structure to match.
fn wm_radius(p: [f64; 3]) -> f64 {
    let d: Vec<f64> = (0..3).map(|a| (p[a] - BRAIN.c[a]) / BRAIN.r[a]).collect();
    let n = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt().max(1e-9);
    let az = d[1].atan2(d[0]);
    let el = (d[2] / n).clamp(-1.0, 1.0).asin();
    0.84 * (1.0 + 0.055 * (7.0 * az).sin() * (6.0 * el).sin())
}

fn phantom_tissue(p: [f64; 3]) -> (Tissue, i32) {
    for (e, label) in ACC.iter().zip(ACC_LABELS) {
        if e.contains(p) {
            return (Tissue::Gm, label);
        }
    }
    let rho = BRAIN.rho(p);
    let t = if rho > 1.22 {
        Tissue::Outside
    } else if rho > 1.12 {
        Tissue::Scalp
    } else if rho > 1.0 {
        if rho > 1.06 {
            Tissue::Outside
        } else {
            Tissue::Csf
        }
    } else if VENTRICLES.iter().any(|e| e.contains(p)) {
        Tissue::Csf
    } else if DEEP_GM.iter().any(|e| e.contains(p)) || rho > wm_radius(p) {
        Tissue::Gm
    } else {
        Tissue::Wm
    };
    (t, 0)
}

/// Scalp around a brain given by its tissue priors, for a T1w with a head: the intracranial
/// volume (GM + WM + CSF > ½, holes filled) grown by a 6 mm dark shell (the skull: no signal on
/// a T1w) and then a 6 mm bright one (scalp fat and muscle), both rounded by smoothing. Not the
/// template's own head, so that registering a synthetic T1w to the template must find the brain.
///
/// Also the meninges ([`Space::meninges`]): within the intracranial volume grown by 2 mm, the
/// part of each voxel the priors leave unassigned. At the brain's edge the SPM12 priors sum to
/// about ¾ (GM 0.41, WM 0.10, CSF 0.22 where GM + WM is ½), and a T1w there is not black: fitted
/// over that band, the unassigned part has 0.26–0.28 of white matter's intensity in both
/// MNI152 templates (FSL's and SPM's avg152T1), about CSF's. Left black, the synthetic brain's
/// edge looked a voxel inside its truth to any registration matching intensities.
fn head_shell(
    gm: &Array3<f32>,
    wm: &Array3<f32>,
    csf: &Array3<f32>,
    vox: [f64; 3],
) -> (Array3<f32>, Array3<f32>) {
    use cbflow_image::masks;
    let ic = Zip::from(gm)
        .and(wm)
        .and(csf)
        .map_collect(|&g, &w, &c| g + w + c > 0.5);
    let ic = masks::fill_holes(&masks::largest_component(&ic));
    let step = vox.iter().copied().fold(f64::INFINITY, f64::min);
    let grow = |mm: f64| -> Array3<f32> {
        let n = (mm / step).round().max(1.0) as usize;
        let d = masks::dilate(&ic, n).mapv(|b| if b { 1.0f32 } else { 0.0 });
        cbflow_image::gaussian_smooth3(d.view(), vox.map(|v| 0.6 * step / v))
    };
    let (inner, outer) = (grow(6.0), grow(12.0));
    let scalp = Zip::from(&inner)
        .and(&outer)
        .map_collect(|&a, &b| (b - a.max(0.0)).clamp(0.0, 1.0));
    let dura = grow(2.0);
    let meninges = Zip::from(gm)
        .and(wm)
        .and(csf)
        .and(&dura)
        .and(&scalp)
        .map_collect(|&g, &w, &c, &d, &s| {
            let unassigned = (1.0 - g - w - c).clamp(0.0, 1.0);
            (unassigned * d.clamp(0.0, 1.0)).min(1.0 - s).max(0.0)
        });
    (scalp, meninges)
}

impl Space {
    /// The built-in phantom on a 3 mm grid (57×67×55, RAS), tissue fractions from 3×3×3
    /// supersampling of each voxel.
    pub fn phantom() -> Self {
        let vs = 3.0;
        let mut affine = Matrix4::identity() * vs;
        affine[(3, 3)] = 1.0;
        affine[(0, 3)] = -84.0;
        affine[(1, 3)] = -120.0;
        affine[(2, 3)] = -66.0;
        let grid = Grid::new([57, 67, 55], affine).expect("phantom affine is invertible");
        let shape = (grid.dims[0], grid.dims[1], grid.dims[2]);
        let (mut gm, mut wm, mut csf, mut scalp) = (
            Array3::zeros(shape),
            Array3::zeros(shape),
            Array3::zeros(shape),
            Array3::zeros(shape),
        );
        let mut labels = Array3::zeros(shape);
        let sub = 3usize;
        let w = 1.0 / (sub * sub * sub) as f32;
        for ((i, j, k), l) in labels.indexed_iter_mut() {
            let mut acc_votes = [0u8; 6];
            for a in 0..sub {
                for b in 0..sub {
                    for c in 0..sub {
                        let off = |n: usize| (n as f64 + 0.5) / sub as f64 - 0.5;
                        let p = grid.voxel_to_world([
                            i as f64 + off(a),
                            j as f64 + off(b),
                            k as f64 + off(c),
                        ]);
                        let (t, label) = phantom_tissue(p);
                        match t {
                            Tissue::Gm => gm[[i, j, k]] += w,
                            Tissue::Wm => wm[[i, j, k]] += w,
                            Tissue::Csf => csf[[i, j, k]] += w,
                            Tissue::Scalp => scalp[[i, j, k]] += w,
                            Tissue::Outside => {}
                        }
                        if label > 0 {
                            acc_votes[(label - 151) as usize] += 1;
                        }
                    }
                }
            }
            let (best, votes) = acc_votes
                .iter()
                .enumerate()
                .max_by_key(|(_, v)| **v)
                .expect("six labels");
            if *votes as usize * 2 > sub * sub * sub {
                *l = ACC_LABELS[best];
            }
        }
        Self {
            name: "phantom".into(),
            grid,
            gm,
            wm,
            meninges: Array3::zeros(shape),
            contrast: T1wContrast::PHANTOM,
            csf,
            scalp,
            labels,
        }
    }

    /// The MNI152NLin6Asym 2 mm space from a resource directory laid out like `shared/data`:
    /// SPM12 grey/white/CSF priors (`templates/spm12_2mm`) and AAL3 (`atlases/aal3/AAL3v1.nii.gz`).
    pub fn from_resources(dir: &Path) -> Result<Self> {
        let read = |rel: &str| -> Result<Volume> {
            let path = dir.join(rel);
            cbflow_image::read(&path).map_err(|source| Error::Resource { path, source })
        };
        let gm_v = read("templates/spm12_2mm/grey.nii.gz")?;
        let wm_v = read("templates/spm12_2mm/white.nii.gz")?;
        let csf_v = read("templates/spm12_2mm/csf.nii.gz")?;
        let aal = read("atlases/aal3/AAL3v1.nii.gz")?;
        let grid = gm_v.grid();
        for (name, v) in [("white", &wm_v), ("csf", &csf_v), ("AAL3", &aal)] {
            if v.grid().dims != grid.dims || (v.affine - grid.affine).abs().max() > 1e-3 {
                return Err(Error::Invalid(format!(
                    "{name} is not on the grid of the SPM12 grey prior"
                )));
            }
        }
        // SPM priors are probabilities (0–1, possibly stored scaled): normalise their sum to ≤ 1.
        let mut gm = gm_v.frame(0).to_owned();
        let mut wm = wm_v.frame(0).to_owned();
        let mut csf = csf_v.frame(0).to_owned();
        let max = gm
            .iter()
            .chain(wm.iter())
            .chain(csf.iter())
            .fold(0f32, |m, &v| m.max(v));
        let scale = if max > 1.5 { 1.0 / max } else { 1.0 };
        Zip::from(&mut gm)
            .and(&mut wm)
            .and(&mut csf)
            .for_each(|g, w, c| {
                *g *= scale;
                *w *= scale;
                *c *= scale;
                let s = *g + *w + *c;
                if s > 1.0 {
                    *g /= s;
                    *w /= s;
                    *c /= s;
                }
            });
        let labels = aal.frame(0).mapv(|v| v.round() as i32);
        let (scalp, meninges) = head_shell(&gm, &wm, &csf, grid.voxel_size());
        Ok(Self {
            name: "MNI152NLin6Asym".into(),
            grid,
            gm,
            wm,
            csf,
            scalp,
            meninges,
            contrast: T1wContrast::MNI,
            labels,
        })
    }

    /// Binary brain mask: GM + WM probability above one half.
    pub fn brain_mask(&self) -> Array3<bool> {
        Zip::from(&self.gm)
            .and(&self.wm)
            .map_collect(|g, w| g + w > 0.5)
    }

    /// Fraction of each voxel that belongs to the ACC labels (0 or 1 per voxel here).
    pub fn acc_mask(&self) -> Array3<bool> {
        self.labels.mapv(|l| ACC_LABELS.contains(&l))
    }

    /// A synthetic T1-weighted contrast of this space (noise-free), e.g. the phantom template.
    pub fn t1w(&self) -> Array3<f32> {
        let T1wContrast {
            gm: cg,
            wm: cw,
            csf: cc,
            scalp: cs,
        } = self.contrast;
        let mut t1 = Array3::zeros(self.gm.raw_dim());
        Zip::from(&mut t1)
            .and(&self.gm)
            .and(&self.wm)
            .and(&self.csf)
            .and(&self.scalp)
            .and(&self.meninges)
            .for_each(|t, &g, &w, &c, &s, &m| *t = cg * g + cw * w + cc * (c + m) + cs * s);
        t1
    }
}

/// T1-weighted intensities of the synthetic tissues (arbitrary units).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct T1wContrast {
    /// Grey matter.
    pub gm: f32,
    /// White matter (the noise is a share of it).
    pub wm: f32,
    /// CSF, and the meninges.
    pub csf: f32,
    /// Scalp fat and muscle.
    pub scalp: f32,
}

impl T1wContrast {
    /// The phantom's: its T1w is its own template, so the contrast only has to tell the
    /// tissues apart (GM 0.65, CSF 0.18 of WM).
    pub const PHANTOM: Self = Self {
        gm: 550.0,
        wm: 850.0,
        csf: 150.0,
        scalp: 900.0,
    };

    /// The MNI space's, whose synthetic T1w is registered to a real template and must look
    /// like it: grey matter and CSF relative to white matter are the least-squares fit of
    /// `GM·g + WM·w + CSF·c` to the FSL MNI152 T1 over its intracranial voxels (SPM12 priors
    /// g + w + c > 0.9: GM 0.73, CSF 0.23 of WM; SPM's avg152T1 gives 0.73 and 0.26; the real
    /// MPRAGE of `shared/data/real-anat`, three intensity classes in its brain, GM 0.74). With
    /// the phantom's 0.65 and 0.18, and the meninges black, the synthetic brain's edge (tissue
    /// probability ½) had the intensity that the template has at probability ¾, so any
    /// registration that matched intensities put the subject's brain outline a voxel outside
    /// the template's (ANTs SyN and cbflow alike: brain Dice 0.93–0.94, nearly all of the
    /// disagreement outside the template brain; docs/validation.md).
    pub const MNI: Self = Self {
        gm: 620.0,
        wm: 850.0,
        csf: 195.0,
        scalp: 900.0,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phantom_has_acc_labels_inside_grey_matter() {
        let s = Space::phantom();
        for label in ACC_LABELS {
            let n = s.labels.iter().filter(|&&l| l == label).count();
            assert!(n >= 15, "label {label} has {n} voxels");
        }
        let gm_in_acc: Vec<f32> = s
            .labels
            .indexed_iter()
            .filter(|(_, l)| **l > 0)
            .map(|(ix, _)| s.gm[ix])
            .collect();
        let mean = gm_in_acc.iter().sum::<f32>() / gm_in_acc.len() as f32;
        assert!(
            mean > 0.8,
            "ACC voxels should be grey matter, mean GM {mean}"
        );
        let brain = s.brain_mask().iter().filter(|&&b| b).count() as f64 * 27.0 / 1000.0;
        // ellipsoid volume 4/3·π·68·86·62 mm³ ≈ 1519 cm³
        assert!(
            (brain - 1519.0).abs() / 1519.0 < 0.05,
            "brain volume {brain} cm³"
        );
        let gm = s.gm.sum() as f64 * 27.0 / 1000.0;
        assert!(gm > 300.0 && gm < 900.0, "GM volume {gm} cm³");
    }
}
