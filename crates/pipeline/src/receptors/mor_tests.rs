use std::path::{Path, PathBuf};

use cbflow_image::Volume;
use cbflow_receptor::{GroupStat, NullModel};
use cbflow_resources::Registry;
use ndarray::{Array3, Zip};

use super::load::*;
use super::options::*;
use super::run::*;
use crate::template::Template;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

/// Writes a minimal crossover dataset: `sessions.tsv` per subject (BIDS side) and the
/// participant level's template-space CBF maps (derivatives side), ΔCBF under placebo =
/// `amplitude × effect × (1 + 0.5 N(0,1))` plus noise; then the one-sample t map of the
/// smoothed placebo ΔCBF as the group level's `ketamineUnderPlacebo` t map.
pub(crate) fn write_study(
    bids: &Path,
    out: &Path,
    tpl: &Template,
    effect: &Array3<f32>,
    n_sub: usize,
    amplitude: f32,
    seed: u64,
) {
    std::fs::create_dir_all(bids).unwrap();
    std::fs::write(
        bids.join("dataset_description.json"),
        r#"{"Name": "t", "BIDSVersion": "1.10.0"}"#,
    )
    .unwrap();
    let mut part = String::from("participant_id\n");
    let base = Zip::from(tpl.gm.frame(0))
        .and(tpl.wm.frame(0))
        .map_collect(|&g, &w| 60.0 * g + 22.0 * w);
    let brain = tpl.brain_mask.frame(0).mapv(|v| v > 0.5);
    let noise = Normal::new(0.0f32, 4.0).unwrap();
    let std = Normal::new(0.0f32, 1.0).unwrap();
    for s in 0..n_sub {
        let sub = format!("{:02}", s + 1);
        part.push_str(&format!("sub-{sub}\n"));
        let dir = bids.join(format!("sub-{sub}"));
        std::fs::create_dir_all(&dir).unwrap();
        let (pl, nl) = if s % 2 == 0 { (1, 2) } else { (2, 1) };
        std::fs::write(
            dir.join(format!("sub-{sub}_sessions.tsv")),
            format!("session_id\tpretreatment\tperiod\nses-{pl}\tplacebo\t{pl}\nses-{nl}\tnaltrexone\t{nl}\n"),
        )
        .unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(s as u64);
        let scale = 1.0 + 0.5 * std.sample(&mut rng);
        for (ses, gain) in [(pl, 1.0f32), (nl, 0.3)] {
            for run in ["1", "2"] {
                let mut a = base.clone();
                Zip::from(&mut a)
                    .and(effect)
                    .and(&brain)
                    .for_each(|v, &e, &b| {
                        if !b {
                            *v = 0.0;
                            return;
                        }
                        if run == "2" {
                            *v += amplitude * gain * scale * e;
                        }
                        *v += noise.sample(&mut rng);
                    });
                let p = crate::outputs::template_output_run(
                    out,
                    &sub,
                    &ses.to_string(),
                    run,
                    tpl,
                    None,
                    ".nii.gz",
                )
                .unwrap();
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                cbflow_image::write(
                    &p,
                    &Volume::new(a.into_dyn(), tpl.grid.affine).unwrap(),
                    cbflow_image::DataType::Float32,
                )
                .unwrap();
            }
        }
    }
    std::fs::write(bids.join("participants.tsv"), part).unwrap();
    // group t map of ketamineUnderPlacebo (one-sample t of the smoothed placebo ΔCBF)
    let mut opts = ReceptorOptions::new(
        bids.to_path_buf(),
        out.to_path_buf(),
        tpl.clone(),
        PathBuf::new(),
    );
    opts.smoothing_fwhm_mm = 6.0;
    let sm = load_subject_maps(&opts).unwrap();
    let d = &sm.arms[1] - &sm.arms[0];
    let dd = d.mapv(f64::from);
    let t = cbflow_receptor::group_map(dd.view(), GroupStat::T).unwrap();
    let mut img = Array3::<f32>::zeros(brain.raw_dim());
    let flat = img.as_slice_mut().unwrap();
    for (c, &idx) in sm.cols.iter().enumerate() {
        flat[idx] = t[c] as f32;
    }
    let p = group_map_path(&opts, "ketamineUnderPlacebo").unwrap();
    cbflow_image::write(
        &p,
        &Volume::new(img.into_dyn(), tpl.grid.affine).unwrap(),
        cbflow_image::DataType::Float32,
    )
    .unwrap();
    // the contrast table, from which the receptor step rebuilds the contrast
    std::fs::write(
        out.join("desc-contrasts_table.tsv"),
        "contrast\tdescription\ttail\tplacebo_before\tplacebo_during\tnaltrexone_before\tnaltrexone_during\nketamineUnderPlacebo\tketamine under placebo\tpositive\t-1\t1\t0\t0\n",
    )
    .unwrap();
}

