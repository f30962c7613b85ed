//! A real tiny run: synthetic study → participant level → group level, plus files that follow
//! the CONTRACTS of outputs other steps will write (ROI time series, receptor tables).

use std::path::{Path, PathBuf};

/// Subjects in the fixtures (the group level correlates with at least 5).
pub const SUBJECTS: usize = 5;
/// Receptor maps of the contract fixture: name and observed r.
pub const RECEPTOR_MAPS: [(&str, f64); 3] = [("MOR", 0.42), ("NMDA", -0.31), ("GABAa", 0.05)];

/// The fixture's directories (the temporary directory lives as long as this value).
pub struct Fixture {
    _tmp: tempfile::TempDir,
    /// BIDS input.
    pub bids: PathBuf,
    /// Derivatives.
    pub out: PathBuf,
}

/// The BIDS directory next to a derivatives directory of the fixture.
pub fn bids_dir(out: &Path) -> PathBuf {
    out.parent().unwrap().join("bids")
}

fn run_group(bids: &Path, out: &Path, permutations: usize) {
    run_group_with(
        bids,
        out,
        permutations,
        &cbflow_pipeline::StudyDesign::default(),
    );
}

/// The group level of the fixture with `design` and its default contrasts.
pub fn run_group_with(
    bids: &Path,
    out: &Path,
    permutations: usize,
    design: &cbflow_pipeline::StudyDesign,
) {
    cbflow_pipeline::group(&cbflow_pipeline::GroupOptions {
        design: design.clone(),
        n_permutations: permutations,
        seed: 1,
        contrasts: cbflow_pipeline::GroupContrast::defaults(design),
        ..cbflow_pipeline::GroupOptions::new(
            bids.to_path_buf(),
            out.to_path_buf(),
            cbflow_pipeline::Template::phantom(),
        )
    })
    .expect("group level");
}

/// The fixture from participant-level derivatives in `tmp`'s `out` (of the study in its
/// `bids`): the group level, the ROI time series and the receptor tables.
fn finish(tmp: tempfile::TempDir) -> Fixture {
    let bids = tmp.path().join("bids");
    let out = tmp.path().join("out");
    run_group(&bids, &out, 100);
    write_roi_timeseries(&out);
    write_receptor_tables(&out);
    Fixture {
        _tmp: tmp,
        bids,
        out,
    }
}

/// The real thing: cbflow-synth's study → participant level → group level. Takes minutes
/// (ten T1w normalisations), so only the ignored test uses it.
pub fn build_real() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let bids = tmp.path().join("bids");
    let out = tmp.path().join("out");
    let spec = cbflow_synth::SynthSpec {
        subjects: SUBJECTS,
        seed: 5,
        ..Default::default()
    };
    cbflow_synth::generate(&spec, &bids).expect("synthetic study");
    cbflow_pipeline::participant(&cbflow_pipeline::ParticipantOptions::new(
        bids.clone(),
        out.clone(),
        Some(cbflow_pipeline::TemplateChoice::Phantom),
    ))
    .expect("participant level");
    finish(tmp)
}

/// The fast fixture: participant-level derivatives written here, on the phantom template grid
/// (native = template space, identity transforms), with the file names, columns and sidecars
/// of cbflow-pipeline; CBF = 55·GM + 20·WM + a subject offset + noise, plus a ketamine increase
/// in the ACC labels during run 2 (larger under placebo). The group level of cbflow-pipeline
/// then runs for real on them (exhaustive sign flips).
pub fn build() -> Fixture {
    build_with_effect(None)
}

/// [`build`] with the ketamine increase in a sphere (centre in world mm, radius in mm) instead
/// of the ACC labels: a result the ACC-centred figures would miss.
pub fn build_with_effect_in_sphere(centre: [f64; 3], radius: f64) -> Fixture {
    build_with_effect(Some((centre, radius)))
}

