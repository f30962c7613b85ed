//! The brain–behaviour points file against the table it is the data of.

use super::tests::{crossover_fixture, fixture_options};
use super::*;

/// Rows of a phenotype table for the fixture's six subjects and two sessions: the ids, then
/// `f(subject, session)`.
fn rows(f: &dyn Fn(usize, usize) -> String) -> String {
    (1..=6)
        .flat_map(|s| [1, 2].map(|ses| format!("sub-{s:02}\tses-{ses}\t{}\n", f(s, ses))))
        .collect()
}

/// Pearson r of paired values (naive reference: centred sums).
fn naive_pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let syy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    sxy / (sxx * syy).sqrt()
}

/// The brain–behaviour points file holds what the correlations were computed from: for every
/// Pearson row of the table, the r of its points (computed here) is the table's r to its last
/// digit, with one point per subject in that subject's session of the row's pre-treatment;
/// every relation has its axes in the sidecar.
#[test]
fn brain_behaviour_points_reproduce_the_correlations() {
    let tmp = tempfile::tempdir().unwrap();
    let (bids, out, tpl) = crossover_fixture(tmp.path());
    std::fs::create_dir_all(bids.join("phenotype")).unwrap();
    std::fs::write(
        bids.join("phenotype/infusion.tsv"),
        format!(
            "participant_id\tsession_id\tcadss\tpsi_total\n{}",
            rows(&|s, ses| format!("{}\t{}", (s * 7 + ses * 3) % 11, (s * s + 5 * ses) % 13))
        ),
    )
    .unwrap();
    std::fs::write(
        bids.join("phenotype/mood.tsv"),
        format!(
            "participant_id\tsession_id\tmadrs_baseline\tmadrs_day1\tqids_baseline\tqids_day1\n{}",
            rows(&|s, ses| format!(
                "{}\t{}\t{}\t{}",
                20 + s,
                20 + (s * 5 + ses) % 9,
                12 + ses,
                (s * 3 + ses * 7) % 17
            ))
        ),
    )
    .unwrap();
    let opts = GroupOptions {
        rois: vec!["ACC_pre".into(), "ACC_sup".into()],
        ..fixture_options(&bids, &out, &tpl)
    };
    group(&opts).unwrap();
    let table = cbflow_bids::Table::read_tsv(&out.join("desc-brainBehaviour_table.tsv")).unwrap();
    let points = cbflow_bids::Table::read_tsv(&out.join("desc-brainBehaviour_points.tsv")).unwrap();
    let side = cbflow_bids::read_json_object(&out.join("desc-brainBehaviour_points.json")).unwrap();
    let axes = side["Axes"].as_array().unwrap();
    let col = |t: &cbflow_bids::Table, c: &str| -> Vec<String> {
        t.column(c).unwrap().iter().map(|s| s.to_string()).collect()
    };
    let (prel, preg, psc, ppre, psub, pses) = (
        col(&points, "relation"),
        col(&points, "region"),
        col(&points, "score"),
        col(&points, "pretreatment"),
        col(&points, "participant_id"),
        col(&points, "session_id"),
    );
    let num = |c: &str| -> Vec<f64> {
        points
            .f64_column(c)
            .unwrap()
            .into_iter()
            .map(Option::unwrap)
            .collect()
    };
    let (px, py) = (num("x"), num("y"));
    let (rel, reg, sc, pre, method) = (
        col(&table, "relation"),
        col(&table, "region"),
        col(&table, "score"),
        col(&table, "pretreatment"),
        col(&table, "method"),
    );
    let (n, r) = (col(&table, "n"), col(&table, "r"));
    let mut compared = 0;
    for i in (0..table.n_rows()).filter(|&i| method[i] == "pearson") {
        let mine: Vec<usize> = (0..points.n_rows())
            .filter(|&k| {
                prel[k] == rel[i] && preg[k] == reg[i] && psc[k] == sc[i] && ppre[k] == pre[i]
            })
            .collect();
        assert_eq!(
            mine.len().to_string(),
            n[i],
            "{} {} {}",
            reg[i],
            sc[i],
            pre[i]
        );
        // one point per subject, in its session of this pre-treatment (placebo: session 1 for
        // odd subjects)
        for &k in &mine {
            let s: usize = psub[k].trim_start_matches("sub-").parse().unwrap();
            let placebo_ses = if s % 2 == 1 { "ses-1" } else { "ses-2" };
            let want_placebo = pre[i] == "placebo";
            assert_eq!(
                pses[k] == placebo_ses,
                want_placebo,
                "{} {}",
                psub[k],
                pses[k]
            );
        }
        let x: Vec<f64> = mine.iter().map(|&k| px[k]).collect();
        let y: Vec<f64> = mine.iter().map(|&k| py[k]).collect();
        let want: f64 = r[i].parse().unwrap();
        let got = naive_pearson(&x, &y);
        assert!(
            (got - want).abs() <= 5.1e-6,
            "{} {} {} {}: r of the points {got}, table {want}",
            rel[i],
            reg[i],
            sc[i],
            pre[i]
        );
        assert!(
            axes.iter().any(|a| a["relation"] == rel[i].as_str()
                && a["region"] == reg[i].as_str()
                && a["score"] == sc[i].as_str()
                && a["x"].as_str().is_some_and(|x| x.contains(reg[i].as_str()))
                && a["y"].is_string()),
            "no axes for {} {} {}",
            rel[i],
            reg[i],
            sc[i]
        );
        compared += 1;
    }
    // (2 regions × 2 infusion scores + the baseline region × 2 mood scales) × 2 pre-treatments
    assert_eq!(compared, 12, "{table:?}");
    // every point belongs to a correlated row
    assert_eq!(points.n_rows(), compared * 6);
}

