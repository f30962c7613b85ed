//! Linear mixed model with a random intercept per subject, fitted by REML, with Satterthwaite
//! degrees of freedom; and a design helper for the two-treatment crossover.
//!
//! Model: `y = X β + Z u + ε`, `u ~ N(0, σ_u² I)` (one intercept per group), `ε ~ N(0, σ_e² I)`.
//! REML (Patterson & Thompson 1971) is profiled over `σ_e²` and maximised over
//! `γ = σ_u²/σ_e² ∈ [0, ∞)` by a log-spaced grid followed by golden-section search (the boundary
//! `γ = 0` is checked explicitly).
//!
//! Degrees of freedom: Satterthwaite (1946) as in lmerTest (Kuznetsova et al. 2017):
//! `df = 2 f(θ)² / (∇f' A ∇f)`, `f(θ) = c'(X'V⁻¹X)⁻¹c`, `A` the inverse expected REML information
//! of `θ = (σ_u², σ_e²)`, `I_kl = ½ tr(P V_k P V_l)`, gradients analytic.

use nalgebra::{DMatrix, DVector};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::error::{Result, StatsError, check_finite, check_len};

/// Fit of a random-intercept LMM.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LmmFit {
    /// Fixed-effect names (as given).
    pub names: Vec<String>,
    /// Fixed-effect estimates (GLS at the REML variance components).
    pub beta: Vec<f64>,
    /// Their standard errors.
    pub se: Vec<f64>,
    /// Satterthwaite degrees of freedom per coefficient.
    pub df: Vec<f64>,
    /// t = beta / se.
    pub t: Vec<f64>,
    /// Two-sided p from Student's t with the Satterthwaite df.
    pub p: Vec<f64>,
    /// Between-subject (random intercept) variance σ_u².
    pub sigma2_subject: f64,
    /// Residual variance σ_e².
    pub sigma2_residual: f64,
    /// Maximised REML log-likelihood.
    pub reml_loglik: f64,
    /// Number of observations.
    pub n_obs: usize,
    /// Number of groups (subjects).
    pub n_groups: usize,
}

struct Problem {
    y: DVector<f64>,
    x: DMatrix<f64>,
    groups: Vec<Vec<usize>>,
}

struct Eval {
    loglik: f64,
    sigma2: f64,
    beta: DVector<f64>,
    c: DMatrix<f64>, // (X'H⁻¹X)⁻¹
}

impl Problem {
    /// Apply H⁻¹ = blockdiag(I − γ/(1+nᵢγ) J) to the columns of `m`.
    fn hinv(&self, gamma: f64, m: &DMatrix<f64>) -> DMatrix<f64> {
        let mut out = m.clone();
        for g in &self.groups {
            let f = gamma / (1.0 + g.len() as f64 * gamma);
            for col in 0..m.ncols() {
                let s: f64 = g.iter().map(|&i| m[(i, col)]).sum();
                for &i in g {
                    out[(i, col)] -= f * s;
                }
            }
        }
        out
    }

    fn eval(&self, gamma: f64) -> Option<Eval> {
        let n = self.y.len();
        let p = self.x.ncols();
        let hx = self.hinv(gamma, &self.x);
        let xtx = self.x.transpose() * &hx;
        let chol = xtx.clone().cholesky()?;
        let c = chol.inverse();
        let hy = self.hinv(gamma, &DMatrix::from_column_slice(n, 1, self.y.as_slice()));
        let beta = &c * (self.x.transpose() * hy.column(0));
        let r = &self.y - &self.x * &beta;
        let hr = self.hinv(gamma, &DMatrix::from_column_slice(n, 1, r.as_slice()));
        let rhr = r.dot(&hr.column(0));
        let dfree = (n - p) as f64;
        let sigma2 = rhr / dfree;
        if sigma2.is_nan() || sigma2 <= 0.0 {
            return None;
        }
        let logdet_h: f64 = self
            .groups
            .iter()
            .map(|g| (1.0 + g.len() as f64 * gamma).ln())
            .sum();
        let logdet_xhx: f64 = 2.0 * chol.l().diagonal().iter().map(|d| d.ln()).sum::<f64>();
        let loglik = -0.5
            * (dfree * sigma2.ln()
                + logdet_h
                + logdet_xhx
                + dfree * (1.0 + (2.0 * std::f64::consts::PI).ln()));
        Some(Eval {
            loglik,
            sigma2,
            beta,
            c,
        })
    }
}

