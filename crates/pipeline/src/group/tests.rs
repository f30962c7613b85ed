//! Tests of the crossover group level on template-space maps written by hand.

use std::path::{Path, PathBuf};

use cbflow_stats::{CrossoverContrast, Tail, TfceParams};
use serde_json::json;

use super::*;
use crate::receptors::mor_tests::write_study;
use crate::template::Template;

/// Six subjects' template-space maps (the placebo ΔCBF follows the grey matter) and ROI
/// tables whose global CBF varies by subject, session and run.
pub(super) fn crossover_fixture(tmp: &Path) -> (PathBuf, PathBuf, Template) {
    let tpl = Template::phantom();
    let (bids, out) = (tmp.join("bids"), tmp.join("out"));
    let effect = tpl.gm.frame(0).to_owned();
    write_study(&bids, &out, &tpl, &effect, 6, 3.0, 5);
    // the participant level's ROI tables, which the group tables read
    for s in 1..=6 {
        for ses in ["1", "2"] {
            for run in ["1", "2"] {
                let p = crate::outputs::template_output_run(
                    &out,
                    &format!("{s:02}"),
                    ses,
                    run,
                    &tpl,
                    Some("roi"),
                    ".tsv",
                )
                .unwrap();
                let v = 40.0 + s as f64 + if run == "2" { 3.0 } else { 0.0 };
                let ses_n: usize = ses.parse().unwrap();
                let wobble = ((s * 7 + ses_n * 3 + (run == "2") as usize * 11) % 5) as f64 * 0.7;
                let rows: String = ["ACC_sub", "ACC_pre", "ACC_sup", "grey_matter", "global"]
                    .iter()
                    .enumerate()
                    .map(|(k, r)| {
                        // ACC_sub stays the same in both sessions before ketamine; the
                        // others vary by subject, session and run
                        let g = match *r {
                            "global" => wobble,
                            "ACC_sub" => 0.0,
                            _ => {
                                ((s * (k + 3) + ses_n * 5 + (run == "2") as usize * (k + 7)) % 7)
                                    as f64
                                    * 0.3
                            }
                        };
                        format!("{r}\t{}\n", v + k as f64 + g)
                    })
                    .collect();
                std::fs::write(&p, format!("region\tmean_cbf\n{rows}")).unwrap();
            }
        }
    }
    // write_study's own group map is not a group-level output
    for f in std::fs::read_dir(&out).unwrap().filter_map(|e| e.ok()) {
        if f.file_name().to_string_lossy().contains("_statmap") {
            std::fs::remove_file(f.path()).unwrap();
        }
    }
    (bids, out, tpl)
}

/// Options for the fixture: the first default contrast, 20 permutations, no smoothing, the
/// default regions, no covariates; tests change what they test.
pub(super) fn fixture_options(bids: &Path, out: &Path, tpl: &Template) -> GroupOptions {
    GroupOptions {
        n_permutations: 20,
        seed: 3,
        smoothing_fwhm_mm: 0.0,
        contrasts: vec![GroupContrast::defaults(&StudyDesign::default()).remove(0)],
        ..GroupOptions::new(bids.to_path_buf(), out.to_path_buf(), tpl.clone())
    }
}

/// The sidecar of the ketamineUnderPlacebo map of statistic `stat` in `out`.
fn placebo_sidecar(out: &Path, stat: &str) -> serde_json::Value {
    serde_json::Value::Object(
        cbflow_bids::read_json_object(&out.join(format!(
            "space-phantom_res-3_contrast-ketamineUnderPlacebo_stat-{stat}_statmap.json"
        )))
        .unwrap(),
    )
}

/// Frame 0 of the group map of `contrast` and statistic `stat` in `out`.
fn statmap(out: &Path, contrast: &str, stat: &str) -> ndarray::Array3<f32> {
    cbflow_image::read(&out.join(format!(
        "space-phantom_res-3_contrast-{contrast}_stat-{stat}_statmap.nii.gz"
    )))
    .unwrap()
    .frame(0)
    .to_owned()
}

