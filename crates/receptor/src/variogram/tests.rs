use super::distance::*;
use super::fit::*;
use super::full::*;
use super::params::*;
use super::sampled::*;

/// `n` points of a regular grid, `nx` × `ny` per slab (x fastest), `spacing` apart (mm).
fn grid_coords(n: usize, [nx, ny]: [usize; 2], spacing: [f64; 3]) -> Vec<[f64; 3]> {
    (0..n)
        .map(|i| {
            [
                (i % nx) as f64 * spacing[0],
                (i / nx % ny) as f64 * spacing[1],
                (i / (nx * ny)) as f64 * spacing[2],
            ]
        })
        .collect()
}

#[test]
fn percentile_matches_numpy() {
    // numpy.percentile([1, 2, 3, 4, 10], 25) = 2.0; 70 -> 4.0 + 0.8 * 6 * ... = 3.8? check: pos 2.8 -> 3 + 0.8*(4-3) = 3.8
    assert_eq!(percentile(vec![10.0, 2.0, 4.0, 1.0, 3.0], 25.0), 2.0);
    assert!((percentile(vec![10.0, 2.0, 4.0, 1.0, 3.0], 70.0) - 3.8).abs() < 1e-12);
    assert_eq!(percentile(vec![5.0, 1.0], 100.0), 5.0);
    assert!((percentile_f32(vec![10.0, 2.0, 4.0, 1.0, 3.0], 70.0) - 3.8).abs() < 1e-6);
}

#[test]
fn weight_recurrence_matches_direct() {
    let h = linspace(3.0, 51.0, 25);
    let mut w = vec![0.0; 25];
    for u in [0.5, 3.0, 17.3, 50.9, 51.0, 60.0] {
        for b in [6.0, 2.0, 30.0] {
            vgram_weights_row(u, h[0], h[1] - h[0], b, &mut w);
            for k in 0..25 {
                let want = vgram_weight((u - h[k]).abs(), b);
                assert!(
                    (w[k] - want).abs() <= 1e-12 * want.max(1e-300) + 1e-300,
                    "u {u} b {b} k {k}: {} vs {want}",
                    w[k]
                );
            }
        }
    }
}

/// The smoother against the plain weighted average `Σ w_j x_j / Σ w_j` over each point's first
/// `k` neighbours (kernel weights rounded to f32, summed in neighbour order): the same bits where
/// no two neighbours are equidistant (every segment one neighbour), within rounding on a lattice
/// (segments of equidistant neighbours summed first); several maps at once as one at a time.
#[test]
fn smoother_is_the_weighted_average() {
    let lattice = grid_coords(80, [4, 5], [5.0, 5.0, 5.0]);
    let jittered: Vec<[f64; 3]> = lattice
        .iter()
        .enumerate()
        .map(|(i, c)| {
            [
                c[0] + (i as f64 * 0.37).sin(),
                c[1],
                c[2] + (i as f64).cos() * 0.3,
            ]
        })
        .collect();
    let x: Vec<f64> = (0..80).map(|i| ((i * 37 % 11) as f64).sin()).collect();
    let y: Vec<f64> = (0..80).map(|i| (i as f64 / 9.0).cos()).collect();
    let ks = [21, 9, 27, 15];
    for (coords, exact) in [(&jittered, true), (&lattice, false)] {
        let (idx, dist) = super::neighbours::k_nearest(coords, 30);
        let sm = super::smoother::Smoother::new(Kernel::Exp, idx.clone(), dist.clone(), 30, &ks);
        let both: Vec<f64> = x.iter().zip(&y).flat_map(|(a, b)| [*a, *b]).collect();
        let (mut one, mut two) = (vec![0.0; 80 * 4], vec![0.0; 80 * 4 * 2]);
        sm.smooth(&x, 1, &mut one);
        sm.smooth(&both, 2, &mut two);
        for i in 0..80 {
            for (d, &k) in ks.iter().enumerate() {
                let mut w = vec![0.0; k];
                Kernel::Exp.weights(&dist[i * 30..i * 30 + k], &mut w);
                let (mut s, mut ws) = (0.0, 0.0);
                for (&j, &wj) in idx[i * 30..i * 30 + k].iter().zip(&w) {
                    let wj = f64::from(wj as f32);
                    s += wj * x[j as usize];
                    ws += wj;
                }
                let want = s / ws;
                let got = one[i * 4 + d];
                if exact {
                    assert_eq!(got, want, "point {i}, k {k}");
                } else {
                    assert!(
                        (got - want).abs() <= 1e-14 * want.abs().max(1.0),
                        "point {i}, k {k}"
                    );
                }
                assert_eq!(two[i * 8 + d], got);
            }
        }
    }
}