/// Fit `y = Xβ + u_group + ε` by REML.
///
/// * `y`: responses (N), e.g. ROI CBF change per session.
/// * `x`: fixed-effects design (N × p), full column rank, include the intercept column yourself
///   (see [`crossover_design`]).
/// * `groups`: group (subject) label per observation (N).
/// * `names`: p names for the report.
pub fn fit_random_intercept(
    y: &[f64],
    x: &DMatrix<f64>,
    groups: &[usize],
    names: &[String],
) -> Result<LmmFit> {
    let n = y.len();
    check_len("design rows", n, x.nrows())?;
    check_len("groups", n, groups.len())?;
    check_len("names", x.ncols(), names.len())?;
    check_finite("y", y.iter().copied())?;
    check_finite("design", x.iter().copied())?;
    let p = x.ncols();
    let rank = x.clone().svd(false, false).rank(1e-10 * x.norm().max(1.0));
    if rank < p {
        return Err(StatsError::Design {
            reason: format!("fixed-effects design has rank {rank} < {p} columns"),
        });
    }
    let mut labels: Vec<usize> = groups.to_vec();
    labels.sort_unstable();
    labels.dedup();
    if n <= p + 1 || labels.len() < 2 {
        return Err(StatsError::TooFewObservations {
            what: "mixed model observations",
            needed: p + 2,
            got: n,
        });
    }
    let mut gl = vec![Vec::new(); labels.len()];
    for (i, g) in groups.iter().enumerate() {
        gl[labels.binary_search(g).expect("present")].push(i);
    }
    let prob = Problem {
        y: DVector::from_column_slice(y),
        x: x.clone(),
        groups: gl,
    };
    // optimise over log γ
    let f = |lg: f64| prob.eval(lg.exp()).map_or(f64::NEG_INFINITY, |e| e.loglik);
    let grid: Vec<f64> = (0..=80).map(|i| -12.0 + 20.0 * i as f64 / 80.0).collect();
    let vals: Vec<f64> = grid.iter().map(|&g| f(g)).collect();
    let (ibest, _) =
        vals.iter().enumerate().fold(
            (0, f64::NEG_INFINITY),
            |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc },
        );
    let (mut a, mut b) = (
        grid[ibest.saturating_sub(1)],
        grid[(ibest + 1).min(grid.len() - 1)],
    );
    let phi = (5f64.sqrt() - 1.0) / 2.0;
    let mut c1 = b - phi * (b - a);
    let mut c2 = a + phi * (b - a);
    let (mut f1, mut f2) = (f(c1), f(c2));
    for _ in 0..200 {
        if (b - a).abs() < 1e-10 {
            break;
        }
        if f1 > f2 {
            b = c2;
            c2 = c1;
            f2 = f1;
            c1 = b - phi * (b - a);
            f1 = f(c1);
        } else {
            a = c1;
            c1 = c2;
            f1 = f2;
            c2 = a + phi * (b - a);
            f2 = f(c2);
        }
    }
    let mut gamma = (0.5 * (a + b)).exp();
    let e0 = prob.eval(0.0).ok_or(StatsError::NoConvergence {
        what: "reml",
        iterations: 0,
    })?;
    let mut best = prob.eval(gamma).ok_or(StatsError::NoConvergence {
        what: "reml",
        iterations: 200,
    })?;
    if e0.loglik >= best.loglik || ibest == 0 {
        gamma = 0.0;
        best = e0;
    }
    let s2e = best.sigma2;
    let s2u = gamma * s2e;

    // Satterthwaite df
    let nobs = n;
    let mut vinv = DMatrix::zeros(nobs, nobs);
    for g in &prob.groups {
        let fct = gamma / (1.0 + g.len() as f64 * gamma);
        for &i in g {
            for &j in g {
                vinv[(i, j)] = ((i == j) as u8 as f64 - fct) / s2e;
            }
        }
    }
    let cov_beta = &best.c * s2e; // (X'V⁻¹X)⁻¹
    let vx = &vinv * x;
    let pm = &vinv - &vx * &cov_beta * vx.transpose();
    let mut zz = DMatrix::zeros(nobs, nobs);
    for g in &prob.groups {
        for &i in g {
            for &j in g {
                zz[(i, j)] = 1.0;
            }
        }
    }
    let vk = [zz, DMatrix::identity(nobs, nobs)];
    let pv: Vec<DMatrix<f64>> = vk.iter().map(|v| &pm * v).collect();
    let mut info = DMatrix::zeros(2, 2);
    for k in 0..2 {
        for l in 0..2 {
            // tr(A B) = Σ_ij A_ij B_ji, O(N²)
            info[(k, l)] = 0.5 * pv[k].component_mul(&pv[l].transpose()).sum();
        }
    }
    let acov = info.clone().try_inverse();
    let tmat: Vec<DMatrix<f64>> = vk
        .iter()
        .map(|v| &cov_beta * vx.transpose() * v * &vx * &cov_beta)
        .collect();
    let mut beta = Vec::with_capacity(p);
    let mut se = Vec::with_capacity(p);
    let mut df = Vec::with_capacity(p);
    let mut tv = Vec::with_capacity(p);
    let mut pv_out = Vec::with_capacity(p);
    for j in 0..p {
        let fval = cov_beta[(j, j)];
        let grad = DVector::from_vec(vec![tmat[0][(j, j)], tmat[1][(j, j)]]);
        let d = match &acov {
            Some(a) => {
                let denom = (grad.transpose() * a * &grad)[(0, 0)];
                if denom > 0.0 {
                    2.0 * fval * fval / denom
                } else {
                    (nobs - p) as f64
                }
            }
            None => (nobs - p) as f64,
        };
        let s = fval.sqrt();
        let t = best.beta[j] / s;
        let pval = StudentsT::new(0.0, 1.0, d)
            .map(|dist| (2.0 * dist.sf(t.abs())).min(1.0))
            .unwrap_or(f64::NAN);
        beta.push(best.beta[j]);
        se.push(s);
        df.push(d);
        tv.push(t);
        pv_out.push(pval);
    }
    Ok(LmmFit {
        names: names.to_vec(),
        beta,
        se,
        df,
        t: tv,
        p: pv_out,
        sigma2_subject: s2u,
        sigma2_residual: s2e,
        reml_loglik: best.loglik,
        n_obs: n,
        n_groups: prob.groups.len(),
    })
}