/// The template-space CBF map of subject `sub`, session `ses`, run `run` in `out`.
fn template_cbf(
    out: &Path,
    tpl: &Template,
    sub: usize,
    ses: usize,
    run: &str,
) -> ndarray::Array3<f64> {
    let (sub, ses) = (format!("{sub:02}"), ses.to_string());
    let p = crate::outputs::template_output_run(out, &sub, &ses, run, tpl, None, ".nii.gz");
    cbflow_image::read(&p.unwrap())
        .unwrap()
        .frame(0)
        .mapv(f64::from)
}

/// The entries of `dir` (to show that a refused run wrote nothing).
fn listing(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// OLS t of the first column's coefficient, by the normal equations (naive reference).
fn naive_t(x: &[Vec<f64>], y: &[f64]) -> f64 {
    let (n, p) = (y.len(), x.len());
    let xm = nalgebra::DMatrix::from_fn(n, p, |i, j| x[j][i]);
    let yv = nalgebra::DVector::from_column_slice(y);
    let inv = (xm.transpose() * &xm).try_inverse().unwrap();
    let b = &inv * xm.transpose() * &yv;
    let r = &yv - &xm * &b;
    let s2 = r.dot(&r) / (n - p) as f64;
    b[0] / (s2 * inv[(0, 0)]).sqrt()
}

fn centred(v: Vec<f64>) -> Vec<f64> {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    v.into_iter().map(|x| x - m).collect()
}

/// Declared covariates: the change of global CBF under the contrast's weights (uncentred)
/// and a participants.tsv column (centred) enter the voxelwise GLM and the ROI tests (t
/// equal to a naive OLS); a two-level column is coded 0/1; missing or unusable columns are
/// refused by name before anything is written.
#[test]
fn covariates_enter_the_glm_and_the_roi_tests() {
    let tmp = tempfile::tempdir().unwrap();
    let (bids, out, tpl) = crossover_fixture(tmp.path());
    let ages = [23.0, 41.0, 35.0, 58.0, 29.0, 47.0];
    let sexes = ["F", "M", "M", "F", "F", "M"];
    let part: String = (0..6)
        .map(|s| {
            format!(
                "sub-{:02}\t{}\t{}\t{}\n",
                s + 1,
                ages[s],
                sexes[s],
                ["a", "b", "c"][s % 3]
            )
        })
        .collect();
    std::fs::write(
        bids.join("participants.tsv"),
        format!("participant_id\tage\tsex\tsite\n{part}"),
    )
    .unwrap();
    let opts = GroupOptions {
        n_permutations: 64,
        covariates: vec![GroupCovariate::GlobalCbf, GroupCovariate::parse("age")],
        ..fixture_options(&bids, &out, &tpl)
    };
    // refused by name, before anything is written
    let before = listing(&out);
    for (covs, expect) in [
        (vec!["weight"], "weight"),
        (vec!["site"], "two levels"),
        (vec!["age", "age"], "twice"),
    ] {
        let o = GroupOptions {
            covariates: covs.iter().map(|c| GroupCovariate::parse(c)).collect(),
            ..opts.clone()
        };
        let e = group(&o).unwrap_err().to_string();
        assert!(e.contains(expect), "{e}");
    }
    assert_eq!(before, listing(&out));

    group(&opts).unwrap();
    // the naive design: intercept, centred sequence, Δglobal and age
    let roi = |sub: usize, ses: usize, run: &str, region: &str| -> f64 {
        let p = crate::outputs::template_output_run(
            &out,
            &format!("{sub:02}"),
            &ses.to_string(),
            run,
            &tpl,
            Some("roi"),
            ".tsv",
        )
        .unwrap();
        let t = std::fs::read_to_string(p).unwrap();
        t.lines()
            .find_map(|l| l.strip_prefix(&format!("{region}\t")))
            .unwrap()
            .parse()
            .unwrap()
    };
    let placebo_ses = |sub: usize| if sub % 2 == 1 { 1 } else { 2 };
    let dglobal: Vec<f64> = (1..=6)
        .map(|s| roi(s, placebo_ses(s), "2", "global") - roi(s, placebo_ses(s), "1", "global"))
        .collect();
    let seq = centred((1..=6).map(|s| (s % 2 == 0) as u8 as f64).collect());
    // global CBF enters uncentred: the contrast at no change of global CBF
    let x = vec![vec![1.0; 6], seq, dglobal.clone(), centred(ages.to_vec())];
    let read = |ses: usize, sub: usize, run: &str| template_cbf(&out, &tpl, sub, ses, run);
    let diffs: Vec<_> = (1..=6)
        .map(|s| read(placebo_ses(s), s, "2") - read(placebo_ses(s), s, "1"))
        .collect();
    // the map with its header (the degrees of freedom are checked below)
    let t = cbflow_image::read(
        &out.join("space-phantom_res-3_contrast-ketamineUnderPlacebo_stat-t_statmap.nii.gz"),
    )
    .unwrap();
    let mut n = 0;
    for (idx, &tv) in t.frame(0).indexed_iter() {
        if tv != 0.0 && n < 200 && idx.0 % 3 == 0 {
            let y: Vec<f64> = diffs.iter().map(|d| d[idx]).collect();
            let naive = naive_t(&x, &y);
            assert!(
                (f64::from(tv) - naive).abs() < 1e-3 * naive.abs().max(1.0),
                "{tv} vs {naive}"
            );
            n += 1;
        }
    }
    assert_eq!(n, 200);
    let side = placebo_sidecar(&out, "t");
    assert_eq!(side["Covariates"], json!(["global-cbf", "age"]));
    // the header says t with 6 subjects − 4 columns of the test's own design (intercept,
    // sequence, Δglobal, age) = 2 degrees of freedom
    let df = (x[0].len() - x.len()) as f64;
    assert_eq!(df, 2.0);
    assert_eq!(t.info.intent_code, 3);
    assert_eq!(t.info.intent_p[0], df);
    assert_eq!(side["DegreesOfFreedom"], json!(df));
    // the ROI test: intercept, Δglobal and age (no sequence)
    let y: Vec<f64> = (1..=6)
        .map(|s| roi(s, placebo_ses(s), "2", "ACC_pre") - roi(s, placebo_ses(s), "1", "ACC_pre"))
        .collect();
    let naive = naive_t(&[vec![1.0; 6], dglobal, centred(ages.to_vec())], &y);
    let table = std::fs::read_to_string(out.join("desc-roiTtests_table.tsv")).unwrap();
    let row: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("ACC_pre\tketamineUnderPlacebo\t"))
        .unwrap()
        .split('\t')
        .collect();
    let t_roi: f64 = row[6].parse().unwrap();
    assert!(
        (t_roi - naive).abs() < 1e-4 * naive.abs().max(1.0),
        "{t_roi} vs {naive}"
    );
    assert_eq!(row[7], "3.00000");
    // a two-level column is coded 0/1, named after the level coded 1
    let o = GroupOptions {
        covariates: vec![GroupCovariate::parse("sex")],
        ..opts.clone()
    };
    group(&o).unwrap();
    let side = placebo_sidecar(&out, "t");
    assert_eq!(side["Covariates"], json!(["sex=M"]));
}

