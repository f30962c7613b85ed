//! The study generator: subjects, sessions, runs, the ASL forward model and the truth.

use std::path::Path;

use cbflow_image::{DataType, Grid, Volume};
use nalgebra::{Matrix4, Vector4};
use ndarray::{Array3, Array4, Axis, Zip};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::deform::{SubjectTransform, random_rigid, rigid_matrix};
use crate::io::{Writer, fmt};
use crate::pheno::{self, LinkModel, PSI_SUBSCALES};
use crate::sample::{box_prefilter, trilinear_channels};
use crate::space::{ACC_LABELS, Space, T1W_WM};
use crate::{EffectPattern, Error, Result, SynthSpec, SynthSummary};

/// The 3D pCASL protocol of every ASL run (the study's: LD 1.8 s, PLD 1.8 s, four background
/// suppression pulses, a separate M0 with its own repetition time).
#[derive(Debug, Clone, Serialize)]
pub struct AslProtocol {
    /// Label/control pairs per run.
    pub pairs: usize,
    /// Labelling duration τ (s).
    pub labeling_duration: f64,
    /// Post-labelling delay (s).
    pub post_labeling_delay: f64,
    /// Repetition time of the ASL volumes (s).
    pub repetition_time: f64,
    /// Repetition time of the M0 scan (s); the M0 image is not fully relaxed.
    pub m0_repetition_time: f64,
    /// Labelling efficiency of pCASL without background suppression (Alsop et al. 2015).
    pub labeling_efficiency: f64,
    /// Background-suppression inversion pulses.
    pub bs_pulses: u32,
    /// Efficiency kept per background-suppression pulse (the same default as `cbflow-cbf`).
    pub bs_efficiency_per_pulse: f64,
    /// T1 of arterial blood at 3 T (s).
    pub t1_blood: f64,
    /// Brain–blood partition coefficient λ (mL/g).
    pub lambda: f64,
    /// Single tissue T1 (s) that scales the M0 image by `1 − exp(−TR/T1)` (1.607 s at 3 T,
    /// Wright et al. 2008: the `cbflow-cbf` default, so its correction undoes it exactly).
    pub t1_tissue: f64,
    /// ASL voxel size (mm) and grid dimensions.
    pub asl_voxel: [f64; 3],
    /// ASL grid dimensions.
    pub asl_dims: [usize; 3],
}

impl Default for AslProtocol {
    fn default() -> Self {
        Self {
            pairs: 8,
            labeling_duration: 1.8,
            post_labeling_delay: 1.8,
            repetition_time: 4.6,
            m0_repetition_time: 5.0,
            labeling_efficiency: 0.85,
            bs_pulses: 4,
            bs_efficiency_per_pulse: 0.95,
            t1_blood: 1.65,
            lambda: 0.9,
            t1_tissue: 1.607,
            asl_voxel: [3.75, 3.75, 4.0],
            asl_dims: [48, 56, 38],
        }
    }
}

impl AslProtocol {
    /// ΔM / (M0 · CBF) of the consensus single-PLD pCASL model (Alsop et al. 2015):
    /// `ΔM = CBF · M0 · 2 α T1b (1 − e^{−τ/T1b}) e^{−PLD/T1b} / (6000 λ)`, CBF in mL/100 g/min.
    pub fn signal_per_cbf(&self) -> f64 {
        let alpha =
            self.labeling_efficiency * self.bs_efficiency_per_pulse.powi(self.bs_pulses as i32);
        let t1b = self.t1_blood;
        2.0 * alpha
            * t1b
            * (1.0 - (-self.labeling_duration / t1b).exp())
            * (-self.post_labeling_delay / t1b).exp()
            / (6000.0 * self.lambda)
    }
}

/// Noise and variability of the simulated study.
#[derive(Debug, Clone, Serialize)]
pub struct NoiseModel {
    /// Gaussian noise per ASL and M0 voxel, as a fraction of the grey-matter M0.
    pub asl_sigma: f64,
    /// Gaussian noise of the T1w as a fraction of the white-matter intensity.
    pub t1w_sigma: f64,
    /// Between-subject SD of global CBF (fraction).
    pub subject_global_sd: f64,
    /// Between-run SD of global CBF (fraction).
    pub run_global_sd: f64,
    /// Between-subject SD of baseline sgACC perfusion relative to global (fraction).
    pub sgacc_sd: f64,
    /// SD of the ketamine rise across subjects and sessions, relative to its mean.
    pub effect_sd: f64,
    /// Random-walk step of head motion between ASL volumes: translation (mm) and rotation (deg).
    pub motion_step: [f64; 2],
}

