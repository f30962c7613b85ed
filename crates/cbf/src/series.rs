//! Volume bookkeeping from `aslcontext.tsv`: which volumes are control/label pairs,
//! ΔM, M0, CBF or noRF, and pair subtraction.

use ndarray::{Array4, ArrayView4, Axis};
use serde::{Deserialize, Serialize};

use crate::error::{CbfError, Result};

/// One row of a BIDS `aslcontext.tsv` (`volume_type` column). The one definition: `cbflow-bids`
/// re-exports it for the ingest and the validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum VolumeType {
    /// `control`: the unlabelled (untagged) image.
    Control,
    /// `label`: the labelled (tagged) image.
    Label,
    /// `m0scan`: an equilibrium magnetisation image within the series (`M0Type: Included`).
    M0Scan,
    /// `deltam`: a control − label difference computed on the scanner (e.g. GE's product
    /// sequence).
    DeltaM,
    /// `cbf`: a CBF map computed on the scanner (units from the sidecar `Units`).
    Cbf,
    /// `noRF`: a volume acquired with no RF excitation (noise); ignored.
    NoRf,
}

impl VolumeType {
    /// Parses the BIDS value, exactly as the specification spells it (case-sensitive:
    /// `control`, `label`, `m0scan`, `deltam`, `cbf`, `noRF`); `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "control" => Self::Control,
            "label" => Self::Label,
            "m0scan" => Self::M0Scan,
            "deltam" => Self::DeltaM,
            "cbf" => Self::Cbf,
            "noRF" => Self::NoRf,
            _ => return None,
        })
    }

    /// The BIDS value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Control => "control",
            Self::Label => "label",
            Self::M0Scan => "m0scan",
            Self::DeltaM => "deltam",
            Self::Cbf => "cbf",
            Self::NoRf => "noRF",
        }
    }
}

impl std::fmt::Display for VolumeType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Control/label order of one pair, as acquired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PairOrder {
    /// Control acquired first.
    ControlFirst,
    /// Label acquired first.
    LabelFirst,
}

/// One control/label pair (indices into the full series, dummies included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pair {
    /// Index of the control volume.
    pub control: usize,
    /// Index of the label volume.
    pub label: usize,
    /// Acquisition order within the pair.
    pub order: PairOrder,
}

/// Where each kind of volume sits in an ASL series. All indices refer to the full
/// series as stored (dummy volumes included), in acquisition order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SeriesLayout {
    /// Control/label pairs, in acquisition order.
    pub pairs: Vec<Pair>,
    /// ΔM volumes.
    pub delta_m: Vec<usize>,
    /// M0 volumes (`M0Type: Included`).
    pub m0: Vec<usize>,
    /// Pre-computed CBF volumes.
    pub cbf: Vec<usize>,
    /// noRF volumes (ignored).
    pub no_rf: Vec<usize>,
    /// Dummy volumes dropped from the start of the series.
    pub dummies: Vec<usize>,
    /// Volumes left out by index ([`Exclusions::volumes`]), whatever their type.
    pub excluded: Vec<usize>,
    /// A control or label volume at the start or end of the series that had no partner and
    /// was left out ([`Exclusions::drop_unpaired`]).
    pub unpaired_dropped: Option<usize>,
}

impl SeriesLayout {
    /// Control indices of all pairs.
    pub fn controls(&self) -> Vec<usize> {
        self.pairs.iter().map(|p| p.control).collect()
    }

    /// Label indices of all pairs.
    pub fn labels(&self) -> Vec<usize> {
        self.pairs.iter().map(|p| p.label).collect()
    }

    /// Per-pair value of a per-volume metadata array (e.g. `PostLabelingDelay`,
    /// `LabelingDuration`). The control and label of a pair must agree within 1e-6;
    /// otherwise an error names the pair.
    pub fn pair_values(&self, per_volume: &[f64], field: &str) -> Result<Vec<f64>> {
        let n = self.n_volumes_hint();
        if per_volume.len() < n {
            return Err(CbfError::LengthMismatch {
                what: format!("{field} values per volume"),
                expected: n,
                got: per_volume.len(),
            });
        }
        self.pairs
            .iter()
            .map(|p| {
                let (c, l) = (per_volume[p.control], per_volume[p.label]);
                if (c - l).abs() > 1e-6 {
                    Err(CbfError::Unpaired {
                        index: p.label,
                        reason: format!("{field} differs between control ({c}) and label ({l})"),
                    })
                } else {
                    Ok(c)
                }
            })
            .collect()
    }