/// The scores a workflow declares are the ones correlated, read from the tables it names: the
/// study's own tables beside them are ignored, a `prefix*` selects columns in the table's
/// order, and each response point is the follow-up minus the baseline column of its subject's
/// session, recomputed here from the file's text.
#[test]
fn declared_phenotype_scores_are_the_ones_correlated() {
    let tmp = tempfile::tempdir().unwrap();
    let (bids, out, tpl) = crossover_fixture(tmp.path());
    let ph = bids.join("phenotype");
    std::fs::create_dir_all(&ph).unwrap();
    // the study's tables, not declared: not read
    std::fs::write(
        ph.join("infusion.tsv"),
        format!(
            "participant_id\tsession_id\tcadss\n{}",
            rows(&|s, _| s.to_string())
        ),
    )
    .unwrap();
    std::fs::write(
        ph.join("ratings.tsv"),
        format!(
            "participant_id\tsession_id\tanx_b\tother\tanx_a\n{}",
            rows(&|s, ses| format!("{}\t{}\t{}", (s * 5 + ses) % 7, s, (s * s + ses) % 9))
        ),
    )
    .unwrap();
    let ham = |s: usize, ses: usize| ((20 + s) as f64, ((s * 3 + ses * 5) % 11) as f64);
    std::fs::write(
        ph.join("symptoms.tsv"),
        format!(
            "participant_id\tsession_id\tham_pre\tham_wk6\n{}",
            rows(&|s, ses| format!("{}\t{}", ham(s, ses).0, ham(s, ses).1))
        ),
    )
    .unwrap();
    let opts = GroupOptions {
        rois: vec!["ACC_pre".into()],
        behaviour: BehaviourScores {
            session_scores: Some(SessionScores {
                table: "ratings".into(),
                columns: vec!["anx_*".into()],
            }),
            response: Some(ResponseScores {
                table: "symptoms".into(),
                scales: vec!["ham".into()],
                baseline: "pre".into(),
                follow_up: "wk6".into(),
            }),
        },
        ..fixture_options(&bids, &out, &tpl)
    };
    assert_eq!(opts.behaviour.problem(), None);
    group(&opts).unwrap();
    let table = cbflow_bids::Table::read_tsv(&out.join("desc-brainBehaviour_table.tsv")).unwrap();
    let mut scores: Vec<String> = table
        .column("score")
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    scores.dedup();
    assert_eq!(scores, ["anx_b", "anx_a", "ham_change"]);
    let relations = table.column("relation").unwrap();
    assert!(
        relations.contains(&"baseline sgACC CBF (adjusted for global) vs wk-6 change"),
        "{relations:?}"
    );
    let points = cbflow_bids::Table::read_tsv(&out.join("desc-brainBehaviour_points.tsv")).unwrap();
    let (sc, sub, ses) = (
        points.column("score").unwrap(),
        points.column("participant_id").unwrap(),
        points.column("session_id").unwrap(),
    );
    let y = points.f64_column("y").unwrap();
    let mut checked = 0;
    for k in (0..points.n_rows()).filter(|&k| sc[k] == "ham_change") {
        let s: usize = sub[k].trim_start_matches("sub-").parse().unwrap();
        let e: usize = ses[k].trim_start_matches("ses-").parse().unwrap();
        let (pre, wk6) = ham(s, e);
        assert_eq!(y[k], Some(wk6 - pre), "{} {}", sub[k], ses[k]);
        checked += 1;
    }
    assert_eq!(checked, 12, "6 subjects × 2 pre-treatments");
    let side = cbflow_bids::read_json_object(&out.join("desc-brainBehaviour_points.json")).unwrap();
    let y_text = side["y"]["Description"].as_str().unwrap();
    assert!(
        y_text.contains("phenotype/ratings.tsv column")
            && y_text
                .contains("a symptoms scale's wk-6 value minus its pre (phenotype/symptoms.tsv)"),
        "{y_text}"
    );
}

#[test]
fn phenotype_declarations_are_checked() {
    let mut b = BehaviourScores::default();
    assert_eq!(b.problem(), None);
    b.response.as_mut().unwrap().follow_up = "baseline".into();
    assert!(b.problem().unwrap().contains("both \"baseline\""));
    let mut b = BehaviourScores::default();
    b.session_scores.as_mut().unwrap().table = "../etc".into();
    assert!(b.problem().unwrap().contains("not a phenotype table name"));
    let mut b = BehaviourScores::default();
    b.session_scores.as_mut().unwrap().columns.clear();
    assert!(b.problem().unwrap().contains("at least one column"));
    let none = BehaviourScores {
        session_scores: None,
        response: None,
    };
    assert_eq!(none.problem(), None);
}
