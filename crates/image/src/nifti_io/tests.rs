use nalgebra::{Matrix3, Matrix4};
use ndarray::{ArrayD, IxDyn};

use super::affine::*;
use super::read::*;

#[test]
fn quaternion_round_trip_las_and_oblique() {
    let mut a = Matrix4::identity();
    a[(0, 0)] = -3.0;
    a[(1, 1)] = 3.0;
    a[(2, 2)] = 3.0;
    a[(0, 3)] = 90.0;
    let (q, qfac, zoom) = affine_to_quatern(&a).unwrap();
    let mut pd = [qfac, zoom[0], zoom[1], zoom[2], 0.0, 0.0, 0.0, 0.0];
    pd[0] = qfac;
    let back = quatern_to_affine(q, [90.0, 0.0, 0.0], &pd);
    assert!((back - a).abs().max() < 1e-12, "{back}");

    // A rotation of 30° about z and 180° about x (the a < 0.5 branch), scaled 2, 2.5, 4.
    let (s, c) = (30f64.to_radians().sin(), 30f64.to_radians().cos());
    let rz = Matrix3::new(c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0);
    let rx = Matrix3::new(1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0);
    let m = rz * rx * Matrix3::from_diagonal(&nalgebra::Vector3::new(2.0, 2.5, 4.0));
    let mut a = Matrix4::identity();
    a.fixed_view_mut::<3, 3>(0, 0).copy_from(&m);
    let (q, qfac, zoom) = affine_to_quatern(&a).unwrap();
    let pd = [qfac, zoom[0], zoom[1], zoom[2], 0.0, 0.0, 0.0, 0.0];
    let back = quatern_to_affine(q, [0.0; 3], &pd);
    assert!((back - a).abs().max() < 1e-12, "{back} vs {a}");

    // Shear: no qform.
    a[(0, 1)] = 0.7;
    assert!(affine_to_quatern(&a).is_none());
}

#[test]
fn integer_scaling_rules() {
    let whole = ArrayD::from_shape_vec(IxDyn(&[3]), vec![0.0f32, 7.0, 255.0]).unwrap();
    assert_eq!(integer_scaling(&whole, 0.0, 255.0).unwrap(), (1.0, 0.0));
    let frac = ArrayD::from_shape_vec(IxDyn(&[3]), vec![-1.5f32, 0.25, 3.0]).unwrap();
    let (s, i) = integer_scaling(&frac, 0.0, 255.0).unwrap();
    assert!((i - -1.5).abs() < 1e-6 && (s - 4.5 / 255.0).abs() < 1e-8);
    let nan = ArrayD::from_shape_vec(IxDyn(&[1]), vec![f32::NAN]).unwrap();
    assert!(integer_scaling(&nan, 0.0, 255.0).is_err());
}