    /// Values of a per-volume metadata array at the given indices (e.g. `layout.delta_m`).
    pub fn select_values(per_volume: &[f64], indices: &[usize], field: &str) -> Result<Vec<f64>> {
        indices
            .iter()
            .map(|&i| {
                per_volume.get(i).copied().ok_or(CbfError::LengthMismatch {
                    what: format!("{field} values per volume"),
                    expected: i + 1,
                    got: per_volume.len(),
                })
            })
            .collect()
    }

    fn n_volumes_hint(&self) -> usize {
        let m = |v: &[usize]| v.iter().copied().max().map_or(0, |x| x + 1);
        let p = self
            .pairs
            .iter()
            .map(|p| p.control.max(p.label) + 1)
            .max()
            .unwrap_or(0);
        p.max(m(&self.delta_m))
            .max(m(&self.m0))
            .max(m(&self.cbf))
            .max(m(&self.no_rf))
    }
}

/// Which volumes of a series to leave out before pairing ([`split_series_excluding`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusions {
    /// Dummy volumes at the start of the series, dropped whatever their type.
    pub n_dummy: usize,
    /// Further volumes to leave out, by 0-based index into the series as stored.
    pub volumes: Vec<usize>,
    /// Leave out one control or label volume at the very start or end of the series when it
    /// has no partner (an odd number of control/label volumes that otherwise alternate), and
    /// report it in [`SeriesLayout::unpaired_dropped`].
    pub drop_unpaired: bool,
}

/// Classify the volumes of an ASL series and pair controls with labels; the first `n_dummy`
/// volumes are dropped. [`split_series_excluding`] with nothing else left out.
pub fn split_series(types: &[VolumeType], n_dummy: usize) -> Result<SeriesLayout> {
    split_series_excluding(
        types,
        &Exclusions {
            n_dummy,
            ..Exclusions::default()
        },
    )
}

/// Classify the volumes of an ASL series and pair controls with labels.
///
/// `types` is the `volume_type` column of `aslcontext.tsv` (one entry per volume); the
/// first `ex.n_dummy` volumes and the volumes of `ex.volumes` are left out whatever their
/// type. Control and label volumes are paired in acquisition order, two at a time, skipping
/// the other types: each consecutive couple must be one control and one label, in either
/// order (the order may change within a run). ΔM, M0, CBF and noRF volumes are listed as
/// they are.
///
/// With `ex.drop_unpaired`, an odd number of control/label volumes that pairs once one volume
/// at the very start or end is left out loses that volume: the first one when that works
/// (the first measurement is the one least likely to be in the magnetisation steady state,
/// and segmented 3D sequences put their M0 in its partner's slot), else the last.
///
/// Errors: a couple of two controls or two labels, or an unpaired control/label volume, is
/// [`CbfError::Unpaired`] with the index where pairing failed; more dummies than volumes is
/// [`CbfError::TooManyDummies`]; an excluded index beyond the series is
/// [`CbfError::LengthMismatch`].
pub fn split_series_excluding(types: &[VolumeType], ex: &Exclusions) -> Result<SeriesLayout> {
    let n_dummy = ex.n_dummy;
    if n_dummy > types.len() {
        return Err(CbfError::TooManyDummies {
            n_dummy,
            n_volumes: types.len(),
        });
    }
    if let Some(&bad) = ex.volumes.iter().find(|&&i| i >= types.len()) {
        return Err(CbfError::LengthMismatch {
            what: "volumes in the ASL series (a volume to leave out is beyond the last)".into(),
            expected: bad + 1,
            got: types.len(),
        });
    }
    let mut excluded: Vec<usize> = ex
        .volumes
        .iter()
        .copied()
        .filter(|&i| i >= n_dummy)
        .collect();
    excluded.sort_unstable();
    excluded.dedup();
    let mut layout = SeriesLayout {
        dummies: (0..n_dummy).collect(),
        excluded: excluded.clone(),
        ..Default::default()
    };
    let mut tagged = Vec::new();
    for (i, &t) in types.iter().enumerate().skip(n_dummy) {
        if excluded.binary_search(&i).is_ok() {
            continue;
        }
        match t {
            VolumeType::Control | VolumeType::Label => tagged.push((i, t)),
            VolumeType::M0Scan => layout.m0.push(i),
            VolumeType::DeltaM => layout.delta_m.push(i),
            VolumeType::Cbf => layout.cbf.push(i),
            VolumeType::NoRf => layout.no_rf.push(i),
        }
    }
    layout.pairs = match pair_up(&tagged) {
        Ok(p) => p,
        Err(e) if ex.drop_unpaired && tagged.len() % 2 == 1 => {
            let n = tagged.len();
            if let Ok(p) = pair_up(&tagged[1..]) {
                layout.unpaired_dropped = Some(tagged[0].0);
                p
            } else if let Ok(p) = pair_up(&tagged[..n - 1]) {
                layout.unpaired_dropped = Some(tagged[n - 1].0);
                p
            } else {
                return Err(e);
            }
        }
        Err(e) => return Err(e),
    };
    Ok(layout)
}