/// A ΔCBF effect built to follow the MOR map (plus noise, 10 subjects) correlates with MOR
/// significantly under all three nulls (after FDR); an unrelated control map does not.
#[test]
fn effect_following_mor_is_found_and_control_is_not() {
    let root = cbflow_testdata::resources_for(&["MOR"]);
    let tpl = Template::phantom();
    let reg = Registry::builtin().unwrap();
    let mor = load_receptor_map(reg.receptor("MOR").unwrap(), &root, &tpl).unwrap();
    let effect = mor.z.mapv(|v| if v.is_finite() { v } else { 0.0 });
    let tmp = tempfile::tempdir().unwrap();
    let (bids, out) = (tmp.path().join("bids"), tmp.path().join("out"));
    write_study(&bids, &out, &tpl, &effect, 10, 3.0, 7);
    let mut opts = ReceptorOptions::new(bids, out.clone(), tpl, root);
    // NET: a registered control whose parcel values are unrelated to MOR's (r = 0.03 here)
    opts.maps = vec!["MOR".into(), "NET".into()];
    opts.parcellation = "schaefer100tian".into();
    opts.n_null = 500;
    let s = receptor_correlations(&opts).unwrap();
    assert_eq!(
        s.contrasts.len(),
        1,
        "only the placebo contrast has a group map"
    );
    let res = &s.contrasts[0].results;
    for r in res {
        eprintln!(
            "{} r {:.3} n {} p {:?} q {:?}",
            r.map, r.r, r.n, r.p, r.p_fdr
        );
    }
    let (mor, net) = (&res[0], &res[1]);
    assert!(mor.r > 0.8, "MOR r = {}", mor.r);
    for m in [
        NullModel::Variogram,
        NullModel::Juspace,
        NullModel::SignFlip,
    ] {
        assert!(mor.p_fdr[&m] < 0.05, "MOR {m:?}: q = {}", mor.p_fdr[&m]);
        assert!(net.p[&m] > 0.05, "NET {m:?}: p = {}", net.p[&m]);
    }
    // the contract's table: columns in order, one row per map
    let table =
        std::fs::read_to_string(out.join("contrast-ketamineUnderPlacebo_desc-receptors_table.tsv"))
            .unwrap();
    let mut lines = table.lines();
    assert_eq!(
        lines.next().unwrap(),
        "map\ttarget\ttracer\tmethod\tlevel\tparcellation\tn\tr\tp_variogram\tq_variogram\tp_juspace\tq_juspace\tp_signflip\tq_signflip"
    );
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("MOR\tMOR\t[11C]carfentanil\tspearman\tparcel\tschaefer100tian\t")
    );
    assert_eq!(lines.count(), 1);
    assert!(
        out.join("contrast-ketamineUnderPlacebo_desc-receptors_table.json")
            .is_file()
    );
    let nulls = std::fs::read_to_string(
        out.join("contrast-ketamineUnderPlacebo_desc-receptorNulls_table.tsv"),
    )
    .unwrap();
    assert_eq!(nulls.lines().count(), 1 + 2 * 3 * 500);
    // same bytes with one thread
    let again = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| receptor_correlations(&opts).unwrap());
    assert_eq!(again.contrasts[0].results, s.contrasts[0].results);
    assert_eq!(
        std::fs::read_to_string(
            out.join("contrast-ketamineUnderPlacebo_desc-receptorNulls_table.tsv")
        )
        .unwrap(),
        nulls
    );
}
