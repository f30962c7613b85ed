//! The fixture is meaningful: the participant level recovers the synthetic study's CBF, in
//! native space and in the template-space ROI tables the group level reads.

use std::collections::BTreeMap;
use std::path::PathBuf;

use cbflow_bids::AslRun;
use cbflow_image::Volume;
use cbflow_pipeline::catalogue::RunFile;

use crate::levels;

/// cbflow-synth's truth of a run: `derivatives/truth/<the run's folder>/<the run's
/// entities>_<rest>` of the study.
fn truth(run: &AslRun, rest: &str) -> Volume {
    let l = levels();
    let p: PathBuf = l
        .bids
        .join("derivatives/truth")
        .join(run.asl.rel_path.parent().unwrap())
        .join(format!("{}_{rest}", run.entities));
    cbflow_image::read(&p).unwrap()
}

fn runs() -> Vec<AslRun> {
    let runs = cbflow_bids::Layout::index(&levels().bids)
        .unwrap()
        .asl_runs()
        .unwrap();
    assert_eq!(runs.len(), 4 * crate::SUBJECTS);
    runs
}

/// Grey-matter mean CBF (voxels whose true CBF is above the GM/WM midpoint, 45 mL/100 g/min) of
/// every run's native-space map within 3 % of the truth on the same grid.
#[test]
fn native_grey_matter_cbf_recovers_the_truth() {
    let l = levels();
    for run in runs() {
        let est = cbflow_image::read(&RunFile::Cbf.path(&l.out, &run.entities).unwrap()).unwrap();
        let t = truth(&run, "cbf.nii.gz");
        let pairs: Vec<(f64, f64)> = est
            .frame(0)
            .iter()
            .zip(t.frame(0).iter())
            .filter(|(_, t)| **t > 45.0)
            .map(|(e, t)| (f64::from(*e), f64::from(*t)))
            .collect();
        let n = pairs.len() as f64;
        let (est_mean, true_mean) = pairs
            .iter()
            .fold((0.0, 0.0), |(a, b), (e, t)| (a + e / n, b + t / n));
        let name = run.asl.rel_path.display();
        assert!(
            pairs.len() > 200,
            "{name}: {} grey-matter voxels",
            pairs.len()
        );
        assert!(
            (est_mean / true_mean - 1.0).abs() < 0.03,
            "{name}: GM mean CBF {est_mean:.2} vs truth {true_mean:.2}"
        );
    }
}

/// The `grey_matter` and `global` rows of the template-space ROI tables (what the group level
/// reads) carry the study's change from before to during: in every session, the ratio of the
/// two runs' means within 2 % of the ratio of the truth's means in template space over the same
/// masks (template GM probability > 0.5 inside the brain mask; the brain mask). The means
/// themselves are 4–13 % below the truth's: the 3–4 mm voxels mix grey matter with white matter
/// and CSF (partial volume), which the ratio cancels.
#[test]
fn template_roi_tables_carry_the_true_change() {
    let l = levels();
    let tpl = &l.template;
    let brain = tpl.brain_mask.frame(0).mapv(|v| v > 0.5);
    let gm = ndarray::Zip::from(tpl.gm.frame(0))
        .and(&brain)
        .map_collect(|&g, &b| b && g > 0.5);
    // (session, region) → [(estimate, truth) of run-1, of run-2]
    let mut by_session: BTreeMap<(String, &str), Vec<(f64, f64)>> = BTreeMap::new();
    for run in runs() {
        let t = truth(&run, &format!("space-{}_cbf.nii.gz", tpl.name));
        let table = cbflow_bids::Table::read_tsv(
            &RunFile::roi_table(&tpl.name, &tpl.res)
                .path(&l.out, &run.entities)
                .unwrap(),
        )
        .unwrap();
        let regions = table.column("region").unwrap();
        let means = table.f64_column("mean_cbf").unwrap();
        let mut session = run.entities.clone();
        session.remove("run");
        for (region, mask) in [("grey_matter", &gm), ("global", &brain)] {
            let row = regions.iter().position(|r| *r == region).unwrap();
            let inside: Vec<f32> = t
                .frame(0)
                .iter()
                .zip(mask.iter())
                .filter(|(_, m)| **m)
                .map(|(v, _)| *v)
                .collect();
            let want = inside.iter().map(|&v| f64::from(v)).sum::<f64>() / inside.len() as f64;
            by_session
                .entry((session.to_string(), region))
                .or_default()
                .push((means[row].unwrap(), want));
        }
    }
    assert_eq!(by_session.len(), 2 * 2 * crate::SUBJECTS);
    for ((session, region), runs) in &by_session {
        let [(e1, t1), (e2, t2)] = runs[..] else {
            panic!("{session}: {} runs", runs.len())
        };
        let (est, want) = (e2 / e1, t2 / t1);
        assert!(
            (est / want - 1.0).abs() < 0.02,
            "{session} {region}: run-2/run-1 {est:.4} ({e2:.2}/{e1:.2}) vs truth {want:.4} ({t2:.2}/{t1:.2})"
        );
    }
}
