//! The permutation test: observed statistics, the shuffles' maxima, FWE and uncorrected p-values.

use ndarray::{Array1, ArrayView2, Axis, Slice};
use rayon::prelude::*;

use super::engine::{Engine, VOXEL_TILE, scan_tile, tail_stat, tie_floor};
use super::shuffles::{Shuffle, draw_shuffles};
use super::spatial::{BlockLevels, PerShuffle, Scratch, Spatial};
use super::types::{
    Cluster, ClusterResult, PermutationOptions, PermutationResult, Scheme, Tail, TfceResult,
};
use crate::error::{Result, StatsError, check_finite, check_len};
use crate::geometry::{MaskGeometry, Neighbours, label_components};
use crate::glm::GlmDesign;

/// Voxelwise permutation test of one contrast.
///
/// * `data`: (n, V) — rows are observations in design order, columns masked voxels (f32, any
///   units; converted to f64 internally).
/// * `design`: design matrix and contrast; for a one-sample test of difference maps use
///   [`GlmDesign::one_sample`] and [`Scheme::SignFlip`] (or [`one_sample_sign_flip`]).
/// * `geometry`: required when TFCE or clusters are requested (its voxel count must be V).
///
/// Nuisance regressors (the part of `X` not tested by the contrast) are handled by
/// Freedman–Lane (Winkler et al. 2014). See the module docs for the p-value convention.
pub fn permutation_test(
    data: ArrayView2<'_, f32>,
    design: &GlmDesign,
    scheme: &Scheme,
    geometry: Option<&MaskGeometry>,
    options: &PermutationOptions,
) -> Result<PermutationResult> {
    let spatial_needed = options.tfce.is_some() || options.cluster_threshold.is_some();
    let Some(g) = geometry.filter(|_| spatial_needed) else {
        return permutation_test_ordered(data, design, scheme, geometry, options);
    };
    check_len("geometry voxels", data.ncols(), g.n_voxels())?;
    // Work internally in grid order (the first axis fastest), the order in which the TFCE
    // sweep visits each level's voxels, so that its reads and writes by column walk forwards;
    // map results back afterwards. (A mask's columns are usually in this order already.)
    let mut order: Vec<usize> = (0..g.n_voxels()).collect();
    order.sort_by_key(|&v| {
        let [i, j, k] = g.ijk()[v];
        (k, j, i)
    });
    let g2 = MaskGeometry::from_ijk(g.dims(), order.iter().map(|&v| g.ijk()[v]).collect())?;
    let data2 = data.select(Axis(1), &order);
    let mut res = permutation_test_ordered(data2.view(), design, scheme, Some(&g2), options)?;
    let back = |a: &Array1<f64>| {
        let mut out = Array1::zeros(a.len());
        for (p, &v) in order.iter().enumerate() {
            out[v] = a[p];
        }
        out
    };
    res.t = back(&res.t);
    res.effect = back(&res.effect);
    res.p_uncorrected = back(&res.p_uncorrected);
    res.p_fwe = back(&res.p_fwe);
    if let Some(tf) = res.tfce.as_mut() {
        tf.values = back(&tf.values);
        tf.p_uncorrected = back(&tf.p_uncorrected);
        tf.p_fwe = back(&tf.p_fwe);
    }
    if let Some(cl) = res.clusters.as_mut() {
        cl.p_fwe = back(&cl.p_fwe);
        for c in cl.clusters.iter_mut() {
            c.peak_voxel = order[c.peak_voxel];
        }
        // restore the documented order (size desc, then original peak column) and relabel
        cl.clusters
            .sort_by(|a, b| b.size.cmp(&a.size).then(a.peak_voxel.cmp(&b.peak_voxel)));
        let mut relabel = vec![0u32; cl.clusters.len() + 1];
        for (new, c) in cl.clusters.iter_mut().enumerate() {
            relabel[c.label as usize] = new as u32 + 1;
            c.label = new as u32 + 1;
        }
        let mut labels = vec![0u32; cl.labels.len()];
        for (p, &v) in order.iter().enumerate() {
            labels[v] = relabel[cl.labels[p] as usize];
        }
        cl.labels = labels;
    }
    Ok(res)
}

