//! Bad input gets an error (or an explicit, reported mask), never a silent number.

use cbflow_cbf::{
    CbfError, Labeling, M0Input, M0Params, QuantParams, calibrate_m0, quantify_single,
    restrict_mask, simulate_delta_m,
};
use ndarray::Axis;

use crate::common::phantom;

#[test]
fn background_suppression_with_absent_m0_is_an_error() {
    let ph = phantom([8, 8, 6]);
    let controls = ph.m0.clone().insert_axis(Axis(3));
    let e = calibrate_m0(
        &M0Input::MeanControl {
            controls: controls.view(),
            repetition_time_s: Some(4.0),
            background_suppressed: true,
        },
        [8, 8, 6],
        &M0Params::default(),
    );
    assert!(matches!(e, Err(CbfError::BackgroundSuppressedControlAsM0)));
    // without suppression the mean control is accepted and reported as such
    let (m0, rep) = calibrate_m0(
        &M0Input::MeanControl {
            controls: controls.view(),
            repetition_time_s: None,
            background_suppressed: false,
        },
        [8, 8, 6],
        &M0Params::default(),
    )
    .unwrap();
    assert_eq!(rep.kind, cbflow_cbf::m0::M0Kind::MeanControl);
    assert_eq!(m0, ph.m0);
}

#[test]
fn zero_m0_in_mask_errors_or_is_explicitly_masked() {
    let ph = phantom([10, 10, 8]);
    let p = QuantParams::consensus(
        Labeling::Pcasl {
            labeling_duration_s: 1.8,
        },
        3.0,
    );
    let dm = simulate_delta_m(ph.cbf.view(), ph.att.view(), ph.m0.view(), &[2.0], &p).unwrap();
    let mut m0 = ph.m0.clone();
    m0[[5, 5, 4]] = 0.0;
    m0[[4, 5, 4]] = f32::NAN;
    let e = quantify_single(
        dm.index_axis(Axis(3), 0),
        m0.view(),
        ph.mask.view(),
        &p,
        2.0,
    );
    assert!(
        matches!(e, Err(CbfError::InvalidM0 { count: 1, .. })),
        "{e:?}"
    );
    let (mask, rep) = restrict_mask(ph.mask.view(), m0.view(), None).unwrap();
    assert_eq!(rep.n_invalid_m0, 2);
    assert_eq!(rep.n_output, rep.n_input - 2);
    let cbf = quantify_single(dm.index_axis(Axis(3), 0), m0.view(), mask.view(), &p, 2.0).unwrap();
    assert_eq!(cbf[[5, 5, 4]], 0.0);
    assert!(cbf.iter().all(|v| v.is_finite()));
    // an all-zero M0 cannot be rescued
    let zeros = ph.m0.mapv(|_| 0.0f32);
    assert!(matches!(
        restrict_mask(ph.mask.view(), zeros.view(), None),
        Err(CbfError::EmptyMask { .. })
    ));
}

#[test]
fn nan_in_delta_m_errors_or_is_explicitly_masked() {
    let ph = phantom([10, 10, 8]);
    let p = QuantParams::consensus(
        Labeling::Pcasl {
            labeling_duration_s: 1.8,
        },
        3.0,
    );
    let mut dm = simulate_delta_m(ph.cbf.view(), ph.att.view(), ph.m0.view(), &[2.0], &p).unwrap();
    dm[[3, 5, 4, 0]] = f32::NAN;
    let e = quantify_single(
        dm.index_axis(Axis(3), 0),
        ph.m0.view(),
        ph.mask.view(),
        &p,
        2.0,
    );
    assert!(
        matches!(
            e,
            Err(CbfError::NonFinite {
                count: 1,
                first: [3, 5, 4],
                ..
            })
        ),
        "{e:?}"
    );
    let (mask, rep) = restrict_mask(ph.mask.view(), ph.m0.view(), Some(dm.view())).unwrap();
    assert_eq!(rep.n_nonfinite_delta_m, 1);
    assert!(!mask[[3, 5, 4]]);
    assert!(
        quantify_single(
            dm.index_axis(Axis(3), 0),
            ph.m0.view(),
            mask.view(),
            &p,
            2.0
        )
        .is_ok()
    );
}

#[test]
fn shape_and_length_mismatches_are_errors() {
    let ph = phantom([10, 10, 8]);
    let p = QuantParams::consensus(
        Labeling::Pcasl {
            labeling_duration_s: 1.8,
        },
        3.0,
    );
    let dm = simulate_delta_m(ph.cbf.view(), ph.att.view(), ph.m0.view(), &[2.0, 2.0], &p).unwrap();
    let e = cbflow_cbf::quantify_series(dm.view(), ph.m0.view(), ph.mask.view(), &p, &[2.0]);
    assert!(matches!(e, Err(CbfError::LengthMismatch { .. })));
    let small = ph.m0.slice_axis(Axis(0), ndarray::Slice::from(..9));
    let e = quantify_single(dm.index_axis(Axis(3), 0), small, ph.mask.view(), &p, 2.0);
    assert!(matches!(e, Err(CbfError::ShapeMismatch { .. })));
    let mut bad = p.clone();
    bad.efficiency.base = 1.5;
    assert!(matches!(
        quantify_single(
            dm.index_axis(Axis(3), 0),
            ph.m0.view(),
            ph.mask.view(),
            &bad,
            2.0
        ),
        Err(CbfError::InvalidParameter { .. })
    ));
}
