//! General linear model: design, contrast, voxelwise OLS t statistics, and the reduction used by
//! the permutation engine (Freedman–Lane).
//!
//! Model: `Y = X β + ε` with `Y` of shape (n, V) (subjects × masked voxels), `X` (n, p), and a
//! t contrast `c` (length p). `t = c'β̂ / sqrt(σ̂² c'(X'X)⁺c)`, `σ̂² = RSS / (n − rank X)`.
//!
//! For permutation, the design is split as in Winkler et al. (2014, Appendix A / Ridgway 2009):
//! the nuisance space is `Z = X C₀` with `C₀` an orthonormal basis of the null space of `c'`
//! (the model under `H₀: c'β = 0`). Freedman–Lane permutes the residuals `R_Z Y`; because
//! `H_Z Y ⊂ span(X)` drops out of both `c'β̂` and the residuals, the statistic of a shuffled
//! data set `P R_Z Y + H_Z Y` equals that of `P R_Z Y`, which is what the engine computes.
//!
//! References: Freedman, D. & Lane, D. (1983) J. Bus. Econ. Stat. 1(4), 292–298;
//! Winkler, A. M., Ridgway, G. R., Webster, M. A., Smith, S. M. & Nichols, T. E. (2014).
//! Permutation inference for the general linear model. NeuroImage 92, 381–397.

use nalgebra::{DMatrix, DVector};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

use crate::error::{Result, StatsError, check_finite, check_len};

/// A design matrix with one t contrast.
#[derive(Debug, Clone, PartialEq)]
pub struct GlmDesign {
    x: Array2<f64>,
    contrast: Array1<f64>,
    /// Column names, for reports (may be empty).
    pub names: Vec<String>,
}

impl GlmDesign {
    /// `x`: design matrix (n, p); `contrast`: length p. Errors if the shapes disagree, values are
    /// not finite, the contrast is zero, or the contrast is not estimable (not in the row space of
    /// `x`), or `n <= rank(x)` (no residual degrees of freedom).
    pub fn new(x: Array2<f64>, contrast: Array1<f64>) -> Result<Self> {
        let (n, p) = x.dim();
        check_len("contrast", p, contrast.len())?;
        if p == 0 {
            return Err(StatsError::Design {
                reason: "design matrix has no columns".into(),
            });
        }
        check_finite("design matrix", x.iter().copied())?;
        check_finite("contrast", contrast.iter().copied())?;
        if contrast.iter().all(|&c| c == 0.0) {
            return Err(StatsError::Design {
                reason: "contrast is all zeros".into(),
            });
        }
        let d = Self {
            x,
            contrast,
            names: Vec::new(),
        };
        let f = Factorised::new(&d)?;
        if n <= f.rank {
            return Err(StatsError::Design {
                reason: format!(
                    "{n} observations leave no residual degrees of freedom for rank {}",
                    f.rank
                ),
            });
        }
        Ok(d)
    }

    /// Intercept-only design (n, 1) with contrast `[1]`: the one-sample t test.
    pub fn one_sample(n: usize) -> Result<Self> {
        Self::new(Array2::ones((n, 1)), Array1::ones(1))
    }

    /// The design matrix (n, p).
    pub fn x(&self) -> ArrayView2<'_, f64> {
        self.x.view()
    }

    /// The contrast (p).
    pub fn contrast(&self) -> ArrayView1<'_, f64> {
        self.contrast.view()
    }

    /// Number of observations.
    pub fn n(&self) -> usize {
        self.x.nrows()
    }
}

/// SVD-based quantities of a design and contrast.
#[derive(Debug, Clone)]
pub(crate) struct Factorised {
    /// Rank of X.
    pub rank: usize,
    /// Orthonormal basis of span(X), (n, rank).
    pub q: DMatrix<f64>,
    /// `a = X (X'X)⁺ c` (n): `c'β̂ = a'Y`, `var(c'β̂) = σ² a'a`.
    pub a: DVector<f64>,
    /// Orthonormal basis of the nuisance space `X C₀` (n, r_z), possibly 0 columns.
    pub qz: DMatrix<f64>,
}

fn orth_basis(m: &DMatrix<f64>) -> (DMatrix<f64>, Vec<f64>, DMatrix<f64>) {
    // returns (U_r, s_r, V_r) of the thin SVD restricted to the numerical rank
    let (n, p) = m.shape();
    if p == 0 || n == 0 {
        return (DMatrix::zeros(n, 0), vec![], DMatrix::zeros(p, 0));
    }
    let svd = m.clone().svd(true, true);
    let u = svd.u.expect("svd u requested");
    let vt = svd.v_t.expect("svd v requested");
    let smax = svd.singular_values.iter().cloned().fold(0.0, f64::max);
    let tol = smax * (n.max(p) as f64) * f64::EPSILON * 10.0;
    let keep: Vec<usize> = (0..svd.singular_values.len())
        .filter(|&i| svd.singular_values[i] > tol)
        .collect();
    let ur = DMatrix::from_fn(n, keep.len(), |i, j| u[(i, keep[j])]);
    let vr = DMatrix::from_fn(p, keep.len(), |i, j| vt[(keep[j], i)]);
    let sr = keep.iter().map(|&i| svd.singular_values[i]).collect();
    (ur, sr, vr)
}