pub(super) fn permutation_test_ordered(
    data: ArrayView2<'_, f32>,
    design: &GlmDesign,
    scheme: &Scheme,
    geometry: Option<&MaskGeometry>,
    options: &PermutationOptions,
) -> Result<PermutationResult> {
    let (n, nv) = data.dim();
    check_len("data rows (observations)", design.n(), n)?;
    if nv == 0 {
        return Err(StatsError::TooFewObservations {
            what: "voxels",
            needed: 1,
            got: 0,
        });
    }
    check_finite("data", data.iter().map(|&v| v as f64))?;
    if let Some(p) = &options.tfce {
        p.validate()?;
    }
    if let Some(thr) = options.cluster_threshold
        && !(thr.is_finite() && thr > 0.0)
    {
        return Err(StatsError::InvalidParameter {
            name: "cluster_threshold",
            value: thr.to_string(),
            reason: "must be finite and > 0",
        });
    }
    let spatial_needed = options.tfce.is_some() || options.cluster_threshold.is_some();
    if spatial_needed {
        match geometry {
            None => {
                return Err(StatsError::InvalidParameter {
                    name: "geometry",
                    value: "none".into(),
                    reason: "a mask geometry is required for tfce or clusters",
                });
            }
            Some(g) => check_len("geometry voxels", nv, g.n_voxels())?,
        }
    }
    let engine = Engine::new(data, design)?;
    let (shuffles, exhaustive) = draw_shuffles(n, scheme, options.n_permutations, options.seed)?;
    let tail = options.tail;

    // observed (identity) through the same kernel
    let mut t_obs = vec![0.0; nv];
    let mut effect = vec![0.0; nv];
    engine.for_each_tile(&shuffles[..1], |_, v0, tile| {
        t_obs[v0..v0 + tile.len()].copy_from_slice(tile)
    });
    {
        let mut v0 = 0;
        while v0 < nv {
            let v1 = (v0 + VOXEL_TILE).min(nv);
            let e = engine
                .rows
                .row(0)
                .dot(&engine.w.slice_axis(Axis(1), Slice::from(v0..v1)));
            effect[v0..v1].copy_from_slice(e.as_slice().expect("contiguous"));
            v0 = v1;
        }
    }
    let stat_obs: Vec<f64> = t_obs.iter().map(|&t| tail_stat(t, tail)).collect();
    let floor_obs: Vec<f64> = stat_obs.iter().map(|&s| tie_floor(s)).collect();

    let tfce_nb = options
        .tfce
        .map(|p| geometry.expect("checked").neighbours(p.connectivity));
    let cl_nb = options.cluster_threshold.map(|_| {
        geometry
            .expect("checked")
            .neighbours(options.cluster_connectivity)
    });
    let dh = options.tfce.map(|p| {
        let m = match tail {
            Tail::Positive => t_obs.iter().cloned().fold(0.0, f64::max),
            Tail::Negative => t_obs.iter().map(|t| -t).fold(0.0, f64::max),
            Tail::TwoSided => t_obs.iter().map(|t| t.abs()).fold(0.0, f64::max),
        };
        p.resolve_dh(m)
    });
    let spatial = Spatial {
        tail,
        tfce: options.tfce.map(|p| {
            (
                p,
                dh.expect("set with tfce"),
                tfce_nb.as_ref().expect("set"),
            )
        }),
        cluster: options
            .cluster_threshold
            .map(|thr| (thr, cl_nb.as_ref().expect("set"))),
    };
    let mut tfce_obs = vec![0.0; nv];
    let mut obs_labels = None;
    if spatial_needed {
        let mut sc = Scratch::new(nv, tfce_nb.as_ref());
        let _largest = spatial.run(&t_obs, &mut sc, |v, x| tfce_obs[v] = x);
    }
    if let Some(thr) = options.cluster_threshold {
        obs_labels = Some(observed_clusters(
            &t_obs,
            thr,
            tail,
            cl_nb.as_ref().expect("set"),
        )?);
    }
    let tfce_floor: Vec<f64> = tfce_obs.iter().map(|&x| tie_floor(x.abs())).collect();

    // permutation loop
    let rank1 = if spatial_needed {
        None
    } else {
        engine.rank1_scan(&floor_obs)
    };
    // TFCE (and clusters) are computed from each map's one-byte levels (and bytes of which
    // voxels pass the cluster threshold), filled tile by tile (a quarter to an eighth of the t
    // maps' memory), else (clusters alone) from the t maps
    let levels = spatial_needed && spatial.levels_suffice();
    // shuffles per matrix product: the more, the fewer passes over the residuals (n × V), but
    // every shuffle's t map (or levels) is kept for TFCE and clusters, and the product's output
    // per voxel tile grows with `r`
    let block = match (spatial_needed, &rank1) {
        (true, _) if levels => 64,
        (true, _) => 16,
        (false, Some(_)) => 256,
        (false, None) => 64,
    };
    let blocks: Vec<&[Shuffle]> = shuffles.chunks(block).collect();
    struct Acc {
        counts: Vec<u32>,
        tfce_counts: Vec<u32>,
        per: Vec<PerShuffle>,
    }
    let track_tfce = options.tfce.is_some();
    let acc = blocks
        .par_iter()
        .enumerate()
        .fold(
            || {
                (
                    Acc {
                        counts: vec![0; nv],
                        tfce_counts: vec![0; if track_tfce { nv } else { 0 }],
                        per: Vec::new(),
                    },
                    None::<(Scratch, Vec<f64>, BlockLevels)>,
                )
            },
            |(mut acc, mut scratch), (bi, shs)| {
                let base = bi * block;
                let mut maxes = vec![f64::NEG_INFINITY; shs.len()];
                if spatial_needed {
                    let (sc, full, bl) = scratch.get_or_insert_with(|| {
                        let full = vec![0.0; if levels { nv } else { nv * block }];
                        (
                            Scratch::new(nv, tfce_nb.as_ref()),
                            full,
                            BlockLevels::default(),
                        )
                    });
                    if levels {
                        bl.reset(shs.len(), nv, &spatial);
                    }
                    engine.for_each_tile(shs, |b, v0, tile| {
                        let v1 = v0 + tile.len();
                        let mx = scan_tile(tile, &floor_obs[v0..v1], &mut acc.counts[v0..v1], tail);
                        maxes[b] = maxes[b].max(mx);
                        if levels {
                            spatial.tile_levels(bl, b, v0, tile);
                        } else {
                            full[b * nv + v0..b * nv + v0 + tile.len()].copy_from_slice(tile);
                        }
                    });
                    for b in 0..shs.len() {
                        let counts = &mut acc.tfce_counts;
                        let mut count = |v: usize, x: f64| {
                            counts[v] += u32::from(x.abs() >= tfce_floor[v]);
                        };
                        let from_levels = if levels {
                            spatial.run_levels(bl, b, sc, &mut count)
                        } else {
                            None
                        };
                        let (mt, maxc) = match from_levels {
                            Some(found) => found,
                            None => {
                                let at = if levels {
                                    // levels beyond one byte: this shuffle's t map again (the
                                    // same product, the same bytes) and TFCE from it
                                    engine.for_each_tile(&shs[b..b + 1], |_, v0, tile| {
                                        full[v0..v0 + tile.len()].copy_from_slice(tile)
                                    });
                                    0
                                } else {
                                    b * nv
                                };
                                spatial.run(&full[at..at + nv], sc, count)
                            }
                        };
                        acc.per.push(PerShuffle {
                            index: base + b,
                            max_t: maxes[b],
                            max_tfce: mt,
                            max_cluster: maxc,
                        });
                    }
                } else {
                    match &rank1 {
                        Some(scan) => engine.scan_rank1(
                            shs,
                            scan,
                            &floor_obs,
                            &mut acc.counts,
                            tail,
                            &mut maxes,
                        ),
                        None => engine.for_each_tile(shs, |b, v0, tile| {
                            let v1 = v0 + tile.len();
                            let mx =
                                scan_tile(tile, &floor_obs[v0..v1], &mut acc.counts[v0..v1], tail);
                            maxes[b] = maxes[b].max(mx);
                        }),
                    }
                    for b in 0..shs.len() {
                        acc.per.push(PerShuffle {
                            index: base + b,
                            max_t: maxes[b],
                            max_tfce: 0.0,
                            max_cluster: 0,
                        });
                    }
                }
                (acc, scratch)
            },
        )
        .map(|(acc, _)| acc)
        .reduce(
            || Acc {
                counts: vec![0; nv],
                tfce_counts: vec![0; if track_tfce { nv } else { 0 }],
                per: Vec::new(),
            },
            |mut a, b| {
                for (x, y) in a.counts.iter_mut().zip(&b.counts) {
                    *x += y;
                }
                for (x, y) in a.tfce_counts.iter_mut().zip(&b.tfce_counts) {
                    *x += y;
                }
                a.per.extend(b.per);
                a
            },
        );
    let mut per = acc.per;
    per.sort_by_key(|p| p.index);
    let total = shuffles.len();
    let nf = total as f64;
    let max_t_null: Vec<f64> = per.iter().map(|p| p.max_t).collect();
    let p_unc = Array1::from_iter(acc.counts.iter().map(|&c| c as f64 / nf));
    let p_fwe = fwe_p(&max_t_null, &stat_obs);

    let tfce = options.tfce.map(|_| {
        let max_null: Vec<f64> = per.iter().map(|p| p.max_tfce).collect();
        let abs_obs: Vec<f64> = tfce_obs.iter().map(|x| x.abs()).collect();
        TfceResult {
            values: Array1::from(tfce_obs.clone()),
            dh: dh.expect("set"),
            p_uncorrected: Array1::from_iter(acc.tfce_counts.iter().map(|&c| c as f64 / nf)),
            p_fwe: fwe_p(&max_null, &abs_obs),
            max_null,
        }
    });
    let clusters = match (options.cluster_threshold, obs_labels) {
        (Some(thr), Some((labels, mut list))) => {
            let max_size_null: Vec<usize> = per.iter().map(|p| p.max_cluster).collect();
            let g = geometry.expect("checked");
            let mut pmap = Array1::from_elem(nv, 1.0);
            for c in list.iter_mut() {
                c.p_fwe = max_size_null.iter().filter(|&&m| m >= c.size).count() as f64 / nf;
                c.peak_ijk = g.ijk()[c.peak_voxel];
            }
            for v in 0..nv {
                if labels[v] > 0 {
                    pmap[v] = list[labels[v] as usize - 1].p_fwe;
                }
            }
            Some(ClusterResult {
                threshold: thr,
                labels,
                clusters: list,
                p_fwe: pmap,
                max_size_null,
            })
        }
        _ => None,
    };
    Ok(PermutationResult {
        t: Array1::from(t_obs),
        effect: Array1::from(effect),
        df: engine.df,
        p_uncorrected: p_unc,
        p_fwe,
        max_t_null,
        tfce,
        clusters,
        n_shuffles: total,
        exhaustive,
        tail,
    })
}