impl Default for NoiseModel {
    fn default() -> Self {
        Self {
            asl_sigma: 0.002,
            t1w_sigma: 0.02,
            subject_global_sd: 0.12,
            run_global_sd: 0.03,
            sgacc_sd: 0.10,
            effect_sd: 0.5,
            motion_step: [0.15, 0.1],
        }
    }
}

/// Mean fractional CBF rise during ketamine inside the ACC labels (0 in null studies).
pub const KETAMINE_RISE: f64 = 0.18;
/// Grey- and white-matter CBF of the population template (mL/100 g/min).
pub const CBF_GM: f64 = 60.0;
/// See [`CBF_GM`].
pub const CBF_WM: f64 = 22.0;
/// Proton density (relative M0) of GM, WM and CSF, and the M0 scale.
const PD: [f64; 3] = [0.82, 0.72, 1.0];
const M0_SCALE: f64 = 1000.0;
/// Residual static signal of the background-suppressed control and label images, fraction of M0.
const BS_RESIDUAL: f64 = 0.1;

/// Population maps on the template grid, the same for everyone.
struct Population {
    /// Baseline CBF (mL/100 g/min) without subject factors.
    cbf: Array3<f32>,
    /// Fractional ketamine rise (0 outside the ACC).
    effect: Array3<f32>,
    /// Voxels in the sgACC labels (151, 152), whose baseline perfusion varies between subjects.
    sgacc: Array3<f32>,
    /// Relative proton density.
    pd: Array3<f32>,
    /// Mean fractional rise over the ACC labels (the truth's `acc_rise` at scale 1).
    acc_rise: f64,
}

impl Population {
    fn new(space: &Space, null: bool, pattern: &EffectPattern) -> Self {
        let cbf = Zip::from(&space.gm)
            .and(&space.wm)
            .map_collect(|&g, &w| CBF_GM as f32 * g + CBF_WM as f32 * w);
        let effect = match pattern {
            _ if null => Array3::zeros(space.labels.raw_dim()),
            EffectPattern::AccRois => {
                let rise = KETAMINE_RISE as f32;
                space
                    .labels
                    .mapv(|l| if ACC_LABELS.contains(&l) { rise } else { 0.0 })
            }
            EffectPattern::Map { rise, .. } => rise.clone(),
        };
        let (mut acc_sum, mut acc_n) = (0.0, 0usize);
        Zip::from(&space.labels).and(&effect).for_each(|l, &e| {
            if ACC_LABELS.contains(l) {
                acc_sum += f64::from(e);
                acc_n += 1;
            }
        });
        let acc_rise = match pattern {
            _ if null => 0.0,
            EffectPattern::AccRois => KETAMINE_RISE,
            EffectPattern::Map { .. } if acc_n > 0 => acc_sum / acc_n as f64,
            EffectPattern::Map { .. } => 0.0,
        };
        let sgacc = space
            .labels
            .mapv(|l| if l == 151 || l == 152 { 1.0 } else { 0.0 });
        let pd = Zip::from(&space.gm)
            .and(&space.wm)
            .and(&space.csf)
            .map_collect(|&g, &w, &c| PD[0] as f32 * g + PD[1] as f32 * w + PD[2] as f32 * c);
        Self {
            cbf,
            effect,
            sgacc,
            pd,
            acc_rise,
        }
    }
}

/// Everything drawn for one subject-session.
#[derive(Debug, Clone, Serialize)]
struct SessionTruth {
    session: String,
    pretreatment: &'static str,
    period: usize,
    /// Global CBF factor of each run.
    global: [f64; 2],
    /// Ketamine rise scale k (rise = KETAMINE_RISE · k in the ACC).
    effect_scale: f64,
    /// Fraction of the full rise reached at each pair of the during-ketamine run.
    ramp: Vec<f64>,
}