fn type_name(t: VolumeType) -> &'static str {
    if t == VolumeType::Control {
        "control"
    } else {
        "label"
    }
}

/// Pairs consecutive control/label volumes `(index, type)` two at a time.
fn pair_up(tagged: &[(usize, VolumeType)]) -> Result<Vec<Pair>> {
    let mut pairs = Vec::with_capacity(tagged.len() / 2);
    for couple in tagged.chunks(2) {
        let (j, u) = couple[0];
        let Some(&(i, t)) = couple.get(1) else {
            return Err(CbfError::Unpaired {
                index: j,
                reason: format!(
                    "{} volume without a partner at the end of the series",
                    type_name(u)
                ),
            });
        };
        if u == t {
            return Err(CbfError::Unpaired {
                index: i,
                reason: format!(
                    "two consecutive {} volumes (indices {j} and {i})",
                    type_name(t)
                ),
            });
        }
        pairs.push(if u == VolumeType::Control {
            Pair {
                control: j,
                label: i,
                order: PairOrder::ControlFirst,
            }
        } else {
            Pair {
                control: i,
                label: j,
                order: PairOrder::LabelFirst,
            }
        });
    }
    Ok(pairs)
}

/// ΔM = control − label for every pair.
///
/// `series`: `[x, y, z, volumes]` (any units, usually scanner units); returns
/// `[x, y, z, pairs]` in the same units, pairs in the order of `pairs`.
pub fn pairwise_delta_m(series: ArrayView4<f32>, pairs: &[Pair]) -> Result<Array4<f32>> {
    let (nx, ny, nz, nt) = series.dim();
    if pairs.is_empty() {
        return Err(CbfError::NoVolumes {
            what: "control/label pair".into(),
        });
    }
    for p in pairs {
        let m = p.control.max(p.label);
        if m >= nt {
            return Err(CbfError::LengthMismatch {
                what: "volumes in the ASL series (pair index out of range)".into(),
                expected: m + 1,
                got: nt,
            });
        }
    }
    let mut out = Array4::<f32>::zeros((nx, ny, nz, pairs.len()));
    // voxel-major: each time course is contiguous in C order
    ndarray::Zip::from(out.lanes_mut(Axis(3)))
        .and(series.lanes(Axis(3)))
        .for_each(|mut o, s| {
            for (k, p) in pairs.iter().enumerate() {
                o[k] = s[p.control] - s[p.label];
            }
        });
    Ok(out)
}

/// Copy the volumes at `indices` out of `series` (`[x, y, z, volumes]`), in that order.
pub fn select_volumes(series: ArrayView4<f32>, indices: &[usize]) -> Result<Array4<f32>> {
    let nt = series.dim().3;
    if let Some(&bad) = indices.iter().find(|&&i| i >= nt) {
        return Err(CbfError::LengthMismatch {
            what: "volumes in the ASL series (index out of range)".into(),
            expected: bad + 1,
            got: nt,
        });
    }
    Ok(series.select(Axis(3), indices))
}

