//! Times the receptor step at the size of issue 18: 26 subjects of a crossover study on the MNI
//! 2 mm grid, the ten receptor maps of the default workflow on Schaefer-200 + Tian, 1 000 draws
//! of each null (variogram, JuSpace, sign flip), the four default contrasts, dominance analysis.
//!
//! `cargo run --release -p cbflow-pipeline --example bench_receptor_step [-- subjects [n_null]]`
//!
//! The inputs are what the participant and group levels leave in OUTPUT_DIR, written here from
//! synthetic data instead: per subject `sessions.tsv` (placebo and naltrexone sessions in
//! alternating order) and four template-space CBF maps (grey matter 60, white matter 22
//! mL/100 g/min; during ketamine plus 3 × the MOR z-map under placebo, 0.9 × under naltrexone;
//! plus noise of sd 4), the contrasts table and each contrast's group t map (one-sample t of the subjects'
//! contrast maps). The receptor step is then the workflow's own call,
//! `cbflow_pipeline::receptor_correlations`, with the options of
//! `workflows/ketamine-naltrexone-crossover.yaml`; it prints the wall time of each part
//! (`ReceptorSummary::timings`) and of the whole step.
//!
//! Resources: `CBFLOW_RESOURCES` (or the user cache), else `../shared/data`. With
//! `RECEPTOR_STEP_DIR=DIR` the study is written to (or, when there, reused from) `DIR/bids` and
//! `DIR/derivatives`, and the receptor tables stay in `DIR/derivatives` (to compare two builds'
//! outputs); otherwise a temporary directory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use cbflow_bids::Entities;
use cbflow_image::{DataType, Volume};
use cbflow_pipeline::catalogue::{GroupFile, RunFile, StatMap};
use cbflow_pipeline::{GroupContrast, ReceptorOptions, StudyDesign, Tail, Template};
use cbflow_resources::Registry;
use ndarray::{Array3, Zip};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

/// The maps of the default workflow's receptor step.
const MAPS: [&str; 10] = [
    "MOR",
    "KOR",
    "NMDA",
    "mGluR5",
    "GABAA",
    "GABAA5",
    "GABAA5_lukow",
    "NET",
    "5HT2a",
    "D2",
];

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let subjects = args.first().copied().unwrap_or(26);
    let n_null = args.get(1).copied().unwrap_or(1000);
    let mut names = vec!["MNI152NLin6Asym", "schaefer200tian"];
    names.extend(MAPS);
    let resources = cbflow_testdata::resources_for(&names);
    let tmp = tempfile::tempdir().expect("temporary directory");
    let base = std::env::var_os("RECEPTOR_STEP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let (bids, out) = (base.join("bids"), base.join("derivatives"));
    let tpl = Template::mni(&resources).expect("MNI template");
    let design = StudyDesign::default();
    let contrasts = GroupContrast::defaults(&design);
    if GroupFile::Contrasts.path(&out).unwrap().is_file() {
        println!("reusing the study in {}", base.display());
    } else {
        let t = Instant::now();
        write_study(&bids, &out, &tpl, &resources, &contrasts, &design, subjects);
        println!(
            "study written: {subjects} subjects, {} contrasts, in {} ({:.1} s)",
            contrasts.len(),
            base.display(),
            t.elapsed().as_secs_f64()
        );
    }
    // the default workflow's receptor step
    let mut opts = ReceptorOptions::new(bids, out, tpl, resources);
    opts.maps = MAPS.iter().map(|m| m.to_string()).collect();
    opts.n_null = n_null;
    opts.dominance = true;
    opts.design = design;
    println!(
        "receptor step: {} maps on {}, {n_null} draws of {} nulls, {} threads",
        opts.maps.len(),
        opts.parcellation,
        opts.nulls.len(),
        rayon::current_num_threads()
    );
    let t = Instant::now();
    let s = cbflow_pipeline::receptor_correlations(&opts).expect("receptor step");
    let total = t.elapsed().as_secs_f64();
    for (part, secs) in &s.timings {
        println!("  {part:<28} {secs:>7.2} s");
    }
    println!(
        "receptor step: {total:.2} s ({} contrasts, {} files)",
        s.contrasts.len(),
        s.files.len()
    );
}