/// Writes a synthetic study into `out_dir` (created; it must not exist or be empty).
pub fn generate(spec: &SynthSpec, out_dir: &Path) -> Result<SynthSummary> {
    if spec.subjects < 2 {
        return Err(Error::Invalid(format!(
            "at least 2 subjects are needed, got {}",
            spec.subjects
        )));
    }
    if spec.protocol.pairs < 2 {
        return Err(Error::Invalid(
            "at least 2 label/control pairs per run are needed".into(),
        ));
    }
    if out_dir.exists()
        && std::fs::read_dir(out_dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(Error::Invalid(format!(
            "{} exists and is not empty",
            out_dir.display()
        )));
    }
    let space = match &spec.templates {
        Some(dir) => Space::from_resources(dir)?,
        None => Space::phantom(),
    };
    if let EffectPattern::Map { name, rise } = &spec.effect {
        let d = space.grid.dims;
        if rise.shape() != d {
            return Err(Error::Invalid(format!(
                "effect map {name:?} has shape {:?}; the {} space's grid is {d:?}",
                rise.shape(),
                space.name
            )));
        }
        if let Some(v) = rise.iter().find(|v| !v.is_finite() || **v <= -1.0) {
            return Err(Error::Invalid(format!(
                "effect map {name:?} has the value {v}: fractional CBF changes must be finite and > -1"
            )));
        }
    }
    let pop = Population::new(&space, spec.null, &spec.effect);
    let w = Writer::new(out_dir);
    let subjects: Vec<String> = (1..=spec.subjects).map(|s| format!("{s:02}")).collect();
    // Counterbalanced order: half placebo first (sequence PN), half naltrexone first (NP).
    let mut order_rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut sequences: Vec<&'static str> = (0..spec.subjects)
        .map(|i| if i % 2 == 0 { "PN" } else { "NP" })
        .collect();
    for i in (1..sequences.len()).rev() {
        let j = order_rng.random_range(0..=i);
        sequences.swap(i, j);
    }
    write_top_level(&w, spec, &space)?;
    let links = if spec.null {
        LinkModel::none()
    } else {
        LinkModel::study()
    };
    let per_subject: Vec<Result<SubjectRows>> = subjects
        .par_iter()
        .enumerate()
        .map(|(si, sub)| {
            let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
            rng.set_stream(si as u64 + 1);
            simulate_subject(&w, spec, &space, &pop, &links, sub, sequences[si], &mut rng)
        })
        .collect();
    let mut rows = Vec::new();
    for r in per_subject {
        rows.push(r?);
    }
    write_tables(&w, spec, &space, &links, &rows)?;
    Ok(SynthSummary {
        root: out_dir.to_path_buf(),
        subjects,
        files: w.count(),
        space: space.name.clone(),
    })
}

/// Table rows of one subject, collected and written after all subjects are done.
struct SubjectRows {
    participant: Vec<String>,
    infusion: Vec<Vec<String>>,
    mood: Vec<Vec<String>>,
    truth: Vec<Vec<String>>,
}

fn write_top_level(w: &Writer, spec: &SynthSpec, space: &Space) -> Result<()> {
    w.json(
        "dataset_description.json",
        &json!({
            "Name": "cbflow synthetic ketamine + naltrexone crossover (3D pCASL)",
            "BIDSVersion": "1.10.0",
            "DatasetType": "raw",
            "License": "CC0",
            "Authors": ["cbflow-synth"],
            "GeneratedBy": [{"Name": "cbflow-synth", "Version": env!("CARGO_PKG_VERSION")}],
        }),
    )?;
    w.text(
        "README",
        &format!(
            "Synthetic crossover study generated by cbflow synth (seed {}, {} subjects, {}).\n\
             Each subject has two sessions (placebo or naltrexone pre-treatment, see sub-*/sub-*_sessions.tsv);\n\
             run-1 is before and run-2 during the ketamine infusion. Ground truth: derivatives/truth.\n",
            spec.seed,
            spec.subjects,
            if spec.null { "null: no effect" } else { "ketamine raises ACC CBF" }
        ),
    )?;
    w.json(
        "participants.json",
        &json!({
            "age": {"Description": "age at screening", "Units": "year"},
            "sex": {"Description": "sex", "Levels": {"F": "female", "M": "male"}},
            "sequence": {"Description": "order of pre-treatments", "Levels": {"PN": "placebo then naltrexone", "NP": "naltrexone then placebo"}},
        }),
    )?;
    let mut psi = serde_json::Map::new();
    for s in PSI_SUBSCALES {
        psi.insert(s.into(), json!({"Description": format!("Psychotomimetic States Inventory subscale {} after the infusion", &s[4..]) }));
    }
    psi.insert("cadss".into(), json!({"Description": "Clinician-Administered Dissociative States Scale total after the infusion"}));
    w.json("phenotype/infusion.json", &serde_json::Value::Object(psi))?;
    w.json(
        "phenotype/mood.json",
        &json!({
            "madrs_baseline": {"Description": "MADRS total before the infusion"},
            "madrs_day1": {"Description": "MADRS total one day after the infusion"},
            "qids_baseline": {"Description": "QIDS-SR total before the infusion"},
            "qids_day1": {"Description": "QIDS-SR total one day after the infusion"},
        }),
    )?;
    // truth: population maps in template space
    w.json(
        "derivatives/truth/dataset_description.json",
        &json!({
            "Name": "cbflow synthetic study: ground truth",
            "BIDSVersion": "1.10.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "cbflow-synth", "Version": env!("CARGO_PKG_VERSION")}],
        }),
    )?;
    let tpl = |data: Array3<f32>| Volume::new(data.into_dyn(), space.grid.affine);
    let sp = &space.name;
    w.nifti(
        &format!("derivatives/truth/space-{sp}_desc-effect_cbf.nii.gz"),
        &tpl(Population::new(space, spec.null, &spec.effect).effect)?,
        DataType::Float32,
    )?;
    w.nifti(
        &format!("derivatives/truth/space-{sp}_desc-baseline_cbf.nii.gz"),
        &tpl(Population::new(space, spec.null, &spec.effect).cbf)?,
        DataType::Float32,
    )?;
    w.nifti(
        &format!("derivatives/truth/space-{sp}_dseg.nii.gz"),
        &tpl(space.labels.mapv(|l| l as f32))?,
        DataType::Int16,
    )?;
    Ok(())
}

