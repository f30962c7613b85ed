//! Reports generated from derivatives (a fast fixture written here and run through the real group
//! level, and, ignored by default, a real synthetic run through both levels), checked for
//! self-containment, real data in their figures, and section structure.

mod fixture;
mod html_util;

use std::path::Path;

use cbflow_report::slices::{Cmap, Orient, Scene, canonical, spread_slices, window};
use html_util::{decode_png, figure_ids, figure_png, headings};

/// The reports' inputs for a phantom study (no resource directory).
fn inputs<'a>(
    out: &'a Path,
    bids: &'a Path,
    design: &'a cbflow_pipeline::StudyDesign,
) -> cbflow_report::ReportInputs<'a> {
    cbflow_report::ReportInputs {
        output_dir: out,
        bids_dir: bids,
        design,
        resources: None,
    }
}

fn check_self_contained(html: &str, what: &str) {
    // (a colon is not in base64's alphabet: the inline figures cannot spell these)
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{what}: contains an URL"
    );
    assert!(!html.contains("<script"), "{what}: contains a script");
    assert!(!html.contains("<link"), "{what}: links a resource");
    for (i, _) in html.match_indices("src=\"") {
        assert!(
            html[i + 5..].starts_with("data:image/png;base64,"),
            "{what}: an image that is not inline at byte {i}"
        );
    }
}

/// The native CBF mosaic is the run's CBF: its size matches the slices chosen and each voxel
/// of the first slice inside the brain mask has the colour of its CBF value.
fn check_native_mosaic(out: &Path, html: &str) {
    let perf = out.join("sub-01/ses-1/perf");
    let cbf = cbflow_image::read(&perf.join("sub-01_ses-1_run-1_cbf.nii.gz")).unwrap();
    let mask = cbflow_image::read(&perf.join("sub-01_ses-1_run-1_desc-brain_mask.nii.gz")).unwrap();
    let c = canonical(&cbf);
    let m = canonical(&mask).data.mapv(|v| v > 0.5);
    let slices = spread_slices(&m, Orient::Axial, 8);
    let (sw, sh) = Scene::on(&c).slice_size(Orient::Axial, cbflow_report::PX_PER_MM);
    let (sx, sy) = Scene::on(&c).pixel_scale(Orient::Axial, cbflow_report::PX_PER_MM);
    let png = figure_png(html, "fig-cbf-native-ses-1-run-1").expect("native CBF mosaic");
    let (w, h, px) = decode_png(&png);
    let n = slices.len();
    assert_eq!(
        w,
        n * sw + (n - 1) * 2,
        "mosaic width for {n} slices of {sw} px"
    );
    assert_eq!(h, sh, "mosaic height");
    let (_, hi) = window(&c.data, Some(&m), 0.01, 0.99);
    let k = slices[0];
    let ny = c.data.shape()[1];
    let mut checked = 0;
    for i in 0..c.data.shape()[0] {
        for j in 0..ny {
            if !m[[i, j, k]] {
                continue;
            }
            let want = Cmap::Inferno.at(c.data[[i, j, k]] as f64 / hi);
            let (x, y) = (i * sx + sx / 2, (ny - 1 - j) * sy + sy / 2);
            let o = 3 * (y * w + x);
            assert_eq!(&px[o..o + 3], &want, "voxel ({i}, {j}, {k})");
            checked += 1;
        }
    }
    assert!(
        checked > 50,
        "only {checked} brain voxels in the first slice"
    );
}

/// Fast: participant-level derivatives written by the fixture, the real group level.
#[test]
fn reports_from_fixture_derivatives() {
    check_reports(&fixture::build(), true);
}