pub(super) fn fwe_p(max_null: &[f64], obs: &[f64]) -> Array1<f64> {
    let mut sorted = max_null.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let nf = sorted.len() as f64;
    Array1::from_iter(obs.iter().map(|&o| {
        let f = tie_floor(o);
        let below = sorted.partition_point(|&m| m < f);
        (sorted.len() - below) as f64 / nf
    }))
}

/// Clusters of the observed map: labels (1 = largest) and the list (p filled in later).
pub(super) fn observed_clusters(
    t: &[f64],
    thr: f64,
    tail: Tail,
    nb: &Neighbours,
) -> Result<(Vec<u32>, Vec<Cluster>)> {
    let nv = t.len();
    let mut found: Vec<(i8, Vec<u32>, usize)> = Vec::new(); // sign, labels, n
    let signs: &[i8] = match tail {
        Tail::Positive => &[1],
        Tail::Negative => &[-1],
        Tail::TwoSided => &[1, -1],
    };
    for &sg in signs {
        let active: Vec<bool> = t.iter().map(|&x| sg as f64 * x >= thr).collect();
        let (labels, sizes) = label_components(nb, &active)?;
        found.push((sg, labels, sizes.len()));
    }
    let mut list = Vec::new();
    for (sg, labels, ncl) in &found {
        let mut peaks: Vec<(usize, f64, usize)> = vec![(usize::MAX, f64::NEG_INFINITY, 0); *ncl];
        for v in 0..nv {
            let l = labels[v];
            if l == 0 {
                continue;
            }
            let e = &mut peaks[l as usize - 1];
            e.2 += 1;
            let val = *sg as f64 * t[v];
            if val > e.1 {
                e.0 = v;
                e.1 = val;
            }
        }
        for (i, (pv, _, size)) in peaks.into_iter().enumerate() {
            list.push((
                Cluster {
                    label: 0,
                    sign: *sg,
                    size,
                    peak_voxel: pv,
                    peak_ijk: [0; 3],
                    peak_t: t[pv],
                    p_fwe: 1.0,
                },
                *sg,
                i as u32 + 1,
            ));
        }
    }
    list.sort_by(|a, b| {
        b.0.size
            .cmp(&a.0.size)
            .then(a.0.peak_voxel.cmp(&b.0.peak_voxel))
    });
    let mut out_labels = vec![0u32; nv];
    let mut clusters = Vec::with_capacity(list.len());
    for (new, (mut c, sg, old)) in list.into_iter().enumerate() {
        c.label = new as u32 + 1;
        let labels = &found.iter().find(|f| f.0 == sg).expect("sign present").1;
        for v in 0..nv {
            if labels[v] == old {
                out_labels[v] = c.label;
            }
        }
        clusters.push(c);
    }
    Ok((out_labels, clusters))
}