#[test]
fn regress_recovers_line() {
    let x = [1.0, 2.0, 3.0, 4.0];
    let y: Vec<f64> = x.iter().map(|v| 0.5 + 2.0 * v).collect();
    let (a, b, s) = regress(&x, &y);
    assert!((a - 0.5).abs() < 1e-12 && (b - 2.0).abs() < 1e-12 && s < 1e-20);
}

#[test]
fn batched_and_generic_variogram_agree() {
    let coords = grid_coords(60, [5, 4], [7.0, 6.0, 9.0]);
    let d = DistanceMatrix::from_coordinates(&coords).unwrap();
    let x: Vec<f64> = coords
        .iter()
        .map(|c| (c[0] / 10.0).sin() + c[2] / 20.0)
        .collect();
    let g = VariogramSurrogates::new(&x, &d, VariogramParams::default()).unwrap();
    let a = g.smoothed_variogram(&x);
    // naive reference: direct Gaussian weights, all pairs below the cutoff
    let v = g.half_sq_diffs(&x);
    let b: Vec<f64> =
        g.h.iter()
            .map(|&hk| {
                let w: Vec<f64> =
                    g.u.iter()
                        .map(|&u| vgram_weight((u - hk).abs(), g.b))
                        .collect();
                w.iter().zip(&v).map(|(a, b)| a * b).sum::<f64>() / w.iter().sum::<f64>()
            })
            .collect();
    for (p, q) in a.iter().zip(&b) {
        assert!((p - q).abs() < 1e-12 * p.abs().max(1.0));
    }
}

#[test]
fn bad_inputs_are_errors() {
    let coords: Vec<[f64; 3]> = (0..10).map(|i| [i as f64, 0.0, 0.0]).collect();
    let x: Vec<f64> = (0..10).map(|i| (i as f64).sin()).collect();
    let d = DistanceMatrix::from_coordinates(&coords).unwrap();
    assert!(VariogramSurrogates::new(&x[..9], &d, VariogramParams::default()).is_err());
    let mut bad = x.clone();
    bad[3] = f64::NAN;
    assert!(VariogramSurrogates::new(&bad, &d, VariogramParams::default()).is_err());
    let p = VariogramParams {
        deltas: vec![0.0],
        ..Default::default()
    };
    assert!(VariogramSurrogates::new(&x, &d, p).is_err());
    assert!(
        SampledSurrogates::new(
            &x,
            &coords,
            SampledParams {
                knn: 10,
                ns: 5,
                ..Default::default()
            }
        )
        .is_err()
    );
    // all kept neighbour distances equal: no variogram range
    assert!(
        SampledSurrogates::new(
            &x,
            &coords,
            SampledParams {
                knn: 2,
                ns: 5,
                pv: 10.0,
                ..Default::default()
            }
        )
        .is_err()
    );
    let asym = ndarray::array![[0.0, 1.0], [2.0, 0.0]];
    assert!(DistanceMatrix::from_array(asym.view()).is_err());
}

/// A batch of surrogates gives each the values it has alone, and the weight table gives the
/// weights the recurrence gives: `generate` is the same whatever the batch and the table.
#[test]
fn batches_and_weight_table_change_nothing() {
    let coords = grid_coords(90, [5, 6], [6.0, 5.0, 7.0]);
    let d = DistanceMatrix::from_coordinates(&coords).unwrap();
    let x: Vec<f64> = coords
        .iter()
        .map(|c| (c[0] / 9.0).sin() + (c[1] / 13.0).cos() + c[2] / 30.0)
        .collect();
    let g = VariogramSurrogates::new(&x, &d, VariogramParams::default()).unwrap();
    assert!(g.wtab.is_some());
    let together = g.batch(5, 0..4);
    for (i, row) in together.iter().enumerate() {
        assert_eq!(row, &g.batch(5, i as u64..i as u64 + 1)[0], "surrogate {i}");
    }
    let mut no_table = g.clone();
    no_table.wtab = None;
    assert_eq!(no_table.batch(5, 0..4), together);
    let all = g.generate(4, 5);
    for (i, row) in together.iter().enumerate() {
        assert_eq!(all.row(i).to_vec(), *row);
    }
}