/// The group report follows the results: with the effect in the precuneus, not the ACC, the
/// significant cluster gets its own slices through its peak, named in the caption.
#[test]
fn the_group_report_shows_a_significant_cluster_outside_the_acc() {
    let fx = fixture::build_with_effect_in_sphere([0.0, -75.0, 18.0], 15.0);
    let (out, bids) = (fx.out.as_path(), fx.bids.as_path());
    let c = "ketaminePooled";
    let path = out.join(format!(
        "space-phantom_res-3_contrast-{c}_desc-clusters_table.tsv"
    ));
    let table = cbflow_bids::Table::read_tsv(&path).unwrap();
    let num = |col: &str, i: usize| table.f64_column(col).unwrap()[i].unwrap();
    let p = table.f64_column("p_fwe").unwrap();
    let sig: Vec<usize> = (0..p.len()).filter(|&i| p[i].unwrap() < 0.05).collect();
    assert!(!sig.is_empty(), "no significant cluster: {p:?}");
    let labels = table.column("peak_label").unwrap();
    for &i in &sig {
        // the sphere (y −75 ± 15 mm), far behind the ACC (y > 0)
        assert!((-95.0..=-55.0).contains(&num("peak_y_mm", i)), "row {i}");
        assert!(!labels[i].starts_with("ACC"), "{}", labels[i]);
    }
    let html = std::fs::read_to_string(
        cbflow_report::group_report(&inputs(out, bids, &cbflow_pipeline::StudyDesign::default()))
            .unwrap(),
    )
    .unwrap();
    assert!(
        html.contains(&format!("id=\"fig-clusters-{c}\"")),
        "no cluster figure"
    );
    let i = sig[0];
    let at = format!(
        "peak t {:.2} at ({:.0}, {:.0}, {:.0}) mm",
        num("peak_t", i),
        num("peak_x_mm", i),
        num("peak_y_mm", i),
        num("peak_z_mm", i)
    );
    assert!(html.contains(&at), "{at} not in the report");
    check_self_contained(&html, "group.html");
    // for the browser check and its screenshot (.ci/run)
    if let Some(dir) = std::env::var_os("CBFLOW_REPORT_ARTEFACTS") {
        let dir = std::path::Path::new(&dir);
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("group.html"), &html).unwrap();
        let design = cbflow_pipeline::StudyDesign::default();
        let sub = cbflow_report::participant_report(&inputs(out, bids, &design), "01").unwrap();
        std::fs::copy(sub, dir.join("sub-01.html")).unwrap();
    }
}

/// The same checks on a real run (synthetic study → participant level → group level): several
/// minutes on two cores, so run it with `cargo nextest run -p cbflow-report --run-ignored all`.
#[test]
#[ignore = "several minutes: ten T1w normalisations"]
fn reports_from_a_real_pipeline_run() {
    check_reports(&fixture::build_real(), false);
}

