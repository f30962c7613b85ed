//! One session: the 3D pCASL forward model per volume, with motion, noise and the truth written.

use cbflow_image::{DataType, Grid, Volume};
use nalgebra::{Matrix4, Vector4};
use ndarray::{Array3, Array4, Axis, Zip};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;
use serde_json::json;

use super::model::{BS_RESIDUAL, M0_SCALE, PD, Population, SessionTruth};
use crate::deform::{SubjectTransform, rigid_matrix};
use crate::io::{Writer, fmt};
use crate::sample::{box_prefilter, trilinear_channels};
use crate::space::Space;
use crate::{Error, Result, SynthSpec};

#[allow(clippy::too_many_lines)]
pub(super) fn simulate_session(
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
    let sigma_t1 = noise.t1w_sigma * space.contrast.wm as f64;
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
                for j in 0..d[1] {
                    for k in 0..d[2] {
                        let v = m * Vector4::new(i as f64, j as f64, k as f64, 1.0);
                        let buf: [f64; 3] = trilinear_channels(&maps, [v[0], v[1], v[2]]);
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
pub(super) fn add_noise(a: &mut Array3<f32>, sigma: f64, rng: &mut ChaCha8Rng, mean: f64) {
    let n = Normal::new(mean, sigma.max(0.0)).expect("finite sd");
    for v in a.iter_mut() {
        *v += n.sample(rng) as f32;
    }
}

/// Trilinear sample of a template map at a fractional voxel index (0 outside).
pub(super) fn sample_linear(data: &Array3<f32>, v: [f64; 3]) -> f32 {
    cbflow_image::sample(data.view(), v, cbflow_image::Interp::Linear)
}

/// An axis-aligned grid of `dims` voxels of size `vs` centred on world point `centre`;
/// `flip_x` stores it LAS (negative x step), as many scanners' NIfTI conversions do.
pub(super) fn centred_grid(dims: [usize; 3], vs: [f64; 3], centre: [f64; 3], flip_x: bool) -> Grid {
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