/// One-sample sign-flipping test of within-subject difference maps (`data`: (n_subjects, V)),
/// e.g. the ketamine effect `during − before`. Same as [`permutation_test`] with
/// [`GlmDesign::one_sample`] and [`Scheme::SignFlip`].
pub fn one_sample_sign_flip(
    data: ArrayView2<'_, f32>,
    geometry: Option<&MaskGeometry>,
    options: &PermutationOptions,
) -> Result<PermutationResult> {
    let design = GlmDesign::one_sample(data.nrows())?;
    permutation_test(data, &design, &Scheme::SignFlip, geometry, options)
}

/// Parametric p of a t statistic under Student's t with `df` degrees of freedom, for `tail`.
pub fn t_to_p(t: f64, df: f64, tail: Tail) -> Result<f64> {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let d = StudentsT::new(0.0, 1.0, df).map_err(|_| StatsError::InvalidParameter {
        name: "df",
        value: df.to_string(),
        reason: "must be > 0",
    })?;
    Ok(match tail {
        Tail::Positive => d.sf(t),
        Tail::Negative => d.cdf(t),
        Tail::TwoSided => (2.0 * d.sf(t.abs())).min(1.0),
    })
}

/// `-log10(p)`, the value conventionally written to stat maps (larger = more significant).
pub fn neg_log10(p: &Array1<f64>) -> Array1<f64> {
    p.mapv(|x| -x.log10())
}