fn check_reports(fx: &fixture::Fixture, snapshots: bool) {
    let (out, bids) = (fx.out.as_path(), fx.bids.as_path());

    // participant reports
    let design = cbflow_pipeline::StudyDesign::default();
    // the report reads the design it is given: runs the design does not name get no meaning
    let other = cbflow_pipeline::StudyDesign {
        before: cbflow_pipeline::RunSelector::run("8"),
        during: cbflow_pipeline::RunSelector::run("9"),
        ..Default::default()
    };
    let h_other = std::fs::read_to_string(
        cbflow_report::participant_report(&inputs(out, bids, &other), "01").unwrap(),
    )
    .unwrap();
    assert!(!h_other.contains("before ketamine") && !h_other.contains("during ketamine"));
    let p1 = cbflow_report::participant_report(&inputs(out, bids, &design), "01").unwrap();
    assert_eq!(p1, out.join("sub-01.html"));
    let h1 = std::fs::read_to_string(&p1).unwrap();
    assert!(h1.contains("before ketamine") && h1.contains("during ketamine"));
    check_self_contained(&h1, "sub-01.html");
    assert!(h1.len() < 2_500_000, "sub-01.html is {} bytes", h1.len());
    check_native_mosaic(out, &h1);
    for id in [
        "fig-norm-ses-1",
        "fig-cbf-template-ses-1-run-1",
        "fig-m0-ses-1-run-1",
        "fig-deltam-ses-1-run-1",
        "fig-asl2t1w-ses-1-run-1",
        "fig-motion-ses-1-run-1",
        "fig-timecourse-ses-1",
    ] {
        let png = figure_png(&h1, id).unwrap_or_else(|| panic!("sub-01.html: no figure {id}"));
        let (w, h, px) = decode_png(&png);
        assert!(w > 100 && h > 100, "{id}: {w}×{h}");
        // not a blank picture
        let first = &px[0..3];
        assert!(px.chunks(3).any(|c| c != first), "{id} is uniform");
    }
    // sub-01 has the ROI time-series tables of the contract: one line per ROI, not the fallback
    assert!(
        h1.contains("Per-pair CBF in each region of interest"),
        "ROI time course not used"
    );
    // the QC table lists every run with its values; only the runs the fixture flags (sub-01's
    // run 1 of both sessions, mean FD 0.7 mm) are marked, not those whose table says "none"
    assert_eq!(h1.matches("class=\"ok\">none</td>").count(), 2);
    assert_eq!(
        h1.matches("<tr class=\"flag\">").count() + h1.matches("class=\"ok\">none</td>").count(),
        4
    );
    assert!(
        h1.contains("2 of 4 runs flagged"),
        "the summary counts flags that are none"
    );

    let p2 = cbflow_report::participant_report(&inputs(out, bids, &design), "sub-02").unwrap();
    let h2 = std::fs::read_to_string(&p2).unwrap();
    check_self_contained(&h2, "sub-02.html");
    // sub-02 has no ROI time-series table in the fast fixture: the labelled brain-mask fallback
    // (a real run of the current participant level writes the table)
    assert!(
        h2.contains("Per-pair CBF averaged in the native ASL brain mask (fallback")
            || (!snapshots && h2.contains("Per-pair CBF in each region of interest")),
        "sub-02: no time course"
    );

    // group report
    let g = cbflow_report::group_report(&inputs(out, bids, &design)).unwrap();
    let hg = std::fs::read_to_string(&g).unwrap();
    check_self_contained(&hg, "group.html");
    for c in cbflow_pipeline::GroupContrast::defaults(&cbflow_pipeline::StudyDesign::default()) {
        let c = c.name;
        let png = figure_png(&hg, &format!("fig-tmap-{c}"))
            .unwrap_or_else(|| panic!("no t map figure for {c}"));
        let (w, h, _) = decode_png(&png);
        assert!(w > 300 && h > 300, "t map {c}: {w}×{h}");
        assert!(
            hg.contains(&format!("id=\"clusters-{c}\"")) || hg.contains("No cluster beyond"),
            "{c}: no cluster table"
        );
    }
    check_roi_lines(out, &hg);
    check_brain_behaviour(out, &hg);
    check_receptors(&hg);

    // section structure snapshots (of the fast fixture; the real run has more relations)
    if snapshots {
        html_util::assert_snapshot("participant_sections", &(headings(&h1) + &figure_ids(&h1)));
        html_util::assert_snapshot("group_sections", &(headings(&hg) + &figure_ids(&hg)));
    }

    // a missing optional input is reported in its section, not an error
    std::fs::remove_file(out.join("sub-02/ses-1/perf/sub-02_ses-1_run-1_desc-qc_cbf.tsv")).unwrap();
    let h2 = std::fs::read_to_string(
        cbflow_report::participant_report(&inputs(out, bids, &design), "02").unwrap(),
    )
    .unwrap();
    assert!(
        h2.contains("ses-1 run-1: no QC table"),
        "missing QC table not reported"
    );
    // a participant without outputs is an error naming the directory
    let e = cbflow_report::participant_report(&inputs(out, bids, &design), "99").unwrap_err();
    assert!(e.to_string().contains("sub-99"), "{e}");
}

/// One line per subject in each ROI plot, with the participant-level ROI values.
fn check_roi_lines(out: &Path, html: &str) {
    let lines = cbflow_report::roi_lines(out).unwrap().expect("ROI table");
    let l = &lines[&("ACC_sub".to_string(), "placebo".to_string())];
    assert_eq!(l.len(), fixture::SUBJECTS, "one line per subject");
    for line in l {
        let sub = &line.participant;
        // the placebo session of this subject
        let ses_tsv = cbflow_bids::Table::read_tsv(
            &fixture::bids_dir(out).join(format!("{sub}/{sub}_sessions.tsv")),
        )
        .unwrap();
        let ses = ses_tsv
            .rows
            .iter()
            .find(|r| r[1] == "placebo")
            .map(|r| r[0].clone())
            .unwrap();
        for (run, want) in [("1", line.before), ("2", line.during)] {
            let t = cbflow_bids::Table::read_tsv(&out.join(format!(
                "{sub}/{ses}/perf/{sub}_{ses}_run-{run}_space-phantom_res-3_desc-roi_cbf.tsv"
            )))
            .unwrap();
            let row = t.rows.iter().find(|r| r[0] == "ACC_sub").unwrap();
            let v: f64 = row[2].parse().unwrap();
            assert!((v - want).abs() < 1e-3, "{sub} run {run}: {v} vs {want}");
        }
    }
    for (r, _) in cbflow_report::REGIONS {
        assert!(
            figure_png(html, &format!("fig-roi-{r}")).is_some(),
            "no ROI plot for {r}"
        );
    }
}