fn build_with_effect(sphere: Option<([f64; 3], f64)>) -> Fixture {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};
    let tmp = tempfile::tempdir().unwrap();
    let bids = tmp.path().join("bids");
    let out = tmp.path().join("out");
    let tpl = cbflow_pipeline::Template::phantom();
    let w = |p: &Path, s: &str| {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    };
    let nii = |p: &Path, data: ndarray::ArrayD<f32>| {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let v = cbflow_image::Volume::new(data, tpl.grid.affine).unwrap();
        cbflow_image::write(p, &v, cbflow_image::DataType::Float32).unwrap();
    };
    w(
        &bids.join("dataset_description.json"),
        r#"{"Name": "report fixture", "BIDSVersion": "1.10.0"}"#,
    );
    w(
        &out.join("dataset_description.json"),
        r#"{"Name": "cbflow outputs", "BIDSVersion": "1.10.0", "DatasetType": "derivative"}"#,
    );
    let mut participants = String::from("participant_id\tage\tsex\tsequence\n");
    let mut infusion = String::from("participant_id\tsession_id\tpsi_anhedonia\tcadss\n");
    let mut mood = String::from(
        "participant_id\tsession_id\tmadrs_baseline\tmadrs_day1\tqids_baseline\tqids_day1\n",
    );
    let gm = tpl.gm.frame(0).to_owned();
    let wm = tpl.wm.frame(0).to_owned();
    let brain = tpl.brain_mask.frame(0).mapv(|v| v > 0.5);
    let labels = tpl.labels.frame(0).mapv(|v| v.round() as i32);
    let acc = match sphere {
        None => labels.mapv(|l| (151..=156).contains(&l)),
        Some((c, r)) => ndarray::Array3::from_shape_fn(labels.raw_dim(), |(i, j, k)| {
            let w = tpl.grid.voxel_to_world([i as f64, j as f64, k as f64]);
            (0..3).map(|a| (w[a] - c[a]).powi(2)).sum::<f64>() <= r * r
        }),
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let noise = Normal::new(0.0f32, 4.0).unwrap();
    let identity = cbflow_register::AffineTransform::identity().to_itk_string();
    let d = tpl.grid.dims;
    for s in 1..=SUBJECTS {
        let sub = format!("sub-{s:02}");
        let seq = if s % 2 == 0 { "PN" } else { "NP" };
        participants.push_str(&format!(
            "{sub}\t{}\t{}\t{seq}\n",
            20 + 7 * s,
            if s % 2 == 0 { "F" } else { "M" }
        ));
        // NP: naltrexone in period 1 (ses-1)
        let pre = |ses: usize| {
            if (ses == 1) == (seq == "NP") {
                "naltrexone"
            } else {
                "placebo"
            }
        };
        w(
            &bids.join(format!("{sub}/{sub}_sessions.tsv")),
            &format!(
                "session_id\tpretreatment\tperiod\nses-1\t{}\t1\nses-2\t{}\t2\n",
                pre(1),
                pre(2)
            ),
        );
        let offset = 3.0 * s as f32;
        for ses in 1..=2 {
            let ss = format!("{sub}_ses-{ses}");
            nii(
                &bids.join(format!("{sub}/ses-{ses}/anat/{ss}_T1w.nii.gz")),
                tpl.t1w.data.clone(),
            );
            let anat = out.join(format!("{sub}/ses-{ses}/anat"));
            w(
                &anat.join(format!(
                    "{ss}_from-T1w_to-phantom_mode-image_desc-affine_xfm.txt"
                )),
                &identity,
            );
            nii(
                &anat.join(format!(
                    "{ss}_from-T1w_to-phantom_mode-image_desc-warp_xfm.nii.gz"
                )),
                ndarray::Array4::<f32>::zeros((d[0], d[1], d[2], 3)).into_dyn(),
            );
            // the T1w normalised, as the participant level records it
            w(
                &anat.join(format!(
                    "{ss}_from-T1w_to-phantom_mode-image_desc-warp_xfm.json"
                )),
                &format!(r#"{{"Sources": ["bids:raw:{sub}/ses-{ses}/anat/{ss}_T1w.nii.gz"]}}"#),
            );
            nii(
                &anat.join(format!("{ss}_desc-brain_mask.nii.gz")),
                tpl.brain_mask.data.clone(),
            );
            let effect = if pre(ses) == "placebo" { 9.0 } else { 5.0 } + s as f32;
            infusion.push_str(&format!(
                "{sub}\tses-{ses}\t{:.1}\t{:.1}\n",
                1.0 + 0.4 * effect,
                20.0 - effect
            ));
            mood.push_str(&format!(
                "{sub}\tses-{ses}\t30\t{}\t15\t{}\n",
                30 - 2 * s,
                15 - s
            ));
            for run in 1..=2 {
                let perf = out.join(format!("{sub}/ses-{ses}/perf"));
                let pfx = |rest: &str| perf.join(format!("{ss}_run-{run}{rest}"));
                let mut cbf = ndarray::Array3::<f32>::zeros((d[0], d[1], d[2]));
                ndarray::Zip::from(&mut cbf)
                    .and(&gm)
                    .and(&wm)
                    .and(&brain)
                    .and(&acc)
                    .for_each(|c, g, wv, b, a| {
                        if *b {
                            *c = 55.0 * g
                                + 20.0 * wv
                                + offset
                                + noise.sample(&mut rng)
                                + if run == 2 && *a { effect } else { 0.0 };
                        }
                    });
                nii(&pfx("_cbf.nii.gz"), cbf.clone().into_dyn());
                nii(
                    &pfx("_space-phantom_res-3_cbf.nii.gz"),
                    cbf.clone().into_dyn(),
                );
                nii(&pfx("_desc-brain_mask.nii.gz"), tpl.brain_mask.data.clone());
                nii(
                    &pfx("_desc-calibration_m0scan.nii.gz"),
                    tpl.t1w.data.mapv(|v| 1000.0 - 0.5 * v),
                );
                nii(
                    &pfx("_desc-mean_deltam.nii.gz"),
                    cbf.mapv(|v| v / 10.0).into_dyn(),
                );
                let series =
                    ndarray::Array4::from_shape_fn((d[0], d[1], d[2], 4), |(i, j, k, t)| {
                        cbf[[i, j, k]] + t as f32
                    });
                nii(&pfx("_desc-timeseries_cbf.nii.gz"), series.into_dyn());
                w(&pfx("_from-asl_to-T1w_mode-image_xfm.txt"), &identity);
                w(
                    &pfx("_cbf.json"),
                    &format!(
                        r#"{{"Units": "mL/100g/min", "Sources": ["bids:raw:{sub}/ses-{ses}/perf/{ss}_run-{run}_asl.nii.gz"], "Parameters": {{"Model": "single-PLD (P)CASL consensus model (Alsop et al. 2015)", "QuantParams": {{"labeling": {{"Pcasl": {{"labeling_duration_s": 1.8}}}}, "t1_blood_s": 1.65, "lambda_ml_per_g": 0.9, "efficiency": {{"base": 0.85}}}}, "PostLabelingDelays": [1.8]}}}}"#
                    ),
                );
                let mut conf = String::from(
                    "trans_x\ttrans_y\ttrans_z\trot_x\trot_y\trot_z\tframewise_displacement\tvolume_type\n",
                );
                for v in 0..8 {
                    let t = 0.05 * v as f64;
                    conf.push_str(&format!(
                        "{t}\t{}\t0\t0.001\t0\t0\t{}\t{}\n",
                        -t,
                        if v == 0 { 0.0 } else { 0.12 },
                        if v % 2 == 0 { "control" } else { "label" }
                    ));
                }
                w(&pfx("_desc-confounds_timeseries.tsv"), &conf);
                let fd_mean = if s == 1 && run == 1 { 0.7 } else { 0.1 };
                // as the participant level writes it: "none" when nothing is flagged
                let flags = if fd_mean > 0.5 { "fd_mean_mm" } else { "none" };
                w(
                    &pfx("_desc-qc_cbf.tsv"),
                    &format!(
                        "mean_cbf_gm\tmean_cbf_wm\tgm_wm_ratio\tnegative_gm_fraction\tqei\tfd_mean_mm\tfd_max_mm\tpairs_total\tpairs_kept\tflags\n55.0\t22.0\t2.5\t0.0\t0.8\t{fd_mean}\t0.9\t4\t4\t{flags}\n"
                    ),
                );
                w(
                    &pfx("_desc-qc_cbf.json"),
                    r#"{"params": {"gm_cbf_range": [20.0, 120.0], "gm_wm_ratio_range": [1.5, 4.0], "max_negative_gm_fraction": 0.1, "min_qei": 0.5, "max_mean_fd_mm": 0.5}}"#,
                );
                // ROI table: means in the atlas labels, grey matter and brain
                let mean_in = |f: &dyn Fn(usize, usize, usize) -> bool| {
                    let (mut sum, mut n) = (0.0f64, 0usize);
                    for ((i, j, k), v) in cbf.indexed_iter() {
                        if f(i, j, k) {
                            sum += *v as f64;
                            n += 1;
                        }
                    }
                    (n, sum / n.max(1) as f64)
                };
                let mut roi = String::from(
                    "region\tn_voxels\tmean_cbf\tmedian_cbf\tmean_cbf_score\tmedian_cbf_score\n",
                );
                for (name, set) in [
                    ("ACC_sub", [151, 152]),
                    ("ACC_pre", [153, 154]),
                    ("ACC_sup", [155, 156]),
                ] {
                    let (n, m) = mean_in(&|i, j, k| set.contains(&labels[[i, j, k]]));
                    roi.push_str(&format!("{name}\t{n}\t{m:.4}\t{m:.4}\t{m:.4}\t{m:.4}\n"));
                }
                let (n, m) = mean_in(&|i, j, k| brain[[i, j, k]] && gm[[i, j, k]] > 0.5);
                roi.push_str(&format!(
                    "grey_matter\t{n}\t{m:.4}\t{m:.4}\t{m:.4}\t{m:.4}\n"
                ));
                let (n, m) = mean_in(&|i, j, k| brain[[i, j, k]]);
                roi.push_str(&format!("global\t{n}\t{m:.4}\t{m:.4}\t{m:.4}\t{m:.4}\n"));
                w(&pfx("_space-phantom_res-3_desc-roi_cbf.tsv"), &roi);
            }
        }
    }
    w(&bids.join("participants.tsv"), &participants);
    w(&bids.join("phenotype/infusion.tsv"), &infusion);
    w(&bids.join("phenotype/mood.tsv"), &mood);
    finish(tmp)
}

/// ROI time-series tables (`*_desc-roi_timeseries.tsv`, as the participant level writes them)
/// for sub-01's runs, which this fixture does not run: values from the run's ROI table with a small drift per pair.
fn write_roi_timeseries(out: &Path) {
    for ses in ["1", "2"] {
        for run in ["1", "2"] {
            let perf = out.join(format!("sub-01/ses-{ses}/perf"));
            let roi = cbflow_bids::Table::read_tsv(&perf.join(format!(
                "sub-01_ses-{ses}_run-{run}_space-phantom_res-3_desc-roi_cbf.tsv"
            )))
            .unwrap();
            let cols = ["ACC_sub", "ACC_pre", "ACC_sup", "grey_matter", "global"];
            let base: Vec<f64> = cols
                .iter()
                .map(|c| {
                    roi.rows.iter().find(|r| r[0] == *c).unwrap()[2]
                        .parse()
                        .unwrap()
                })
                .collect();
            let mut s =
                String::from("pair\ttime_s\tACC_sub\tACC_pre\tACC_sup\tgrey_matter\tglobal\n");
            for p in 0..8 {
                s.push_str(&format!("{p}\t{:.1}", 8.0 * p as f64));
                for b in &base {
                    s.push_str(&format!("\t{:.3}", b + 0.3 * p as f64 - 1.0));
                }
                s.push('\n');
            }
            std::fs::write(
                perf.join(format!(
                    "sub-01_ses-{ses}_run-{run}_space-phantom_res-3_desc-roi_timeseries.tsv"
                )),
                s,
            )
            .unwrap();
        }
    }
}

/// Receptor tables for one contrast, as the receptor step writes them (this fixture has no PET
/// maps to run it on).
fn write_receptor_tables(out: &Path) {
    let mut t = String::from(
        "map\ttarget\ttracer\tmethod\tlevel\tparcellation\tn\tr\tp_variogram\tq_variogram\tp_signflip\tq_signflip\n",
    );
    let mut nulls = String::from("map\tnull\tdraw\tr\n");
    for (k, (m, r)) in RECEPTOR_MAPS.iter().enumerate() {
        let (p, q) = if k == 0 { (0.004, 0.012) } else { (0.3, 0.45) };
        t.push_str(&format!("{m}\ttarget{k}\ttracer{k}\tspearman\tparcel\tschaefer200tian\t232\t{r}\t{p}\t{q}\t{p}\tn/a\n"));
        for null in ["variogram", "signflip"] {
            for d in 0..200 {
                // deterministic spread around zero
                let v = ((d * 37 + k * 11) % 101) as f64 / 101.0 * 0.5 - 0.25;
                nulls.push_str(&format!("{m}\t{null}\t{d}\t{v:.4}\n"));
            }
        }
    }
    std::fs::write(
        out.join("contrast-ketaminePooled_desc-receptors_table.tsv"),
        t,
    )
    .unwrap();
    std::fs::write(
        out.join("contrast-ketaminePooled_desc-receptorNulls_table.tsv"),
        nulls,
    )
    .unwrap();
}