fn write_tables(
    w: &Writer,
    spec: &SynthSpec,
    space: &Space,
    links: &LinkModel,
    rows: &[SubjectRows],
) -> Result<()> {
    let participants: Vec<Vec<String>> = rows.iter().map(|r| r.participant.clone()).collect();
    w.tsv(
        "participants.tsv",
        &["participant_id", "age", "sex", "sequence"],
        &participants,
    )?;
    let mut header = vec!["participant_id", "session_id"];
    header.extend(PSI_SUBSCALES);
    header.push("cadss");
    let infusion: Vec<Vec<String>> = rows.iter().flat_map(|r| r.infusion.clone()).collect();
    w.tsv("phenotype/infusion.tsv", &header, &infusion)?;
    let mood: Vec<Vec<String>> = rows.iter().flat_map(|r| r.mood.clone()).collect();
    w.tsv(
        "phenotype/mood.tsv",
        &[
            "participant_id",
            "session_id",
            "madrs_baseline",
            "madrs_day1",
            "qids_baseline",
            "qids_day1",
        ],
        &mood,
    )?;
    let truth: Vec<Vec<String>> = rows.iter().flat_map(|r| r.truth.clone()).collect();
    w.tsv(
        "derivatives/truth/sessions_truth.tsv",
        &[
            "participant_id",
            "session_id",
            "pretreatment",
            "global_run1",
            "global_run2",
            "sgacc_factor",
            "effect_scale",
            "acc_rise",
            "z_rise",
            "z_sgacc",
        ],
        &truth,
    )?;
    w.json(
        "derivatives/truth/truth.json",
        &json!({
            "Space": space.name,
            "Seed": spec.seed,
            "Null": spec.null,
            "KetamineRise": if spec.null { 0.0 } else { KETAMINE_RISE },
            "EffectPattern": match &spec.effect {
                EffectPattern::AccRois => json!("acc-rois"),
                EffectPattern::Map { name, .. } => json!({"map": name, "Description": format!("fractional CBF rise per voxel following the {name} map (space-{}_desc-effect_cbf.nii.gz); KetamineRise does not apply", space.name)}),
            },
            "KetamineRiseDescription": "mean fractional CBF rise in the AAL3 ACC labels 151-156 during ketamine, equal under placebo and naltrexone; pair p of the during run reaches the fraction ramp[p] of it",
            "CBF": {"GM": CBF_GM, "WM": CBF_WM, "Units": "mL/100g/min"},
            "Protocol": spec.protocol,
            "SignalPerCBF": spec.protocol.signal_per_cbf(),
            "Noise": spec.noise,
            "NoiseDescription": "asl_sigma: SD of Gaussian noise added to every ASL and M0 voxel, as a fraction of grey-matter M0",
            "PhenotypeLinksPlacebo": links,
            "PhenotypeLinksNaltrexone": LinkModel::none(),
            "NativeCBFDefinition": "sub-*/ses-*/perf/*_cbf.nii.gz: the M0-weighted partial-volume average CBF of each ASL voxel at the head position of the M0 scan, mean over pairs; exactly what error-free quantification recovers",
            "TransformDefinition": "sub-*/ses-*/anat/*_from-template_to-T1w_xfm.json: native = A · (p + u(p)) for template world point p (mm, RAS), u(p) = sum_k amplitude_k sin(2 pi frequency_k . p + phase_k)",
            "MotionDefinition": "*_motion.tsv: head position of each ASL volume as a rigid transform about the ASL grid centre, q = R (p - c) + c + t, R = Rz Ry Rx; the volume samples the head at H^-1(q)",
        }),
    )?;
    Ok(())
}