/// The scatter points are the ones the group level correlated (its points file): their
/// Pearson r equals the table's to its last digit.
fn check_brain_behaviour(out: &Path, html: &str) {
    let rels = cbflow_report::brain_behaviour_data(out).unwrap();
    assert!(!rels.is_empty(), "no brain–behaviour relation");
    let t = cbflow_bids::Table::read_tsv(&out.join("desc-brainBehaviour_table.tsv")).unwrap();
    let mut compared = 0;
    for rd in &rels {
        assert_eq!(
            rd.arms.len(),
            2,
            "{} {}: both pre-treatments",
            rd.region,
            rd.score
        );
        for (arm, pts) in &rd.arms {
            assert_eq!(pts.len(), fixture::SUBJECTS);
            let row = t
                .rows
                .iter()
                .find(|r| {
                    r[0] == rd.relation
                        && r[1] == rd.region
                        && r[2] == rd.score
                        && &r[3] == arm
                        && r[4] == "pearson"
                })
                .unwrap();
            let want: f64 = row[6].parse().unwrap();
            let r = pearson(pts);
            assert!(
                (r - want).abs() <= 5.1e-6,
                "{} {} {arm}: r {r} vs table {want}",
                rd.region,
                rd.score
            );
            compared += 1;
        }
        let id = format!(
            "fig-bb-{}-{}-{}",
            if rd.relation.starts_with("baseline") {
                "baseline"
            } else {
                "delta"
            },
            rd.region,
            rd.score
        );
        assert!(figure_png(html, &id).is_some(), "no scatter {id}");
    }
    assert!(compared >= 4);
}

fn pearson(p: &[(f64, f64)]) -> f64 {
    let n = p.len() as f64;
    let (mx, my) = (
        p.iter().map(|q| q.0).sum::<f64>() / n,
        p.iter().map(|q| q.1).sum::<f64>() / n,
    );
    let sxy: f64 = p.iter().map(|q| (q.0 - mx) * (q.1 - my)).sum();
    let sxx: f64 = p.iter().map(|q| (q.0 - mx).powi(2)).sum();
    let syy: f64 = p.iter().map(|q| (q.1 - my).powi(2)).sum();
    sxy / (sxx * syy).sqrt()
}

/// The receptor figure of the contract fixture: one bar per map, FDR marks where q < 0.05.
fn check_receptors(html: &str) {
    let png = figure_png(html, "fig-receptors-ketaminePooled").expect("receptor figure");
    let (w, h, px) = decode_png(&png);
    assert_eq!(
        (w, h),
        (900, 90 + 46 * fixture::RECEPTOR_MAPS.len() + 28 * 2)
    );
    // positive bars are vermillion, negative bars blue
    let count = |c: [u8; 3]| px.chunks(3).filter(|p| p == &c).count();
    assert!(count([213, 94, 0]) > 200, "no positive bar");
    assert!(count([0, 114, 178]) > 200, "no negative bar");
    // MOR's q of 0.012 is marked significant in the table
    assert!(
        html.contains("<td class=\"sig\">0.012</td>"),
        "no FDR mark in the receptor table"
    );
    // the section exists only for the contrast with tables
    assert!(figure_png(html, "fig-receptors-interaction").is_none());
    assert!(html.contains("id=\"receptors-ketaminePooled\""));
}

#[test]
fn regression_band_recovers_a_known_line() {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let noise = Normal::new(0.0, 0.5).unwrap();
    let pts: Vec<(f64, f64)> = (0..200)
        .map(|i| {
            let x = i as f64 / 20.0;
            (x, 2.0 + 0.7 * x + noise.sample(&mut rng))
        })
        .collect();
    let band = cbflow_report::regression_band(&pts);
    assert_eq!(band.len(), 40);
    // the fitted line is within 0.1 of the true line and the band contains it everywhere
    for (x, f, lo, hi) in &band {
        let truth = 2.0 + 0.7 * x;
        assert!((f - truth).abs() < 0.15, "x {x}: fit {f} vs {truth}");
        assert!(
            *lo <= truth && truth <= *hi,
            "x {x}: band [{lo}, {hi}] misses {truth}"
        );
    }
    // narrowest at the mean of x
    let widths: Vec<f64> = band.iter().map(|b| b.3 - b.2).collect();
    let imin = widths
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0;
    assert!(
        (band[imin].0 - 4.975).abs() < 0.3,
        "narrowest at {}",
        band[imin].0
    );
    // too few points: no band
    assert!(cbflow_report::regression_band(&pts[..2]).is_empty());
}