/// The inputs of the receptor step, as the participant and group levels leave them.
fn write_study(
    bids: &Path,
    out: &Path,
    tpl: &Template,
    resources: &Path,
    contrasts: &[GroupContrast],
    design: &StudyDesign,
    n_sub: usize,
) {
    std::fs::create_dir_all(bids).unwrap();
    std::fs::write(
        bids.join("dataset_description.json"),
        r#"{"Name": "receptor step benchmark", "BIDSVersion": "1.10.0"}"#,
    )
    .unwrap();
    let reg = Registry::builtin().unwrap();
    let mor = cbflow_pipeline::load_receptor_map(reg.receptor("MOR").unwrap(), resources, tpl)
        .expect("MOR map");
    let effect = mor.z.mapv(|v| if v.is_finite() { v } else { 0.0 });
    let brain = tpl.brain_mask.frame(0).mapv(|v| v > 0.5);
    let base = Zip::from(tpl.gm.frame(0))
        .and(tpl.wm.frame(0))
        .map_collect(|&g, &w| 60.0 * g + 22.0 * w);
    let noise = Normal::new(0.0f32, 4.0).unwrap();
    // per contrast: sum and sum of squares over subjects of the contrast map
    let mut sums = vec![
        (
            Array3::<f64>::zeros(base.raw_dim()),
            Array3::<f64>::zeros(base.raw_dim())
        );
        contrasts.len()
    ];
    let mut participants = String::from("participant_id\n");
    for s in 0..n_sub {
        let sub = format!("{:02}", s + 1);
        participants.push_str(&format!("sub-{sub}\n"));
        let dir = bids.join(format!("sub-{sub}"));
        std::fs::create_dir_all(&dir).unwrap();
        // (session of placebo, session of naltrexone)
        let (pl, nl) = if s % 2 == 0 { (1, 2) } else { (2, 1) };
        std::fs::write(
            dir.join(format!("sub-{sub}_sessions.tsv")),
            format!(
                "session_id\t{col}\t{per}\nses-{pl}\t{c}\t{pl}\nses-{nl}\t{a}\t{nl}\n",
                col = design.pretreatment_column,
                per = design.period_column,
                c = design.control,
                a = design.active
            ),
        )
        .unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(18);
        rng.set_stream(s as u64);
        // the four cells in the contrasts' order: placebo before, during, naltrexone before, during
        let mut cells = Vec::with_capacity(4);
        for (ses, gain) in [(pl, 1.0f32), (nl, 0.3)] {
            for run in ["1", "2"] {
                let mut a = base.clone();
                Zip::from(&mut a)
                    .and(&effect)
                    .and(&brain)
                    .for_each(|v, &e, &b| {
                        if !b {
                            *v = 0.0;
                            return;
                        }
                        if run == "2" {
                            *v += 3.0 * gain * e;
                        }
                        *v += noise.sample(&mut rng);
                    });
                let e: Entities = [
                    ("sub", sub.as_str()),
                    ("ses", &ses.to_string()),
                    ("run", run),
                ]
                .into_iter()
                .collect();
                let p = RunFile::template_cbf(&tpl.name, &tpl.res)
                    .path(out, &e)
                    .unwrap();
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                let v = Volume::new(a.clone().into_dyn(), tpl.grid.affine).unwrap();
                cbflow_image::write(&p, &v, DataType::Float32).unwrap();
                cells.push(a);
            }
        }
        for (c, (sum, sq)) in contrasts.iter().zip(&mut sums) {
            let w = c.contrast.weights();
            Zip::from(sum)
                .and(sq)
                .and(&cells[0])
                .and(&cells[1])
                .and(&cells[2])
                .and(&cells[3])
                .for_each(|s, q, &a, &b, &c, &d| {
                    let v = w[0] * f64::from(a)
                        + w[1] * f64::from(b)
                        + w[2] * f64::from(c)
                        + w[3] * f64::from(d);
                    *s += v;
                    *q += v * v;
                });
        }
    }
    std::fs::write(bids.join("participants.tsv"), participants).unwrap();
    // the group level's outputs the step reads: each contrast's t map and the contrasts table
    let n = n_sub as f64;
    for (c, (sum, sq)) in contrasts.iter().zip(&sums) {
        let t = Zip::from(sum)
            .and(sq)
            .and(&brain)
            .map_collect(|&s, &q, &b| {
                let m = s / n;
                let var = (q - n * m * m) / (n - 1.0);
                if b && var > 0.0 {
                    (m / (var / n).sqrt()) as f32
                } else {
                    0.0
                }
            });
        let p = GroupFile::stat_map(&tpl.name, &tpl.res, &c.name, StatMap::T)
            .path(out)
            .unwrap();
        let v = Volume::new(t.into_dyn(), tpl.grid.affine).unwrap();
        cbflow_image::write(&p, &v, DataType::Float32).unwrap();
    }
    let mut table = format!(
        "contrast\tdescription\ttail\t{}\n",
        design.weight_columns().join("\t")
    );
    for c in contrasts {
        let tail = match c.tail {
            Tail::Positive => "positive",
            Tail::Negative => "negative",
            Tail::TwoSided => "two-sided",
        };
        let w: Vec<String> = c.contrast.weights().iter().map(|v| v.to_string()).collect();
        table.push_str(&format!(
            "{}\t{}\t{tail}\t{}\n",
            c.name,
            c.description,
            w.join("\t")
        ));
    }
    std::fs::write(GroupFile::Contrasts.path(out).unwrap(), table).unwrap();
}
