//! Typed helpers for the pharmacological crossover: per-subject difference maps for each
//! contrast, and the one-sample design (intercept + optional centred sequence and covariates)
//! that is tested by sign-flipping.
//!
//! Study layout: each subject has four maps — before and during ketamine, after placebo and
//! after naltrexone pre-treatment (two sessions, order given by the sequence). With
//! `Δpla = during − before` (placebo session) and `Δnal` likewise:
//!
//! | contrast | per-subject value |
//! |---|---|
//! | [`CrossoverContrast::KetamineUnderPlacebo`] | `Δpla` |
//! | [`CrossoverContrast::KetamineUnderNaltrexone`] | `Δnal` |
//! | [`CrossoverContrast::KetaminePooled`] | `(Δpla + Δnal) / 2` |
//! | [`CrossoverContrast::Interaction`] | `Δpla − Δnal` (pre-treatment × time) |
//! | [`CrossoverContrast::Weights`] | `Σ w·map` over the four cells, `Σ w = 0` |
//!
//! Each is a within-subject quantity whose mean is tested against 0 with independent sign flips
//! (Winkler et al. 2014, ISE). A session-order (period) effect on `Δ` enters the per-arm and the
//! interaction values with sign ±1 by sequence; adding the centred sequence regressor (as a
//! nuisance, Freedman–Lane) removes it, as in the classical 2×2 crossover analysis (Jones &
//! Kenward 2014, ch. 2).

use ndarray::{Array1, Array2, ArrayView2};

use crate::error::{Result, StatsError, check_finite, check_len};
use crate::geometry::MaskGeometry;
use crate::glm::GlmDesign;
use crate::permutation::{PermutationOptions, PermutationResult, Scheme, permutation_test};

/// Which crossover contrast to form.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum CrossoverContrast {
    /// Ketamine effect (during − before) in the placebo session.
    KetamineUnderPlacebo,
    /// Ketamine effect in the naltrexone session.
    KetamineUnderNaltrexone,
    /// Mean ketamine effect over both sessions.
    KetaminePooled,
    /// Pre-treatment × time interaction: `Δplacebo − Δnaltrexone`.
    Interaction,
    /// Any within-subject contrast: weights of the placebo-before, placebo-during,
    /// naltrexone-before and naltrexone-during maps, summing to 0 (e.g. `[-1, 0, 1, 0]`, the
    /// naltrexone effect on baseline CBF).
    Weights([f64; 4]),
}

impl CrossoverContrast {
    /// Weights of the placebo-before, placebo-during, naltrexone-before and naltrexone-during
    /// maps that form this contrast.
    pub fn weights(&self) -> [f64; 4] {
        match self {
            Self::KetamineUnderPlacebo => [-1.0, 1.0, 0.0, 0.0],
            Self::KetamineUnderNaltrexone => [0.0, 0.0, -1.0, 1.0],
            Self::KetaminePooled => [-0.5, 0.5, -0.5, 0.5],
            Self::Interaction => [-1.0, 1.0, 1.0, -1.0],
            Self::Weights(w) => *w,
        }
    }

    /// Checks that the weights are finite, not all zero and sum to zero: only then is the
    /// per-subject value a within-subject difference whose sign may be flipped under H₀.
    pub fn validate(&self) -> Result<()> {
        let w = self.weights();
        if w.iter().any(|v| !v.is_finite()) {
            return Err(StatsError::Design {
                reason: format!("contrast weights {w:?} are not all finite"),
            });
        }
        if w.iter().all(|&v| v == 0.0) {
            return Err(StatsError::Design {
                reason: "contrast weights are all zero".into(),
            });
        }
        let sum: f64 = w.iter().sum();
        let scale: f64 = w.iter().map(|v| v.abs()).sum();
        if sum.abs() > 1e-9 * scale {
            return Err(StatsError::Design {
                reason: format!(
                    "contrast weights {w:?} sum to {sum}, not 0: a sign-flip test needs a within-subject difference"
                ),
            });
        }
        Ok(())
    }
}

/// The four per-subject maps, each (n_subjects, V), rows in the same subject order.
#[derive(Debug, Clone, Copy)]
pub struct CrossoverMaps<'a> {
    /// Placebo session, before ketamine.
    pub placebo_before: ArrayView2<'a, f32>,
    /// Placebo session, during ketamine.
    pub placebo_during: ArrayView2<'a, f32>,
    /// Naltrexone session, before ketamine.
    pub naltrexone_before: ArrayView2<'a, f32>,
    /// Naltrexone session, during ketamine.
    pub naltrexone_during: ArrayView2<'a, f32>,
}

/// Session order of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Sequence {
    /// Placebo session first.
    PlaceboFirst,
    /// Naltrexone session first.
    NaltrexoneFirst,
}

/// A per-subject covariate (e.g. global CBF change, age, sex coded 0/1).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Covariate {
    /// Name, for reports.
    pub name: String,
    /// One value per subject.
    pub values: Vec<f64>,
    /// Centred to mean 0 in [`difference_design`], so the tested intercept is the effect at the
    /// average value (between-subject covariates such as age or sex). Not centred for a
    /// within-subject change whose zero means "no change" (the change of global CBF): the
    /// intercept is then the effect at no change of the covariate.
    #[serde(default = "centred_by_default")]
    pub centred: bool,
}