/// The before/during design gets its group report: the paired step's contrast with its maps,
/// clusters and ROI tests (the fixture's sessions 1, run 1 before and run 2 during).
#[test]
fn the_paired_design_gets_a_group_report() {
    let fx = fixture::build();
    let (out, bids) = (fx.out.as_path(), fx.bids.as_path());
    let paired = tempfile::tempdir().unwrap();
    let pout = paired.path().join("out");
    // the participant-level derivatives only, as a paired workflow would leave them
    for e in std::fs::read_dir(out).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("sub-") && e.path().is_dir() {
            copy_dir(&e.path(), &pout.join(&name));
        }
    }
    std::fs::copy(
        out.join("dataset_description.json"),
        pout.join("dataset_description.json"),
    )
    .unwrap();
    cbflow_pipeline::paired_group(&cbflow_pipeline::PairedGroupOptions {
        bids_dir: bids.to_path_buf(),
        output_dir: pout.clone(),
        template: cbflow_pipeline::Template::phantom(),
        session: Some("1".into()),
        before: cbflow_pipeline::RunSelector::run("1"),
        during: cbflow_pipeline::RunSelector::run("2"),
        contrast: "ketamine".into(),
        // 2^5 sign patterns: a two-sided p cannot go below 2/32
        tail: cbflow_pipeline::Tail::Positive,
        n_permutations: 100,
        seed: 1,
        smoothing_fwhm_mm: 6.0,
        cluster_threshold: 3.1,
        tfce: Default::default(),
        covariates: vec![],
    })
    .unwrap();
    let html = std::fs::read_to_string(
        cbflow_report::paired_report(
            &inputs(&pout, bids, &cbflow_pipeline::StudyDesign::default()),
            "ketamine",
        )
        .unwrap(),
    )
    .unwrap();
    check_self_contained(&html, "group.html (paired)");
    for needle in [
        "id=\"fig-tmap-ketamine\"",
        "id=\"roi-tests\"",
        "before and a run during the drug",
        "ACC_sub",
    ] {
        assert!(html.contains(needle), "{needle} not in the paired report");
    }
    // the fixture's increase is in the ACC: a significant cluster, drawn through its peak
    assert!(
        html.contains("id=\"fig-clusters-ketamine\""),
        "no cluster figure"
    );
    assert!(
        !html.contains("class=\"missing\""),
        "a section says something is missing"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// The reports speak the design's words: the fixture's sessions renamed saline / naloxone,
/// with remifentanil between the scans, and the group level run with that design: the group
/// and participant reports name the levels, the drug and the contrasts the design names, and
/// the study's words appear nowhere in the pages' text.
#[test]
fn the_reports_speak_the_designs_words() {
    let fx = fixture::build();
    let (out, bids) = (fx.out.as_path(), fx.bids.as_path());
    for s in 1..=fixture::SUBJECTS {
        let p = bids.join(format!("sub-{s:02}/sub-{s:02}_sessions.tsv"));
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(
            &p,
            text.replace("placebo", "saline")
                .replace("naltrexone", "naloxone"),
        )
        .unwrap();
    }
    let design = cbflow_pipeline::StudyDesign {
        control: "saline".into(),
        active: "naloxone".into(),
        drug: "remifentanil".into(),
        ..Default::default()
    };
    fixture::run_group_with(bids, out, 100, &design);
    let group =
        std::fs::read_to_string(cbflow_report::group_report(&inputs(out, bids, &design)).unwrap())
            .unwrap();
    let sub = std::fs::read_to_string(
        cbflow_report::participant_report(&inputs(out, bids, &design), "01").unwrap(),
    )
    .unwrap();
    for want in [
        "remifentanilUnderSaline",
        "remifentanilUnderNaloxone",
        "received naloxone or saline as pre-treatment before remifentanil",
        "Left: saline pre-treatment; right: naloxone",
        "Paired tests of the remifentanil change",
        "correlations under saline and naloxone",
    ] {
        assert!(group.contains(want), "group report: no {want:?}");
    }
    assert!(sub.contains("before remifentanil") && sub.contains("during remifentanil"));
    // the text of the pages, without the embedded images
    let text = |html: &str| {
        html.split("data:image/png;base64,")
            .map(|part| part.split_once('"').map_or(part, |(_, rest)| rest))
            .collect::<String>()
    };
    for (name, html) in [("group", &group), ("sub-01", &sub)] {
        for word in ["placebo", "naltrexone", "ketamine"] {
            let t = text(html);
            if let Some(at) = t.find(word) {
                panic!(
                    "{name} report keeps {word:?}: …{}…",
                    &t[at.saturating_sub(150)..(at + 80).min(t.len())]
                );
            }
        }
    }
}