/// Simulates one subject: both sessions, the T1w, both ASL runs and their M0 scans.
fn simulate_subject(
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

/// An axis-aligned grid of `dims` voxels of size `vs` centred on world point `centre`;
/// `flip_x` stores it LAS (negative x step), as many scanners' NIfTI conversions do.
fn centred_grid(dims: [usize; 3], vs: [f64; 3], centre: [f64; 3], flip_x: bool) -> Grid {
    let mut a = Matrix4::identity();
    let sx = if flip_x { -vs[0] } else { vs[0] };
    a[(0, 0)] = sx;
    a[(1, 1)] = vs[1];
    a[(2, 2)] = vs[2];
    let steps = [sx, vs[1], vs[2]];
    for c in 0..3 {
        a[(c, 3)] = (centre[c] - steps[c] * (dims[c] as f64 - 1.0) / 2.0).round();
    }
    Grid::new(dims, a).expect("diagonal affine")
}

#[allow(clippy::too_many_lines)]
fn simulate_session(
    w: &Writer,
    spec: &SynthSpec,
    space: &Space,
    pop: &Population,
    sub: &str,
    xfm: &SubjectTransform,
    sgacc_factor: f64,
    truth: &SessionTruth,
    rng: &mut ChaCha8Rng,
) -> Result<()> {
    let proto = &spec.protocol;
    let noise = &spec.noise;
    let ses = &truth.session;
    let stem = format!("sub-{sub}_ses-{ses}");
    let inv_affine = xfm
        .affine_matrix()
        .try_inverse()
        .ok_or_else(|| Error::Invalid("singular subject affine".into()))?;
    let tpl_inv = space.grid.inverse_affine();
    let to_tpl_voxel = |q: [f64; 3]| -> [f64; 3] {
        let p = xfm.inverse(&inv_affine, q);
        let v = tpl_inv * Vector4::new(p[0], p[1], p[2], 1.0);
        [v[0], v[1], v[2]]
    };
    let brain_centre = xfm.forward([0.0, -17.0, 14.0]);

    // --- T1w: tissue contrast point-sampled from the template, with noise.
    let tvs = space.grid.voxel_size();
    let t1_dims = [0, 1, 2].map(|a| ((200.0 + 20.0 * a as f64) / tvs[a]).ceil() as usize);
    let t1_grid = centred_grid(t1_dims, tvs, brain_centre, false);
    let t1_tpl = space.t1w();
    let sigma_t1 = noise.t1w_sigma * T1W_WM as f64;
    let brain_tpl = space.brain_mask().mapv(|b| if b { 1.0f32 } else { 0.0 });
    // channels: T1w (noise-free, with the receive coil's smooth bias field), GM, brain
    let mut t1c = Array4::<f32>::zeros((t1_dims[0], t1_dims[1], t1_dims[2], 3));
    t1c.axis_iter_mut(Axis(2))
        .into_par_iter()
        .enumerate()
        .for_each(|(k, mut plane)| {
            for i in 0..t1_dims[0] {
                for j in 0..t1_dims[1] {
                    let q = t1_grid.voxel_to_world([i as f64, j as f64, k as f64]);
                    let v = to_tpl_voxel(q);
                    let d = [0, 1, 2].map(|a| (q[a] - brain_centre[a]) / 100.0);
                    let bias = (0.18 * d[0] - 0.14 * d[2] + 0.10 * d[1] * d[1]).exp() as f32;
                    plane[[i, j, 0]] = bias * sample_linear(&t1_tpl, v);
                    plane[[i, j, 1]] = sample_linear(&space.gm, v);
                    plane[[i, j, 2]] = sample_linear(&brain_tpl, v);
                }
            }
        });
    // magnitude (Rician) noise, as a scanner's magnitude images have
    let mut t1 = t1c.index_axis(Axis(3), 0).to_owned();
    let mut imag = Array3::<f32>::zeros(t1.raw_dim());
    add_noise(&mut t1, sigma_t1, rng, 0.0);
    add_noise(&mut imag, sigma_t1, rng, 0.0);
    Zip::from(&mut t1)
        .and(&imag)
        .for_each(|r, &im| *r = (*r * *r + im * im).sqrt());
    for (c, desc) in [(1, "label-GM_probseg"), (2, "desc-brain_mask")] {
        w.nifti(
            &format!("derivatives/truth/sub-{sub}/ses-{ses}/anat/{stem}_{desc}.nii.gz"),
            &Volume::new(
                t1c.index_axis(Axis(3), c).to_owned().into_dyn(),
                t1_grid.affine,
            )?,
            DataType::Float32,
        )?;
    }
    w.nifti(
        &format!("sub-{sub}/ses-{ses}/anat/{stem}_T1w.nii.gz"),
        &Volume::new(t1.into_dyn(), t1_grid.affine)?,
        DataType::Int16,
    )?;
    w.json(
        &format!("sub-{sub}/ses-{ses}/anat/{stem}_T1w.json"),
        &json!({"Manufacturer": "GE", "ManufacturersModelName": "cbflow-synth", "MagneticFieldStrength": 3,
                "MRAcquisitionType": "3D", "RepetitionTime": 0.0079, "EchoTime": 0.0031, "InversionTime": 0.45, "FlipAngle": 12}),
    )?;
    w.json(
        &format!("derivatives/truth/sub-{sub}/ses-{ses}/anat/{stem}_from-template_to-T1w_xfm.json"),
        &serde_json::to_value(xfm).expect("serialisable"),
    )?;

    // --- Native "head at rest" maps on a 2 mm grid covering the ASL field of view.
    let asl_grid = centred_grid(proto.asl_dims, proto.asl_voxel, brain_centre, true);
    let fine_dims = [0, 1, 2]
        .map(|a| (proto.asl_dims[a] as f64 * proto.asl_voxel[a] / 2.0).ceil() as usize + 4);
    let fine = centred_grid(fine_dims, [2.0; 3], brain_centre, false);
    let fshape = (fine_dims[0], fine_dims[1], fine_dims[2]);
    // channels: m0 (fully relaxed, with receive bias), baseline CBF·m0, effect CBF·m0
    let mut maps = Array4::<f32>::zeros((fshape.0, fshape.1, fshape.2, 3));
    let bias_centre = brain_centre;
    maps.axis_iter_mut(Axis(2))
        .into_par_iter()
        .enumerate()
        .for_each(|(k, mut plane)| {
            for i in 0..fshape.0 {
                for j in 0..fshape.1 {
                    let q = fine.voxel_to_world([i as f64, j as f64, k as f64]);
                    let v = to_tpl_voxel(q);
                    let pd = sample_linear(&pop.pd, v) as f64;
                    let bias = 1.0 + 0.08 * (q[0] - bias_centre[0]) / 100.0
                        - 0.06 * (q[2] - bias_centre[2]) / 100.0;
                    let m0 = M0_SCALE * pd * bias;
                    let sg = sample_linear(&pop.sgacc, v) as f64;
                    let base =
                        sample_linear(&pop.cbf, v) as f64 * (1.0 + (sgacc_factor - 1.0) * sg);
                    let eff = sample_linear(&pop.effect, v) as f64;
                    plane[[i, j, 0]] = m0 as f32;
                    plane[[i, j, 1]] = (base * m0) as f32;
                    plane[[i, j, 2]] = (base * eff * m0) as f32;
                }
            }
        });
    let fine_inv = fine.inverse_affine();
    let centre = asl_grid.voxel_to_world([0, 1, 2].map(|a| (proto.asl_dims[a] as f64 - 1.0) / 2.0));
    // Each ASL voxel averages its 2×2×2 subsamples at ±¼ voxel (a box PSF): prefilter the fine
    // maps once, then point-sample them for every volume.
    box_prefilter(&mut maps, [0, 1, 2].map(|a| proto.asl_voxel[a] / 4.0 / 2.0));
    let sample_asl = |head: &Matrix4<f64>| -> [Array3<f32>; 3] {
        let inv_head = head.try_inverse().expect("rigid");
        let m = fine_inv * inv_head * asl_grid.affine;
        let d = proto.asl_dims;
        let mut out = Array4::<f32>::zeros((d[0], d[1], d[2], 3));
        // planes along i, k innermost: memory order of both arrays
        out.axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each(|(i, mut plane)| {
                let mut buf = [0f64; 3];
                for j in 0..d[1] {
                    for k in 0..d[2] {
                        let v = m * Vector4::new(i as f64, j as f64, k as f64, 1.0);
                        trilinear_channels(&maps, [v[0], v[1], v[2]], &mut buf);
                        for c in 0..3 {
                            plane[[j, k, c]] = buf[c] as f32;
                        }
                    }
                }
            });
        [0, 1, 2].map(|c| out.index_axis(Axis(3), c).to_owned())
    };

    let k_signal = proto.signal_per_cbf();
    let sigma = noise.asl_sigma * M0_SCALE * PD[0];
    let rest = Matrix4::identity();
    let at_rest = sample_asl(&rest);
    let m0_relax = 1.0 - (-proto.m0_repetition_time / proto.t1_tissue).exp();
    for run in 1..=2usize {
        let during = run == 2;
        let rstem = format!("{stem}_run-{run}");
        let perf = format!("sub-{sub}/ses-{ses}/perf");
        let g = truth.global[run - 1];
        let ramp: Vec<f64> = if during {
            truth.ramp.iter().map(|r| r * truth.effect_scale).collect()
        } else {
            vec![0.0; proto.pairs]
        };
        // M0 scan, at rest (the head position the motion is measured from).
        let mut m0 = at_rest[0].mapv(|v| (v as f64 * m0_relax) as f32);
        add_noise(&mut m0, sigma, rng, 0.0);
        w.nifti(
            &format!("{perf}/{rstem}_m0scan.nii.gz"),
            &Volume::new(m0.into_dyn(), asl_grid.affine)?,
            DataType::Int16,
        )?;
        w.json(
            &format!("{perf}/{rstem}_m0scan.json"),
            &json!({"Manufacturer": "GE", "MagneticFieldStrength": 3, "MRAcquisitionType": "3D",
                    "RepetitionTimePreparation": proto.m0_repetition_time, "EchoTime": 0.0105, "FlipAngle": 111,
                    "IntendedFor": [format!("bids::{perf}/{rstem}_asl.nii.gz")]}),
        )?;
        // Motion: a random walk of the head, starting at rest.
        let mut params = [0f64; 6];
        let step = Normal::new(0.0, 1.0).expect("unit normal");
        let mut motion_rows = Vec::new();
        let n_vol = 2 * proto.pairs;
        let d = proto.asl_dims;
        let mut series = Array4::<f32>::zeros((d[0], d[1], d[2], n_vol));
        for v in 0..n_vol {
            if v > 0 {
                for p in 0..3 {
                    params[p] += noise.motion_step[0] * step.sample(rng);
                    params[p + 3] += noise.motion_step[1].to_radians() * step.sample(rng);
                }
            }
            let head = rigid_matrix(params, centre);
            motion_rows.push(params.iter().map(|x| fmt(*x, 6)).collect::<Vec<_>>());
            let maps = sample_asl(&head);
            let pair = v / 2;
            let is_label = v % 2 == 1; // control first, as aslcontext says
            let mut vol = Array3::<f32>::zeros((d[0], d[1], d[2]));
            Zip::from(&mut vol)
                .and(&maps[0])
                .and(&maps[1])
                .and(&maps[2])
                .for_each(|o, &m0v, &b, &e| {
                    let static_signal = BS_RESIDUAL * m0v as f64;
                    let dm = k_signal * g * (b as f64 + ramp[pair] * e as f64);
                    *o = (static_signal - if is_label { dm } else { 0.0 }) as f32;
                });
            add_noise(&mut vol, sigma, rng, 0.0);
            series.index_axis_mut(Axis(3), v).assign(&vol);
        }
        let mut asl = Volume::new(series.into_dyn(), asl_grid.affine)?;
        asl.info.pixdim[3] = proto.repetition_time;
        w.nifti(&format!("{perf}/{rstem}_asl.nii.gz"), &asl, DataType::Int16)?;
        let context: Vec<Vec<String>> = (0..n_vol)
            .map(|v| {
                vec![if v % 2 == 0 {
                    "control".into()
                } else {
                    "label".into()
                }]
            })
            .collect();
        w.tsv(
            &format!("{perf}/{rstem}_aslcontext.tsv"),
            &["volume_type"],
            &context,
        )?;
        let bs_times = [0.8, 2.6, 3.1, 3.45];
        w.json(
            &format!("{perf}/{rstem}_asl.json"),
            &json!({
                "Manufacturer": "GE", "ManufacturersModelName": "cbflow-synth", "MagneticFieldStrength": 3,
                "MRAcquisitionType": "3D", "PulseSequenceType": "3D spiral", "EchoTime": 0.0105, "FlipAngle": 111,
                // one readout per volume is how the simulator times its volumes; saying so keeps
                // the segmented-3D warning for data that does not
                "NumberShots": 1,
                "RepetitionTimePreparation": proto.repetition_time,
                "ArterialSpinLabelingType": "PCASL",
                "PostLabelingDelay": proto.post_labeling_delay,
                "LabelingDuration": proto.labeling_duration,
                "BackgroundSuppression": true,
                "BackgroundSuppressionNumberPulses": proto.bs_pulses,
                "BackgroundSuppressionPulseTime": &bs_times[..proto.bs_pulses.min(4) as usize],
                "M0Type": "Separate",
                "TotalAcquiredPairs": proto.pairs,
                "VascularCrushing": false,
                "AcquisitionVoxelSize": proto.asl_voxel,
                "LabelingLocationDescription": "synthetic: 9 cm below the AC-PC line",
                "LabelingOrientation": [0.0, 0.0, 1.0],
                "LabelingDistance": 90,
                "PCASLType": "balanced",
                "LabelingPulseAverageGradient": 0.6,
                "LabelingPulseMaximumGradient": 6.0,
                "LabelingPulseAverageB1": 1.4,
                "LabelingPulseDuration": 0.0005,
                "LabelingPulseFlipAngle": 20,
                "LabelingPulseInterval": 0.0012,
                "TaskName": if during { "ketamine infusion" } else { "rest before infusion" },
            }),
        )?;
        // Truth: native apparent CBF (M0-weighted, at rest), template-space CBF, motion.
        let mean_ramp = ramp.iter().sum::<f64>() / ramp.len() as f64;
        let mut native = Array3::<f32>::zeros((d[0], d[1], d[2]));
        Zip::from(&mut native)
            .and(&at_rest[0])
            .and(&at_rest[1])
            .and(&at_rest[2])
            .for_each(|o, &m0v, &b, &e| {
                *o = if m0v > 1e-3 * M0_SCALE as f32 {
                    (g * (b as f64 + mean_ramp * e as f64) / m0v as f64) as f32
                } else {
                    0.0
                };
            });
        let tdir = format!("derivatives/truth/{perf}");
        w.nifti(
            &format!("{tdir}/{rstem}_cbf.nii.gz"),
            &Volume::new(native.into_dyn(), asl_grid.affine)?,
            DataType::Float32,
        )?;
        let tpl_cbf = Zip::from(&pop.cbf)
            .and(&pop.effect)
            .and(&pop.sgacc)
            .map_collect(|&b, &e, &s| {
                let base = b as f64 * (1.0 + (sgacc_factor - 1.0) * s as f64);
                (g * base * (1.0 + e as f64 * mean_ramp)) as f32
            });
        w.nifti(
            &format!("{tdir}/{rstem}_space-{}_cbf.nii.gz", space.name),
            &Volume::new(tpl_cbf.into_dyn(), space.grid.affine)?,
            DataType::Float32,
        )?;
        w.tsv(
            &format!("{tdir}/{rstem}_motion.tsv"),
            &["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"],
            &motion_rows,
        )?;
        w.json(
            &format!("{tdir}/{rstem}_cbf.json"),
            &json!({"Units": "mL/100g/min", "GlobalFactor": g, "EffectScale": if during { truth.effect_scale } else { 0.0 },
                    "Ramp": ramp, "Pretreatment": truth.pretreatment, "Period": truth.period, "MotionCentre": centre,
                    "Description": "ground-truth CBF: see truth.json NativeCBFDefinition"}),
        )?;
    }
    Ok(())
}

/// Adds seeded Gaussian noise of SD `sigma` to every voxel, in a fixed order.
fn add_noise(a: &mut Array3<f32>, sigma: f64, rng: &mut ChaCha8Rng, mean: f64) {
    let n = Normal::new(mean, sigma.max(0.0)).expect("finite sd");
    for v in a.iter_mut() {
        *v += n.sample(rng) as f32;
    }
}

/// Trilinear sample of a template map at a fractional voxel index (0 outside).
fn sample_linear(data: &Array3<f32>, v: [f64; 3]) -> f32 {
    cbflow_image::sample(data.view(), v, cbflow_image::Interp::Linear)
}