/// Factor converting pre-computed CBF volumes (`volume_type: cbf`) in the BIDS `Units`
/// of the sidecar to mL/100 g/min. Accepts `mL/100g/min` (any case, optional spaces,
/// factor 1) and `mL/g/s` (factor 6000); anything else is an error naming the value.
pub fn cbf_units_factor(units: &str) -> Result<f64> {
    let u: String = units
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    match u.as_str() {
        "ml/100g/min" => Ok(1.0),
        "ml/g/s" => Ok(6000.0),
        _ => Err(CbfError::InvalidParameter {
            name: format!("Units {units:?}"),
            value: f64::NAN,
            expected: "mL/100g/min or mL/g/s for cbf volumes".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use VolumeType::*;

    #[test]
    fn pairs_in_either_order_and_other_types() {
        let t = [
            NoRf, Label, Control, Control, Label, M0Scan, Label, Control, DeltaM, Cbf,
        ];
        let l = split_series(&t, 1).unwrap();
        assert_eq!(l.dummies, vec![0]);
        assert_eq!(l.controls(), vec![2, 3, 7]);
        assert_eq!(l.labels(), vec![1, 4, 6]);
        assert_eq!(l.pairs[0].order, PairOrder::LabelFirst);
        assert_eq!(l.pairs[1].order, PairOrder::ControlFirst);
        assert_eq!(l.m0, vec![5]);
        assert_eq!(l.delta_m, vec![8]);
        assert_eq!(l.cbf, vec![9]);
        assert!(l.no_rf.is_empty());
    }

    #[test]
    fn unpaired_errors() {
        assert!(matches!(
            split_series(&[Control, Control, Label, Label], 0),
            Err(CbfError::Unpaired { index: 1, .. })
        ));
        assert!(matches!(
            split_series(&[Control, Label, Control], 0),
            Err(CbfError::Unpaired { index: 2, .. })
        ));
        // a dummy that splits a pair leaves a dangling label
        assert!(matches!(
            split_series(&[Control, Label, Control, Label], 1),
            Err(CbfError::Unpaired { .. })
        ));
        assert!(matches!(
            split_series(&[Control], 2),
            Err(CbfError::TooManyDummies { .. })
        ));
        assert_eq!(VolumeType::parse("tag"), None);
        assert_eq!(VolumeType::parse("norf"), None, "BIDS spells it noRF");
        assert_eq!(VolumeType::parse("noRF"), Some(NoRf));
        assert_eq!(NoRf.to_string(), "noRF");
    }

    #[test]
    fn unpaired_leading_or_trailing_volume_is_dropped_when_asked() {
        // 3D GRASE: M0, then the first control's label slot held the M0
        let t = [M0Scan, Control, Label, Control, Label, Control];
        assert!(split_series(&t, 0).is_err());
        let ex = Exclusions {
            drop_unpaired: true,
            ..Exclusions::default()
        };
        let l = split_series_excluding(&t, &ex).unwrap();
        assert_eq!(l.unpaired_dropped, Some(1));
        assert_eq!(l.labels(), vec![2, 4]);
        assert_eq!(l.controls(), vec![3, 5]);
        assert!(l.pairs.iter().all(|p| p.order == PairOrder::LabelFirst));
        assert_eq!(l.m0, vec![0]);
        // only the trailing one works
        let t = [Control, Label, Label, Control, Label];
        let l = split_series_excluding(&t, &ex).unwrap();
        assert_eq!(l.unpaired_dropped, Some(4));
        // a break in the middle stays an error
        let t = [Control, Label, Control, Control, Label, Label];
        assert!(matches!(
            split_series_excluding(&t, &ex),
            Err(CbfError::Unpaired { index: 3, .. })
        ));
        // leaving volumes out by index repairs it
        let l = split_series_excluding(
            &t,
            &Exclusions {
                volumes: vec![2, 5, 2],
                ..Exclusions::default()
            },
        )
        .unwrap();
        assert_eq!(l.excluded, vec![2, 5]);
        assert_eq!(l.controls(), vec![0, 3]);
        assert_eq!(l.labels(), vec![1, 4]);
        assert!(matches!(
            split_series_excluding(
                &t,
                &Exclusions {
                    volumes: vec![6],
                    ..Exclusions::default()
                }
            ),
            Err(CbfError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn subtraction_is_control_minus_label() {
        let mut s = Array4::<f32>::zeros((2, 1, 1, 4));
        for t in 0..4 {
            for x in 0..2 {
                s[[x, 0, 0, t]] = (10 * t + x) as f32;
            }
        }
        let l = split_series(&[Label, Control, Control, Label], 0).unwrap();
        let d = pairwise_delta_m(s.view(), &l.pairs).unwrap();
        assert_eq!(d[[0, 0, 0, 0]], 10.0); // 10 - 0
        assert_eq!(d[[1, 0, 0, 1]], -10.0); // 21 - 31
        let plds = [1.0, 1.0, 2.0, 2.0];
        assert_eq!(
            l.pair_values(&plds, "PostLabelingDelay").unwrap(),
            vec![1.0, 2.0]
        );
        assert!(
            l.pair_values(&[1.0, 2.0, 2.0, 2.0], "PostLabelingDelay")
                .is_err()
        );
    }
}