/// Declared TFCE settings reach the maps: the TFCE map equals a direct TFCE of the written
/// t map with those settings, and the sidecar records them.
#[test]
fn tfce_settings_reach_the_maps() {
    let tmp = tempfile::tempdir().unwrap();
    let (bids, out, tpl) = crossover_fixture(tmp.path());
    let tfce = TfceParams {
        e: 0.6,
        h: 1.5,
        step: cbflow_stats::TfceStep::Fixed(0.25),
        connectivity: cbflow_stats::Connectivity::Faces6,
    };
    let opts = GroupOptions {
        smoothing_fwhm_mm: 4.0,
        tfce,
        ..fixture_options(&bids, &out, &tpl)
    };
    group(&opts).unwrap();
    let map = |stat: &str| statmap(&out, "ketamineUnderPlacebo", stat);
    let (t, enhanced) = (map("t"), map("tfce"));
    let dims = tpl.grid.dims;
    let ijk: Vec<[usize; 3]> = t
        .indexed_iter()
        .filter(|(_, v)| **v != 0.0)
        .map(|((i, j, k), _)| [i, j, k])
        .collect();
    let geom = cbflow_stats::MaskGeometry::from_ijk(dims, ijk).unwrap();
    let vals: Vec<f64> = geom
        .ijk()
        .iter()
        .map(|&p| f64::from(t[p]).max(0.0))
        .collect();
    let direct = cbflow_stats::tfce(
        &vals,
        &geom.neighbours(cbflow_stats::Connectivity::Faces6),
        0.6,
        1.5,
        0.25,
    )
    .unwrap();
    let mut positive = 0;
    for (p, d) in geom.ijk().iter().zip(&direct) {
        let got = f64::from(enhanced[*p]);
        assert!(
            (got - d).abs() <= 1e-3 * d.abs().max(1.0),
            "{p:?}: {got} vs {d}"
        );
        positive += (*d > 0.0) as usize;
    }
    assert!(positive > 100, "{positive} enhanced voxels");
    let side = placebo_sidecar(&out, "tfce");
    assert_eq!(side["TFCE"], serde_json::to_value(tfce).unwrap(), "{side}");
    assert_eq!(
        side["Description"],
        "TFCE (E = 0.6, H = 1.5, 6 connectivity, dh = 0.25; Smith & Nichols 2009)"
    );
}