impl Factorised {
    pub(crate) fn new(d: &GlmDesign) -> Result<Self> {
        let (n, p) = d.x.dim();
        let x = DMatrix::from_fn(n, p, |i, j| d.x[[i, j]]);
        let c = DVector::from_iterator(p, d.contrast.iter().copied());
        let (u, s, v) = orth_basis(&x);
        let rank = s.len();
        if rank == 0 {
            return Err(StatsError::Design {
                reason: "design matrix is all zeros".into(),
            });
        }
        // estimability: c in row space of X
        let vc = v.transpose() * &c;
        let resid = &c - &v * &vc;
        if resid.norm() > 1e-8 * c.norm() {
            return Err(StatsError::Design {
                reason: "contrast is not estimable (not in the row space of the design)".into(),
            });
        }
        // a = U S^-1 V' c
        let mut w = vc.clone();
        for i in 0..rank {
            w[i] /= s[i];
        }
        let a = &u * w;
        // null space of c': columns of I - c c'/c'c with singular value ~1
        let qz = if p > 1 {
            let cc = c.dot(&c);
            let proj = DMatrix::<f64>::identity(p, p) - &c * c.transpose() / cc;
            let (c0, _, _) = orth_basis(&proj);
            let z = &x * c0;
            orth_basis(&z).0
        } else {
            DMatrix::zeros(n, 0)
        };
        Ok(Self { rank, q: u, a, qz })
    }
}

/// Voxelwise OLS fit for one contrast.
#[derive(Debug, Clone, PartialEq)]
pub struct GlmFit {
    /// Contrast estimate `c'β̂` per voxel (data units).
    pub effect: Array1<f64>,
    /// Its standard error per voxel.
    pub se: Array1<f64>,
    /// t statistic per voxel (0 where the residual variance is zero).
    pub t: Array1<f64>,
    /// Residual degrees of freedom `n − rank(X)`.
    pub df: f64,
}

/// Voxelwise OLS t statistics. `data`: (n, V) — rows are observations in design order, columns
/// masked voxels. Returns effect, SE, t and df (no permutation; see [`crate::permutation`]).
pub fn glm_fit(data: ArrayView2<'_, f32>, design: &GlmDesign) -> Result<GlmFit> {
    check_len("data rows", design.n(), data.nrows())?;
    check_finite("data", data.iter().map(|&v| v as f64))?;
    let f = Factorised::new(design)?;
    let n = design.n();
    let df = (n - f.rank) as f64;
    let y = data.mapv(|v| v as f64);
    let a = Array1::from_iter(f.a.iter().copied());
    let q = Array2::from_shape_fn((n, f.rank), |(i, j)| f.q[(i, j)]);
    let a2 = a.dot(&a);
    let effect = a.dot(&y);
    let proj = q.t().dot(&y);
    let ss = y.map_axis(Axis(0), |c| c.dot(&c));
    let p2 = proj.map_axis(Axis(0), |c| c.dot(&c));
    let mut se = Array1::zeros(y.ncols());
    let mut t = Array1::zeros(y.ncols());
    for v in 0..y.ncols() {
        let rss = (ss[v] - p2[v]).max(0.0);
        se[v] = (rss / df * a2).sqrt();
        t[v] = t_from_parts(effect[v], rss, ss[v], a2, df);
    }
    Ok(GlmFit { effect, se, t, df })
}

/// t from the numerator, residual sum of squares, total sum of squares, `a'a` and df; 0 when the
/// residual variance vanishes (relative to the total).
#[inline]
pub(crate) fn t_from_parts(num: f64, rss: f64, ss: f64, a2: f64, df: f64) -> f64 {
    if ss > 0.0 && rss > 1e-12 * ss {
        num / (rss / df * a2).sqrt()
    } else {
        0.0
    }
}

/// Residualise each column of `data` (n, V) on the nuisance space of `design` (Freedman–Lane
/// `R_Z Y`), in f64.
pub(crate) fn residualise_nuisance(data: ArrayView2<'_, f32>, f: &Factorised) -> Array2<f64> {
    let n = data.nrows();
    let mut w = data.mapv(|v| v as f64);
    if f.qz.ncols() > 0 {
        let qz = Array2::from_shape_fn((n, f.qz.ncols()), |(i, j)| f.qz[(i, j)]);
        let coef = qz.t().dot(&w);
        w -= &qz.dot(&coef);
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn rejects_non_estimable_contrast() {
        // two identical columns: contrast [1, -1] is not estimable
        let x = array![[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0]];
        assert!(matches!(
            GlmDesign::new(x, array![1.0, -1.0]),
            Err(StatsError::Design { .. })
        ));
    }

    #[test]
    fn one_sample_matches_textbook() {
        let d = GlmDesign::one_sample(5).unwrap();
        let y = array![[1.0f32], [2.0], [3.0], [4.0], [6.0]];
        let fit = glm_fit(y.view(), &d).unwrap();
        let m = 16.0 / 5.0;
        let var = [1.0f64, 2.0, 3.0, 4.0, 6.0]
            .iter()
            .map(|v| (v - m) * (v - m))
            .sum::<f64>()
            / 4.0;
        let t = m / (var / 5.0).sqrt();
        assert!((fit.t[0] - t).abs() < 1e-12);
        assert!((fit.effect[0] - m).abs() < 1e-12);
        assert_eq!(fit.df, 4.0);
    }
}