/// The sampled method's batches give each surrogate its values alone.
#[test]
fn sampled_batches_change_nothing() {
    let coords = grid_coords(200, [6, 6], [4.0, 4.0, 4.0]);
    let x: Vec<f64> = coords
        .iter()
        .map(|c| (c[0] / 7.0).sin() + (c[1] / 11.0).cos() + c[2] / 20.0)
        .collect();
    let params = SampledParams {
        knn: 60,
        ns: 40,
        ..SampledParams::default()
    };
    let g = SampledSurrogates::new(&x, &coords, params).unwrap();
    let together = g.batch(9, 2..6);
    for (i, row) in together.iter().enumerate() {
        assert_eq!(
            row,
            &g.batch(9, i as u64 + 2..i as u64 + 3)[0],
            "surrogate {i}"
        );
    }
    let all = g.generate(6, 9).slice_move(ndarray::s![2.., ..]);
    for (i, row) in together.iter().enumerate() {
        assert_eq!(all.row(i).to_vec(), *row);
    }
}

/// The screen decides most surrogates' neighbourhood size, and every surrogate is what the exact
/// variograms of all sizes give, bit for bit: smooth and rough maps on a jittered lattice and
/// on random points, several bandwidths.
#[test]
fn screened_surrogates_are_exact() {
    let lattice = grid_coords(150, [6, 5], [6.0, 5.0, 7.0]);
    let scattered: Vec<[f64; 3]> = (0..120)
        .map(|i| {
            let t = i as f64;
            [
                (t * 1.7).sin() * 40.0,
                (t * 0.61).cos() * 30.0,
                (t * 2.9).sin() * 25.0,
            ]
        })
        .collect();
    let mut decided = 0;
    let mut total = 0;
    for (coords, b) in [(&lattice, None), (&scattered, None), (&lattice, Some(20.0))] {
        let d = DistanceMatrix::from_coordinates(coords).unwrap();
        for rough in [0.0, 1.0] {
            let x: Vec<f64> = coords
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    (c[0] / 15.0).sin() + c[2] / 40.0 + rough * ((i * 7919 % 100) as f64 / 100.0)
                })
                .collect();
            let params = VariogramParams {
                b,
                ..VariogramParams::default()
            };
            let g = VariogramSurrogates::new(&x, &d, params).unwrap();
            let mut exact = g.clone();
            exact.screen = None;
            let n = 60;
            assert_eq!(g.generate(n, 3), exact.generate(n, 3));
            // how many the screen decided
            let nd = g.ks.len();
            let mut rng = crate::rng_for(3, 0);
            use rand::seq::SliceRandom;
            let mut all = vec![0.0; x.len() * nd * 4];
            let mut perms = vec![0.0; x.len() * 4];
            for s in 0..4 {
                let mut p = x.clone();
                p.shuffle(&mut rng);
                for (i, v) in p.iter().enumerate() {
                    perms[i * 4 + s] = *v;
                }
            }
            g.smoother.smooth(&perms, 4, &mut all);
            let screen = g.screen.as_ref().unwrap();
            let nh = g.h.len();
            let (approx, bound) = screen.variograms(&g.pairs, &all, nd * 4, &g.den);
            for s in 0..4 {
                let r = |d: usize| (s * nd + d) * nh..(s * nd + d + 1) * nh;
                let xs: Vec<&[f64]> = (0..nd).map(|d| &approx[r(d)]).collect();
                let es: Vec<&[f64]> = (0..nd).map(|d| &bound[r(d)]).collect();
                total += 1;
                if let Some(best) = super::screen::certain_best(&g.target_smvar, &xs, &es) {
                    decided += 1;
                    // the bound holds: each exact value lies within it
                    let exact_sv = g.smoothed_variograms(
                        &(0..x.len())
                            .flat_map(|i| (0..nd).map(move |d| (i, d)))
                            .map(|(i, d)| all[i * nd * 4 + s * nd + d])
                            .collect::<Vec<_>>(),
                        nd,
                    );
                    for d in 0..nd {
                        for k in 0..nh {
                            assert!((exact_sv[d][k] - xs[d][k]).abs() <= es[d][k]);
                        }
                    }
                    let sse = |d: usize| regress(&exact_sv[d], &g.target_smvar).2;
                    assert!((0..nd).all(|d| d == best || sse(best) < sse(d)));
                }
            }
        }
    }
    assert!(
        decided * 10 >= total * 7,
        "the screen decided {decided} of {total}"
    );
}