/// Bootstrap CIs of the brain–behaviour correlations: each row's interval is the percentile
/// bootstrap of its own data (not the Fisher interval), the sidecar says so, and a rerun
/// gives the same bytes.
#[test]
fn bootstrap_correlation_cis_are_declared_and_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let (bids, out, tpl) = crossover_fixture(tmp.path());
    std::fs::create_dir_all(bids.join("phenotype")).unwrap();
    let rows: String = (1..=6)
        .flat_map(|s| {
            [1, 2].map(|ses| format!("sub-{s:02}\tses-{ses}\t{}\n", (s * 7 + ses * 3) % 11))
        })
        .collect();
    std::fs::write(
        bids.join("phenotype/infusion.tsv"),
        format!("participant_id\tsession_id\tcadss\n{rows}"),
    )
    .unwrap();
    let opts = GroupOptions {
        correlation_ci: CorrelationCi::Bootstrap { samples: 2000 },
        rois: vec!["ACC_pre".into()],
        ..fixture_options(&bids, &out, &tpl)
    };
    group(&opts).unwrap();
    let path = out.join("desc-brainBehaviour_table.tsv");
    let boot = std::fs::read_to_string(&path).unwrap();
    let side = std::fs::read_to_string(out.join("desc-brainBehaviour_table.json")).unwrap();
    assert!(
        side.contains("percentile bootstrap over subjects, 2000 resamples"),
        "{side}"
    );
    group(&opts).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), boot);
    group(&GroupOptions {
        correlation_ci: CorrelationCi::FisherZ,
        ..opts.clone()
    })
    .unwrap();
    let fisher = std::fs::read_to_string(&path).unwrap();
    // the ACC_pre / cadss rows: same r and p, other intervals that hold r
    let rows = |t: &str| -> Vec<Vec<f64>> {
        t.lines()
            .filter(|l| l.contains("\tACC_pre\tcadss\t") && !l.contains("difference"))
            .map(|l| l.split('\t').skip(6).map(|v| v.parse().unwrap()).collect())
            .collect()
    };
    let (b, fz) = (rows(&boot), rows(&fisher));
    assert_eq!(b.len(), 4, "{boot}");
    for (b, fz) in b.iter().zip(&fz) {
        // columns: r, ci95_low, ci95_high, p
        assert_eq!((b[0], b[3]), (fz[0], fz[3]));
        assert!(b[1] <= b[0] && b[0] <= b[2], "{b:?}");
        assert!(
            (b[1] - fz[1]).abs() > 1e-4 || (b[2] - fz[2]).abs() > 1e-4,
            "{b:?} {fz:?}"
        );
    }
}