fn centred_by_default() -> bool {
    true
}

impl Covariate {
    /// A covariate centred to mean 0 in the design (age, sex, …).
    pub fn centred(name: impl Into<String>, values: Vec<f64>) -> Self {
        Self {
            name: name.into(),
            values,
            centred: true,
        }
    }

    /// A covariate entered as it is (a within-subject change whose 0 means no change).
    pub fn uncentred(name: impl Into<String>, values: Vec<f64>) -> Self {
        Self {
            name: name.into(),
            values,
            centred: false,
        }
    }
}

/// Per-subject difference maps (n_subjects, V) for `contrast` (see the module table).
pub fn crossover_difference(
    maps: &CrossoverMaps<'_>,
    contrast: CrossoverContrast,
) -> Result<Array2<f32>> {
    let shape = maps.placebo_before.dim();
    for (what, m) in [
        ("placebo_during", &maps.placebo_during),
        ("naltrexone_before", &maps.naltrexone_before),
        ("naltrexone_during", &maps.naltrexone_during),
    ] {
        if m.dim() != shape {
            return Err(StatsError::ShapeMismatch {
                what,
                expected: format!("{shape:?}"),
                got: format!("{:?}", m.dim()),
            });
        }
    }
    let dpla = &maps.placebo_during - &maps.placebo_before;
    let dnal = &maps.naltrexone_during - &maps.naltrexone_before;
    let out = match contrast {
        CrossoverContrast::KetamineUnderPlacebo => dpla,
        CrossoverContrast::KetamineUnderNaltrexone => dnal,
        CrossoverContrast::KetaminePooled => (dpla + dnal) * 0.5,
        CrossoverContrast::Interaction => dpla - dnal,
        CrossoverContrast::Weights(w) => {
            contrast.validate()?;
            let cells = [
                &maps.placebo_before,
                &maps.placebo_during,
                &maps.naltrexone_before,
                &maps.naltrexone_during,
            ];
            let mut out = Array2::<f32>::zeros(shape);
            for (m, &wk) in cells.iter().zip(&w) {
                if wk != 0.0 {
                    out.scaled_add(wk as f32, *m);
                }
            }
            out
        }
    };
    check_finite("difference maps", out.iter().map(|&v| v as f64))?;
    Ok(out)
}

/// One-sample design for `n` per-subject differences: column 0 the intercept (tested, contrast
/// `[1, 0, …]`), then, if given, the centred sequence indicator (NaltrexoneFirst = 1), then each
/// covariate, centred to mean 0 unless it says otherwise ([`Covariate::centred`]) — so the
/// intercept is the mean effect at the average value of each centred covariate and at 0 of each
/// uncentred one. Column names are set. Errors if lengths differ or the design is
/// rank-deficient.
pub fn difference_design(
    n: usize,
    sequence: Option<&[Sequence]>,
    covariates: &[Covariate],
) -> Result<GlmDesign> {
    // (name, values, centred)
    let mut cols: Vec<(String, Vec<f64>, bool)> = vec![("intercept".into(), vec![1.0; n], false)];
    if let Some(seq) = sequence {
        check_len("sequence", n, seq.len())?;
        cols.push((
            "sequence".into(),
            seq.iter()
                .map(|s| (*s == Sequence::NaltrexoneFirst) as u8 as f64)
                .collect(),
            true,
        ));
    }
    for c in covariates {
        check_len("covariate values", n, c.values.len())?;
        check_finite("covariate values", c.values.iter().copied())?;
        cols.push((c.name.clone(), c.values.clone(), c.centred));
    }
    for (_, v, _) in cols.iter_mut().filter(|c| c.2) {
        let m = v.iter().sum::<f64>() / n as f64;
        v.iter_mut().for_each(|x| *x -= m);
    }
    let p = cols.len();
    let x = Array2::from_shape_fn((n, p), |(i, j)| cols[j].1[i]);
    let mut c = Array1::zeros(p);
    c[0] = 1.0;
    let mut d = GlmDesign::new(x, c)?;
    let f = crate::glm::Factorised::new(&d)?;
    if f.rank < p {
        return Err(StatsError::Design {
            reason: format!(
                "difference design has rank {} < {p} columns (collinear covariates?)",
                f.rank
            ),
        });
    }
    d.names = cols.into_iter().map(|(n, _, _)| n).collect();
    Ok(d)
}

