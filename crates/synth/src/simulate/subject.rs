//! One subject: its warp of the template anatomy and its two sessions.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::model::{Population, SessionTruth};
use super::session::simulate_session;
use crate::deform::{SubjectTransform, random_rigid};
use crate::io::{Writer, fmt};
use crate::pheno::{self, LinkModel};
use crate::space::Space;
use crate::{Result, SynthSpec};

/// Simulates one subject: both sessions, the T1w, both ASL runs and their M0 scans.
pub(super) fn simulate_subject(
    w: &Writer,
    spec: &SynthSpec,
    space: &Space,
    pop: &Population,
    links: &LinkModel,
    sub: &str,
    sequence: &'static str,
    rng: &mut ChaCha8Rng,
) -> Result<SubjectRows> {
    let noise = &spec.noise;
    let std = Normal::new(0.0, 1.0).expect("unit normal");
    let anatomy = SubjectTransform::random(rng);
    let age = rng.random_range(21..=64);
    let sex = if rng.random_bool(0.5) { "F" } else { "M" };
    let subject_global = (1.0 + noise.subject_global_sd * std.sample(rng)).clamp(0.6, 1.4);
    let z_sgacc = std.sample(rng);
    let sgacc_factor = (1.0 + noise.sgacc_sd * z_sgacc).clamp(0.6, 1.4);
    let order = if sequence == "PN" {
        ["placebo", "naltrexone"]
    } else {
        ["naltrexone", "placebo"]
    };
    let mut sessions_rows = Vec::new();
    let mut rows = SubjectRows {
        participant: vec![
            format!("sub-{sub}"),
            age.to_string(),
            sex.into(),
            sequence.into(),
        ],
        infusion: vec![],
        mood: vec![],
        truth: vec![],
    };
    for (period, pretreatment) in order.iter().enumerate() {
        let ses = format!("{}", period + 1);
        let pose = random_rigid(rng, 5.0, 6.0);
        let xfm = anatomy.repositioned(&pose);
        let z_rise = std.sample(rng);
        let effect_scale = if spec.null {
            0.0
        } else {
            (1.0 + noise.effect_sd * z_rise).max(0.0)
        };
        let global = [0, 1].map(|_| subject_global * (1.0 + noise.run_global_sd * std.sample(rng)));
        let tau = spec.protocol.pairs as f64 / 4.0;
        let ramp: Vec<f64> = (0..spec.protocol.pairs)
            .map(|p| 1.0 - (-(p as f64 + 0.5) / tau).exp())
            .collect();
        let truth = SessionTruth {
            session: ses.clone(),
            pretreatment,
            period: period + 1,
            global,
            effect_scale,
            ramp: ramp.clone(),
        };
        simulate_session(w, spec, space, pop, sub, &xfm, sgacc_factor, &truth, rng)?;
        sessions_rows.push(vec![
            format!("ses-{ses}"),
            pretreatment.to_string(),
            (period + 1).to_string(),
        ]);
        let m = if *pretreatment == "placebo" {
            links.clone()
        } else {
            LinkModel::none()
        };
        let scores = pheno::draw(rng, &m, z_rise, z_sgacc);
        let mut inf = vec![format!("sub-{sub}"), format!("ses-{ses}")];
        inf.extend(scores.psi.iter().map(|v| fmt(*v, 1)));
        inf.push(fmt(scores.cadss, 1));
        rows.infusion.push(inf);
        rows.mood.push(vec![
            format!("sub-{sub}"),
            format!("ses-{ses}"),
            fmt(scores.madrs[0], 0),
            fmt(scores.madrs[1], 0),
            fmt(scores.qids[0], 0),
            fmt(scores.qids[1], 0),
        ]);
        let mean_ramp = ramp.iter().sum::<f64>() / ramp.len() as f64;
        rows.truth.push(vec![
            format!("sub-{sub}"),
            format!("ses-{ses}"),
            pretreatment.to_string(),
            fmt(global[0], 6),
            fmt(global[1], 6),
            fmt(sgacc_factor, 6),
            fmt(effect_scale, 6),
            fmt(pop.acc_rise * effect_scale * mean_ramp, 6),
            fmt(z_rise, 6),
            fmt(z_sgacc, 6),
        ]);
    }
    w.tsv(
        &format!("sub-{sub}/sub-{sub}_sessions.tsv"),
        &["session_id", "pretreatment", "period"],
        &sessions_rows,
    )?;
    Ok(rows)
}

/// Table rows of one subject, collected and written after all subjects are done.
pub(super) struct SubjectRows {
    pub(super) participant: Vec<String>,
    pub(super) infusion: Vec<Vec<String>>,
    pub(super) mood: Vec<Vec<String>>,
    pub(super) truth: Vec<Vec<String>>,
}