/// Pre-treatment arm of a crossover session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Treatment {
    /// Placebo pre-treatment (reference level).
    Placebo,
    /// Naltrexone pre-treatment.
    Naltrexone,
}

/// One observation (session) of the crossover: subject, arm and period (1 or 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CrossoverObservation {
    /// Subject label (any integer, used as the random-intercept group).
    pub subject: usize,
    /// Pre-treatment of this session.
    pub treatment: Treatment,
    /// Period (1 = first session, 2 = second).
    pub period: u8,
}

/// Fixed-effects design for the crossover LMM: columns `intercept`, `naltrexone` (1 for
/// naltrexone sessions), `period2` (1 for the second session), `sequence_NP` (1 for subjects who
/// received naltrexone in period 1), treatment (0/1) coding. Sequence is derived per subject from
/// its observations; subjects seen in one period only get sequence from that session. Returns
/// `(X (N × 4), groups, names)`.
pub fn crossover_design(
    obs: &[CrossoverObservation],
) -> Result<(DMatrix<f64>, Vec<usize>, Vec<String>)> {
    use std::collections::BTreeMap;
    let mut seq: BTreeMap<usize, bool> = BTreeMap::new();
    for (index, o) in obs.iter().enumerate() {
        if o.period != 1 && o.period != 2 {
            return Err(StatsError::InvalidParameter {
                name: "period",
                value: format!("{} at observation {index}", o.period),
                reason: "must be 1 or 2",
            });
        }
        let nal_first = (o.period == 1) == (o.treatment == Treatment::Naltrexone);
        if let Some(prev) = seq.insert(o.subject, nal_first)
            && prev != nal_first
        {
            return Err(StatsError::Design {
                reason: format!(
                    "subject {} has inconsistent treatment order across periods",
                    o.subject
                ),
            });
        }
    }
    let x = DMatrix::from_fn(obs.len(), 4, |i, j| match j {
        0 => 1.0,
        1 => (obs[i].treatment == Treatment::Naltrexone) as u8 as f64,
        2 => (obs[i].period == 2) as u8 as f64,
        _ => seq[&obs[i].subject] as u8 as f64,
    });
    let groups = obs.iter().map(|o| o.subject).collect();
    let names = ["intercept", "naltrexone", "period2", "sequence_NP"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    Ok((x, groups, names))
}