/// Voxelwise test of one crossover contrast: forms the difference maps, builds
/// [`difference_design`] and runs [`permutation_test`] with sign-flipping (Freedman–Lane for the
/// sequence/covariates). Returns the difference maps too (e.g. for the mean-effect map).
pub fn crossover_test(
    maps: &CrossoverMaps<'_>,
    contrast: CrossoverContrast,
    sequence: Option<&[Sequence]>,
    covariates: &[Covariate],
    geometry: Option<&MaskGeometry>,
    options: &PermutationOptions,
) -> Result<(Array2<f32>, PermutationResult)> {
    let diff = crossover_difference(maps, contrast)?;
    let design = difference_design(diff.nrows(), sequence, covariates)?;
    let res = permutation_test(diff.view(), &design, &Scheme::SignFlip, geometry, options)?;
    Ok((diff, res))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// The four cells' maps, in the order placebo before, during, naltrexone before, during.
    fn cells<'a>(
        pb: &'a Array2<f32>,
        pd: &'a Array2<f32>,
        nb: &'a Array2<f32>,
        nd: &'a Array2<f32>,
    ) -> CrossoverMaps<'a> {
        CrossoverMaps {
            placebo_before: pb.view(),
            placebo_during: pd.view(),
            naltrexone_before: nb.view(),
            naltrexone_during: nd.view(),
        }
    }

    #[test]
    fn differences_by_contrast() {
        let [pb, pd, nb, nd] = [
            array![[1.0f32, 2.0], [3.0, 4.0]],
            array![[2.0f32, 2.0], [5.0, 4.0]],
            array![[0.0f32, 0.0], [0.0, 0.0]],
            array![[1.0f32, -1.0], [1.0, 1.0]],
        ];
        let maps = cells(&pb, &pd, &nb, &nd);
        assert_eq!(
            crossover_difference(&maps, CrossoverContrast::KetamineUnderPlacebo).unwrap(),
            array![[1.0f32, 0.0], [2.0, 0.0]]
        );
        assert_eq!(
            crossover_difference(&maps, CrossoverContrast::KetamineUnderNaltrexone).unwrap(),
            nd
        );
        assert_eq!(
            crossover_difference(&maps, CrossoverContrast::KetaminePooled).unwrap(),
            array![[1.0f32, -0.5], [1.5, 0.5]]
        );
        assert_eq!(
            crossover_difference(&maps, CrossoverContrast::Interaction).unwrap(),
            array![[0.0f32, 1.0], [1.0, -1.0]]
        );
    }

    #[test]
    fn weights_reproduce_the_named_contrasts_and_must_sum_to_zero() {
        let [pb, pd, nb, nd] = [
            array![[1.0f32, 2.0], [3.0, 4.5]],
            array![[2.0f32, 2.5], [5.0, 4.0]],
            array![[0.5f32, 0.0], [-1.0, 0.25]],
            array![[1.0f32, -1.0], [1.0, 1.0]],
        ];
        let maps = cells(&pb, &pd, &nb, &nd);
        for named in [
            CrossoverContrast::KetamineUnderPlacebo,
            CrossoverContrast::KetamineUnderNaltrexone,
            CrossoverContrast::KetaminePooled,
            CrossoverContrast::Interaction,
        ] {
            let general = CrossoverContrast::Weights(named.weights());
            assert_eq!(
                crossover_difference(&maps, general).unwrap(),
                crossover_difference(&maps, named).unwrap(),
                "{named:?}"
            );
        }
        // the naltrexone effect on baseline CBF, by hand
        let nal_baseline = CrossoverContrast::Weights([-1.0, 0.0, 1.0, 0.0]);
        assert_eq!(
            crossover_difference(&maps, nal_baseline).unwrap(),
            &nb - &pb
        );
        for bad in [[1.0, 0.0, 0.0, 0.0], [0.0; 4], [f64::NAN, 1.0, -1.0, 0.0]] {
            let err = crossover_difference(&maps, CrossoverContrast::Weights(bad)).unwrap_err();
            assert!(matches!(err, StatsError::Design { .. }), "{bad:?}: {err}");
        }
    }

    #[test]
    fn sequence_regressor_removes_period_effect() {
        // Δpla − Δnal = 2 (true interaction) + 3·(period effect sign) with no noise except a tiny
        // jitter: with the sequence nuisance the intercept estimate is exactly 2
        let n = 8;
        // alternating sequences, placebo first for even subjects
        let seq: Vec<Sequence> = (0..n)
            .map(|i| [Sequence::PlaceboFirst, Sequence::NaltrexoneFirst][i % 2])
            .collect();
        let jitter = [0.1, -0.2, 0.05, 0.0, -0.1, 0.2, -0.05, 0.0];
        let d = Array2::from_shape_fn((n, 1), |(i, _)| {
            (2.0 + if seq[i] == Sequence::PlaceboFirst {
                3.0
            } else {
                -3.0
            } + jitter[i]) as f32
        });
        let design = difference_design(n, Some(&seq), &[]).unwrap();
        let fit = crate::glm::glm_fit(d.view(), &design).unwrap();
        let jitter_mean = jitter.iter().sum::<f64>() / n as f64;
        assert!(
            (fit.effect[0] - (2.0 + jitter_mean)).abs() < 1e-5,
            "{}",
            fit.effect[0]
        );
        let plain = crate::glm::glm_fit(d.view(), &GlmDesign::one_sample(n).unwrap()).unwrap();
        assert!((plain.effect[0] - fit.effect[0]).abs() < 1e-5); // balanced: same mean, smaller SE
        assert!(fit.se[0] < 0.5 * plain.se[0]);
        assert_eq!(design.names, vec!["intercept", "sequence"]);
    }
}
