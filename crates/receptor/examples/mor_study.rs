//! End-to-end study whose ketamine effect is built to follow the MOR map:
//! `cbflow-synth` (phantom space, effect = MOR z-map within grey matter scaled to a realistic
//! ΔCBF) → `cbflow_pipeline::participant` → `cbflow_pipeline::group` →
//! `cbflow_pipeline::receptor_correlations` (all three nulls, FDR across maps).
//!
//! `cargo run --release -p cbflow-receptor --example mor_study [-- subjects [n_null [parcel|voxel [MAP,MAP,..]]]]`
//!
//! With `MOR_STUDY_DIR` set, the study and its outputs are kept there, and a later run reuses
//! them (only the receptor step runs again).
//!
//! Resources: `CBFLOW_RESOURCES` (or the user cache), else `../shared/data` next to the workspace. Prints the receptor
//! table of each contrast and the wall time of each stage.

use std::path::PathBuf;
use std::time::Instant;

use cbflow_pipeline::{
    GroupOptions, ParticipantOptions, ReceptorLevel, ReceptorOptions, Template, TemplateChoice,
};
use cbflow_receptor::NullModel;
use cbflow_resources::Registry;
use cbflow_synth::{EffectPattern, SynthSpec};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let subjects: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(12);
    let n_null: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let voxel = args.get(3).is_some_and(|a| a == "voxel");
    let maps: Vec<String> = args
        .get(4)
        .map(|a| a.split(',').map(String::from).collect())
        .unwrap_or_else(|| {
            ["MOR", "KOR", "NMDA", "GABAA", "NET", "GABAA5"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        });
    // the resource directory cbflow reads, else shared/data (panics naming what is missing)
    let resources = cbflow_testdata::resources_for(&["MNI152NLin6Asym", "MOR"]);
    // MOR_STUDY_DIR keeps the study and its outputs; otherwise a temporary directory
    let tmp = tempfile::tempdir().expect("temporary directory");
    let base = std::env::var_os("MOR_STUDY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let bids = base.join("bids");
    let out = base.join("derivatives");
    let seed = 11;
    let tpl = Template::phantom();
    if out.join("dataset_description.json").is_file() {
        println!("reusing the study in {}", base.display());
    } else {
        simulate_and_process(&resources, &bids, &out, subjects, seed, &tpl);
    }

    // 4. receptor step
    let mut opts = ReceptorOptions::new(bids, out.clone(), tpl, resources);
    opts.maps = maps;
    opts.parcellation = "schaefer100tian".into();
    opts.n_null = n_null;
    opts.seed = seed;
    opts.dominance = true;
    if voxel {
        opts.level = ReceptorLevel::Voxel;
    }
    let t = Instant::now();
    let s = cbflow_pipeline::receptor_correlations(&opts).expect("receptor correlations");
    println!(
        "receptor step ({}, {n_null} draws per null): {:.1} s, {} files",
        opts.level.as_str(),
        t.elapsed().as_secs_f64(),
        s.files.len()
    );
    let vario = if voxel {
        NullModel::VariogramSampled
    } else {
        NullModel::Variogram
    };
    for c in &s.contrasts {
        println!("\n{}", c.contrast);
        println!(
            "{:<8} {:>6} {:>5}  {:>9} {:>9}  {:>9} {:>9}  {:>9} {:>9}",
            "map", "r", "n", "p_vario", "q_vario", "p_juspace", "q_juspace", "p_signfl", "q_signfl"
        );
        for r in &c.results {
            let g = |m: &std::collections::BTreeMap<NullModel, f64>, k| {
                m.get(&k).map_or("n/a".to_string(), |v| format!("{v:.4}"))
            };
            println!(
                "{:<8} {:>6.3} {:>5}  {:>9} {:>9}  {:>9} {:>9}  {:>9} {:>9}",
                r.map,
                r.r,
                r.n,
                g(&r.p, vario),
                g(&r.p_fdr, vario),
                g(&r.p, NullModel::Juspace),
                g(&r.p_fdr, NullModel::Juspace),
                g(&r.p, NullModel::SignFlip),
                g(&r.p_fdr, NullModel::SignFlip),
            );
        }
    }
}

/// Stages 1–3: the synthetic study (effect following MOR), the participant and group levels.
fn simulate_and_process(
    resources: &std::path::Path,
    bids: &std::path::Path,
    out: &std::path::Path,
    subjects: usize,
    seed: u64,
    tpl: &Template,
) {
    let (bids, out) = (bids.to_path_buf(), out.to_path_buf());
    // 1. the effect: MOR z-map on the phantom grid (grey matter, inside the map's support),
    //    +10 % CBF on average, ±6 % per z unit
    let t = Instant::now();
    let reg = Registry::builtin().expect("registry");
    let mor = cbflow_pipeline::load_receptor_map(reg.receptor("MOR").unwrap(), resources, tpl)
        .expect("MOR map");
    let spec = SynthSpec {
        subjects,
        seed,
        effect: EffectPattern::from_z_map("MOR", &mor.z, 0.10, 0.06),
        ..SynthSpec::default()
    };
    cbflow_synth::generate(&spec, &bids).expect("synthetic study");
    println!(
        "synth: {subjects} subjects, effect = 0.10 + 0.06 z(MOR) in GM ({:.1} s)",
        t.elapsed().as_secs_f64()
    );

    // 2. participant level
    let t = Instant::now();
    let phantom = Some(TemplateChoice::Phantom);
    cbflow_pipeline::participant(&ParticipantOptions::new(bids.clone(), out.clone(), phantom))
        .expect("participant level");
    println!("participant level: {:.1} s", t.elapsed().as_secs_f64());

    // 3. group level
    let t = Instant::now();
    cbflow_pipeline::group(&GroupOptions {
        n_permutations: 1000,
        seed,
        cluster_threshold: 3.0,
        ..GroupOptions::new(bids.clone(), out.clone(), tpl.clone())
    })
    .expect("group level");
    println!("group level: {:.1} s", t.elapsed().as_secs_f64());
}