/// Declared contrasts: each is tested and written with the weights in its sidecar, read
/// back in declared order; a contrast beyond the study's four (naltrexone's effect on
/// baseline CBF) has the effect map of the naive mean difference; bad ones are refused.
#[test]
fn declared_contrasts_are_tested_written_and_read_back() {
    let tmp = tempfile::tempdir().unwrap();
    let (bids, out, tpl) = crossover_fixture(tmp.path());
    let nal_baseline = GroupContrast {
        name: "naltrexoneBaseline".into(),
        description: "naltrexone − placebo, before ketamine".into(),
        contrast: CrossoverContrast::Weights([-1.0, 0.0, 1.0, 0.0]),
        tail: Tail::TwoSided,
    };
    let mut opts = GroupOptions {
        n_permutations: 100,
        contrasts: vec![
            nal_baseline.clone(),
            GroupContrast::defaults(&StudyDesign::default()).remove(0),
        ],
        ..fixture_options(&bids, &out, &tpl)
    };
    // refused before anything is written: weights that do not sum to 0, a name twice
    let before = listing(&out);
    for bad in [
        vec![GroupContrast {
            contrast: CrossoverContrast::Weights([0.0, 1.0, 0.0, 0.0]),
            ..nal_baseline.clone()
        }],
        vec![nal_baseline.clone(), nal_baseline.clone()],
    ] {
        let o = GroupOptions {
            contrasts: bad,
            ..opts.clone()
        };
        let e = group(&o).unwrap_err().to_string();
        assert!(
            e.contains("contrasts") && e.contains("naltrexoneBaseline"),
            "{e}"
        );
    }
    assert_eq!(before, listing(&out));

    let s = group(&opts).unwrap();
    let names: Vec<&str> = s.contrasts.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, ["naltrexoneBaseline", "ketamineUnderPlacebo"]);
    // read back from the sidecars, in declared order
    assert_eq!(written_contrasts(&out).unwrap(), opts.contrasts);
    // the effect map is the mean over subjects of naltrexone-before − placebo-before (no
    // smoothing; 3 subjects per sequence, so the centred sequence regressor leaves it)
    let read = |ses: usize, sub: usize| template_cbf(&out, &tpl, sub, ses, "1");
    let mut naive = ndarray::Array3::<f64>::zeros(tpl.grid.dims);
    for sub in 1..=6 {
        // odd subjects (index 0, 2, 4): placebo in ses-1
        let (pl, nl) = if sub % 2 == 1 { (1, 2) } else { (2, 1) };
        naive = naive + (read(nl, sub) - read(pl, sub)) / 6.0;
    }
    let eff = statmap(&out, "naltrexoneBaseline", "effect");
    let mut n = 0;
    for (e, v) in eff.iter().zip(naive.iter()) {
        if *e != 0.0 {
            assert!((f64::from(*e) - v).abs() < 1e-3, "{e} vs {v}");
            n += 1;
        }
    }
    assert!(n > 1000, "{n} voxels compared");
    // its ROI test: ACC_sub is the same in both sessions before ketamine
    let t = std::fs::read_to_string(out.join("desc-roiTtests_table.tsv")).unwrap();
    let row = t
        .lines()
        .find(|l| l.starts_with("ACC_sub\tnaltrexoneBaseline\t"))
        .unwrap_or_else(|| panic!("no ROI row:\n{t}"));
    assert_eq!(row.split('\t').nth(3), Some("0.00000"), "{row}");
    // declared regions: one of them, another baseline region
    let o = GroupOptions {
        rois: vec!["ACC_pre".into()],
        baseline_roi: "ACC_sup".into(),
        ..opts.clone()
    };
    group(&o).unwrap();
    let t = std::fs::read_to_string(out.join("desc-roiTtests_table.tsv")).unwrap();
    let regions: std::collections::BTreeSet<&str> = t
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .collect();
    assert_eq!(
        regions.into_iter().collect::<Vec<_>>(),
        ["ACC_pre", "global", "grey_matter"]
    );
    // a later run with fewer contrasts: the earlier maps stay on disk, but the contrasts of
    // the last run are what later steps and the report see
    let o = GroupOptions {
        contrasts: vec![nal_baseline.clone()],
        ..opts.clone()
    };
    group(&o).unwrap();
    assert!(
        out.join("space-phantom_res-3_contrast-ketamineUnderPlacebo_stat-t_statmap.nii.gz")
            .is_file()
    );
    assert_eq!(
        written_contrasts(&out).unwrap(),
        std::slice::from_ref(&nal_baseline)
    );
    // a region the participant level did not extract: named with the table
    let o = GroupOptions {
        rois: vec!["ACC_pre".into(), "Insula_L".into()],
        ..opts.clone()
    };
    let e = group(&o).unwrap_err().to_string();
    assert!(
        e.contains("Insula_L") && e.contains("desc-roi_cbf.tsv"),
        "{e}"
    );
    opts.contrasts.clear();
    assert!(
        group(&opts)
            .unwrap_err()
            .to_string()
            .contains("no contrast")
    );
}

/// The design's own words: the same six subjects with `saline` / `naloxone` in their
/// sessions.tsv and remifentanil between the scans get the default contrasts, the cells, the
/// weight columns, the table rows and the mixed model's terms in those words, and the same
/// statistics as under the study's words; the study's words are then refused, naming the
/// column and the values found.
#[test]
fn the_design_names_its_levels_cells_and_contrasts() {
    let tmp = tempfile::tempdir().unwrap();
    let (bids, out, tpl) = crossover_fixture(tmp.path());
    let study = StudyDesign::default();
    let opts = GroupOptions {
        contrasts: GroupContrast::defaults(&study),
        ..fixture_options(&bids, &out, &tpl)
    };
    group(&opts).unwrap();
    let t_map = |name: &str| statmap(&out, name, "t");
    let study_maps: Vec<_> = opts.contrasts.iter().map(|c| t_map(&c.name)).collect();

    for s in 1..=6 {
        let p = bids.join(format!("sub-{s:02}/sub-{s:02}_sessions.tsv"));
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.contains("placebo") && text.contains("naltrexone"),
            "{text}"
        );
        std::fs::write(
            &p,
            text.replace("placebo", "saline")
                .replace("naltrexone", "naloxone"),
        )
        .unwrap();
    }
    let design = StudyDesign {
        control: "saline".into(),
        active: "naloxone".into(),
        drug: "remifentanil".into(),
        ..StudyDesign::default()
    };
    let renamed = GroupOptions {
        design: design.clone(),
        contrasts: GroupContrast::defaults(&design),
        ..opts.clone()
    };
    let names: Vec<&str> = renamed.contrasts.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "remifentanilUnderSaline",
            "remifentanilUnderNaloxone",
            "remifentanilPooled",
            "interaction"
        ]
    );
    group(&renamed).unwrap();
    // the same numbers under other names
    for (c, study_map) in renamed.contrasts.iter().zip(&study_maps) {
        assert_eq!(&t_map(&c.name), study_map, "{}", c.name);
    }
    let sidecar = serde_json::Value::Object(
        cbflow_bids::read_json_object(
            &out.join("space-phantom_res-3_contrast-remifentanilUnderSaline_stat-t_statmap.json"),
        )
        .unwrap(),
    );
    let keys: Vec<&String> = sidecar["ContrastWeights"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        keys,
        [
            "saline-before",
            "saline-during",
            "naloxone-before",
            "naloxone-during"
        ]
    );
    assert_eq!(
        sidecar["ContrastDescription"],
        "remifentanil (during − before) under saline"
    );
    let table =
        |stem: &str| std::fs::read_to_string(out.join(format!("desc-{stem}_table.tsv"))).unwrap();
    assert!(
        table("contrasts").starts_with(
            "contrast\tdescription\ttail\tsaline_before\tsaline_during\tnaloxone_before\tnaloxone_during\n"
        ),
        "{}",
        table("contrasts")
    );
    assert_eq!(written_contrasts(&out).unwrap(), renamed.contrasts);
    let values = table("roiValues");
    assert!(
        values.contains("\tsaline\t") && values.contains("\tnaloxone\t"),
        "{values}"
    );
    let lmm = table("lmm");
    assert!(
        lmm.contains("\tnaloxone\t") && lmm.contains("\tsequence_naloxoneFirst\t"),
        "{lmm}"
    );
    for stem in ["contrasts", "roiValues", "roiTtests", "lmm"] {
        let t = table(stem);
        assert!(
            !t.contains("placebo") && !t.contains("naltrexone") && !t.contains("ketamine"),
            "desc-{stem}_table.tsv keeps the study's words:\n{t}"
        );
    }
    // the study's words no longer describe these sessions
    let e = group(&opts).unwrap_err().to_string();
    assert!(
        e.contains("pretreatment")
            && e.contains("\"saline\" is neither \"placebo\" nor \"naltrexone\""),
        "{e}"
    );
    // and names that cannot name cells are refused before any work
    let bad = GroupOptions {
        design: StudyDesign {
            active: "nal trexone".into(),
            ..design.clone()
        },
        ..renamed.clone()
    };
    let e = group(&bad).unwrap_err().to_string();
    assert!(e.contains("design: active \"nal trexone\""), "{e}");
}
