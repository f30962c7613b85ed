//! The BIDS ASL rules: a sidecar to typed metadata, with every issue named.

use std::collections::BTreeSet;

use std::path::Path;

use cbflow_cbf::VolumeType;
use serde_json::{Map, Value};

use super::context::AslContext;
use super::fields::Fields;
use super::timing::{TYPED_KEYS, time_problem};
use super::types::{AslMetadata, AslType, M0Type};
use crate::{Issue, Result, Severity};

impl AslMetadata {
    /// Parses and checks the metadata of one `_asl` series (the merged sidecar, see
    /// [`Layout::metadata`](crate::Layout::metadata)); `path` names the file in issues (relative to the dataset root).
    ///
    /// Returns every problem at once: `Err` holds all issues (errors and warnings) when at least
    /// one is an error; on success the warnings are kept in [`AslMetadata::warnings`].
    ///
    /// Rules (BIDS specification, ASL section / schema `rules/sidecars/asl.yaml`):
    /// REQUIRED for all: `ArterialSpinLabelingType`, `PostLabelingDelay`,
    /// `BackgroundSuppression`, `M0Type`, `TotalAcquiredPairs`, `MagneticFieldStrength`,
    /// `MRAcquisitionType`, `EchoTime`, `RepetitionTimePreparation`; `SliceTiming` for 2D;
    /// `FlipAngle` for Look-Locker; `LabelingDuration` for (P)CASL; `BolusCutOffFlag` for PASL
    /// and, when true, `BolusCutOffDelayTime` and `BolusCutOffTechnique`; `M0Estimate` for
    /// `M0Type` Estimate. RECOMMENDED: `VascularCrushing`, `AcquisitionVoxelSize`,
    /// `LabelingOrientation`, `LabelingDistance`, `LabelingLocationDescription`, `FlipAngle`;
    /// `BackgroundSuppressionNumberPulses`/`PulseTime` when suppression is on;
    /// `VascularCrushingVENC` when crushing is on; `PCASLType`, `CASLType`, the `LabelingPulse*`
    /// fields for (P)CASL; `PASLType`, `LabelingSlabThickness` for PASL. (`SliceTiming`, which
    /// the schema lists as RECOMMENDED for 3D, is not asked for in 3D acquisitions.)
    pub fn from_sidecar(map: &Map<String, Value>, path: &Path) -> Result<AslMetadata, Vec<Issue>> {
        use Severity::{Error as E, Warning as W};
        let mut f = Fields {
            map,
            path,
            issues: Vec::new(),
            type_errors: BTreeSet::new(),
        };
        for k in [
            "ArterialSpinLabelingType",
            "PostLabelingDelay",
            "BackgroundSuppression",
            "M0Type",
            "TotalAcquiredPairs",
            "MagneticFieldStrength",
            "MRAcquisitionType",
            "EchoTime",
            "RepetitionTimePreparation",
        ] {
            f.need(k, E, "");
        }
        for k in [
            "VascularCrushing",
            "AcquisitionVoxelSize",
            "LabelingOrientation",
            "LabelingDistance",
            "LabelingLocationDescription",
        ] {
            f.need(k, W, "");
        }

        let asl_type = match f.string("ArterialSpinLabelingType").as_deref() {
            Some("PCASL") => Some(AslType::Pcasl),
            Some("CASL") => Some(AslType::Casl),
            Some("PASL") => Some(AslType::Pasl),
            Some(other) => {
                f.error(
                    "ArterialSpinLabelingType",
                    format!("{other:?} is not one of \"CASL\", \"PCASL\", \"PASL\""),
                );
                None
            }
            None => None,
        };

        let pld = f.numbers("PostLabelingDelay");
        f.seconds("PostLabelingDelay", &pld);
        let labeling_duration = f.numbers("LabelingDuration");
        f.seconds("LabelingDuration", &labeling_duration);

        let background_suppression = f.boolean("BackgroundSuppression");
        let bs_pulses = f.count("BackgroundSuppressionNumberPulses");
        let bs_times = f.numbers("BackgroundSuppressionPulseTime");
        f.seconds("BackgroundSuppressionPulseTime", &bs_times);
        if background_suppression == Some(true) {
            f.need(
                "BackgroundSuppressionNumberPulses",
                W,
                "BackgroundSuppression is true",
            );
            f.need(
                "BackgroundSuppressionPulseTime",
                W,
                "BackgroundSuppression is true",
            );
        }
        if let (Some(n), Some(t)) = (bs_pulses, &bs_times)
            && matches!(
                map.get("BackgroundSuppressionPulseTime"),
                Some(Value::Array(_))
            )
            && t.len() != n as usize
        {
            f.warn(
                "BackgroundSuppressionPulseTime",
                format!(
                    "{} pulse times but BackgroundSuppressionNumberPulses is {n}",
                    t.len()
                ),
            );
        }

        let m0_estimate = f.number("M0Estimate");
        let m0_type = match f.string("M0Type").as_deref() {
            Some("Separate") => Some(M0Type::Separate),
            Some("Included") => Some(M0Type::Included),
            Some("Absent") => Some(M0Type::Absent),
            Some("Estimate") => {
                f.need("M0Estimate", E, "M0Type is \"Estimate\"");
                match m0_estimate {
                    Some(x) if x > 0.0 && x.is_finite() => Some(M0Type::Estimate(x)),
                    Some(x) => {
                        f.error("M0Estimate", format!("must be a positive number, got {x}"));
                        None
                    }
                    None => None,
                }
            }
            Some(other) => {
                f.error(
                    "M0Type",
                    format!(
                        "{other:?} is not one of \"Separate\", \"Included\", \"Estimate\", \"Absent\""
                    ),
                );
                None
            }
            None => None,
        };
        if m0_type == Some(M0Type::Absent) && f.has("M0Estimate") {
            f.error(
                "M0Type",
                "M0Type is \"Absent\" but M0Estimate is given".into(),
            );
        }

        let magnetic_field_strength = f.number("MagneticFieldStrength");
        if let Some(b) = magnetic_field_strength
            && (b.is_nan() || b <= 0.0)
        {
            f.error(
                "MagneticFieldStrength",
                format!("must be positive, got {b}"),
            );
        }
        let mr_acquisition_type = f.string("MRAcquisitionType");
        if let Some(t) = &mr_acquisition_type
            && t != "2D"
            && t != "3D"
        {
            f.error(
                "MRAcquisitionType",
                format!("{t:?} is not \"2D\" or \"3D\""),
            );
        }
        let echo_time = f.numbers("EchoTime");
        f.seconds("EchoTime", &echo_time);
        let look_locker = f.boolean("LookLocker");
        let flip_angle = f.numbers("FlipAngle");
        if look_locker == Some(true) {
            f.need("FlipAngle", E, "LookLocker is true");
        } else {
            f.need("FlipAngle", W, "");
        }
        let slice_timing = f.numbers("SliceTiming");
        f.seconds("SliceTiming", &slice_timing);
        if mr_acquisition_type.as_deref() == Some("2D") {
            f.need("SliceTiming", E, "MRAcquisitionType is \"2D\"");
        }

        let bolus_cut_off_flag = f.boolean("BolusCutOffFlag");
        let bolus_cut_off_delay_time = f.numbers("BolusCutOffDelayTime");
        f.seconds("BolusCutOffDelayTime", &bolus_cut_off_delay_time);
        if let Some(v) = &bolus_cut_off_delay_time
            && v.windows(2).any(|w| w[1] < w[0])
        {
            f.error(
                "BolusCutOffDelayTime",
                format!("values {v:?} must be monotonically increasing"),
            );
        }
        let bolus_cut_off_technique = f.string("BolusCutOffTechnique");
        match asl_type {
            Some(t) if t.is_continuous() => {
                f.need(
                    "LabelingDuration",
                    E,
                    &format!("ArterialSpinLabelingType is \"{t}\""),
                );
                if let Some(v) = &labeling_duration
                    && v.iter().all(|x| *x == 0.0)
                {
                    f.error(
                        "LabelingDuration",
                        format!("must be above 0 s for {t} (the labelling lasts that long)"),
                    );
                }
                for k in [
                    "LabelingPulseAverageGradient",
                    "LabelingPulseMaximumGradient",
                    "LabelingPulseAverageB1",
                    "LabelingPulseDuration",
                    "LabelingPulseFlipAngle",
                    "LabelingPulseInterval",
                ] {
                    f.need(k, W, &format!("ArterialSpinLabelingType is \"{t}\""));
                }
                let k = if t == AslType::Pcasl {
                    "PCASLType"
                } else {
                    "CASLType"
                };
                f.need(k, W, &format!("ArterialSpinLabelingType is \"{t}\""));
            }
            Some(AslType::Pasl) => {
                f.need("BolusCutOffFlag", E, "ArterialSpinLabelingType is \"PASL\"");
                f.need("PASLType", W, "ArterialSpinLabelingType is \"PASL\"");
                f.need(
                    "LabelingSlabThickness",
                    W,
                    "ArterialSpinLabelingType is \"PASL\"",
                );
                if bolus_cut_off_flag == Some(true) {
                    f.need("BolusCutOffDelayTime", E, "BolusCutOffFlag is true");
                    f.need("BolusCutOffTechnique", E, "BolusCutOffFlag is true");
                }
            }
            _ => {}
        }

        let labeling_efficiency = f.number("LabelingEfficiency");
        if let Some(a) = labeling_efficiency
            && !(a > 0.0 && a <= 1.0)
        {
            f.error("LabelingEfficiency", format!("must be in (0, 1], got {a}"));
        }
        let repetition_time_preparation = f.numbers("RepetitionTimePreparation");
        f.seconds("RepetitionTimePreparation", &repetition_time_preparation);
        if let (Some(st), Some(tr)) = (&slice_timing, &repetition_time_preparation)
            && time_problem("SliceTiming", st).is_none()
            && time_problem("RepetitionTimePreparation", tr).is_none()
        {
            let last = st.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let shortest = tr.iter().copied().fold(f64::INFINITY, f64::min);
            if last >= shortest {
                f.error(
                    "SliceTiming",
                    format!(
                        "the last slice starts at {last} s, not before the end of the repetition (RepetitionTimePreparation {shortest} s): are the two in the same unit (seconds)?"
                    ),
                );
            }
        }
        let number_shots = match map.get("NumberShots") {
            None => None,
            Some(Value::Number(n)) if n.as_u64().is_some_and(|x| (1..=1024).contains(&x)) => {
                n.as_u64().map(|x| x as u32)
            }
            Some(Value::Array(a))
                if !a.is_empty()
                    && a.iter()
                        .all(|x| x.as_u64().is_some_and(|x| (1..=1024).contains(&x)))
                    && a.windows(2).all(|w| w[0] == w[1]) =>
            {
                a[0].as_u64().map(|x| x as u32)
            }
            Some(_) => {
                f.type_error(
                    "NumberShots",
                    "a whole number of shots from 1 to 1024 (or an array of one such number)",
                );
                None
            }
        };
        let segmented = map
            .get("PulseSequenceType")
            .and_then(Value::as_str)
            .is_some_and(|t| {
                let t = t.to_ascii_lowercase();
                t.contains("grase") || t.contains("spiral")
            });
        if segmented
            && mr_acquisition_type.as_deref() == Some("3D")
            && !f.has("NumberShots")
            && !f.has("VolumeTiming")
        {
            f.warn(
                "NumberShots",
                "a 3D segmented readout (PulseSequenceType) without NumberShots or VolumeTiming: volume onsets assume one shot per volume, RepetitionTimePreparation apart (give the shots per volume with the asl-cbf parameter number-shots)".into(),
            );
        }
        let volume_timing = f.numbers("VolumeTiming");
        if let Some(v) = &volume_timing
            && (v.iter().any(|x| !x.is_finite() || *x < 0.0) || v.windows(2).any(|w| w[1] <= w[0]))
        {
            f.error(
                "VolumeTiming",
                "must be finite, non-negative onsets in seconds, strictly increasing".into(),
            );
        }
        let total_acquired_pairs = f.count("TotalAcquiredPairs");
        let vascular_crushing = f.boolean("VascularCrushing");
        if vascular_crushing == Some(true) {
            f.need("VascularCrushingVENC", W, "VascularCrushing is true");
        }
        let manufacturer = f.string("Manufacturer");
        let acquisition_voxel_size = match f.numbers("AcquisitionVoxelSize") {
            Some(v) if v.len() == 3 && v.iter().all(|x| *x > 0.0) => Some([v[0], v[1], v[2]]),
            Some(_) => {
                f.type_error(
                    "AcquisitionVoxelSize",
                    "an array of 3 positive numbers (mm)",
                );
                None
            }
            None => None,
        };

        let extra: Map<String, Value> = map
            .iter()
            .filter(|(k, _)| !TYPED_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();

        if f.issues.iter().any(Issue::is_error) {
            return Err(f.issues);
        }
        let (
            Some(asl_type),
            Some(post_labeling_delay),
            Some(background_suppression),
            Some(m0_type),
        ) = (asl_type, pld, background_suppression, m0_type)
        else {
            // every None above has produced an error
            unreachable_issue(&mut f);
            return Err(f.issues);
        };
        Ok(AslMetadata {
            asl_type,
            post_labeling_delay,
            labeling_duration,
            background_suppression,
            background_suppression_number_pulses: bs_pulses,
            background_suppression_pulse_time: bs_times,
            m0_type,
            magnetic_field_strength,
            mr_acquisition_type,
            echo_time,
            flip_angle,
            look_locker,
            slice_timing,
            bolus_cut_off_flag,
            bolus_cut_off_delay_time,
            bolus_cut_off_technique,
            labeling_efficiency,
            repetition_time_preparation,
            total_acquired_pairs,
            vascular_crushing,
            manufacturer,
            acquisition_voxel_size,
            number_shots,
            volume_timing,
            extra,
            warnings: f.issues,
        })
    }

    /// True when `PostLabelingDelay` is an array with more than one distinct value.
    pub fn is_multi_pld(&self) -> bool {
        self.post_labeling_delay.windows(2).any(|w| w[0] != w[1])
    }

    /// The post-labelling delay of volume `i` (s): the scalar for every volume, or the `i`-th
    /// array entry; `None` when `i` is beyond the array.
    pub fn post_labeling_delay_at(&self, i: usize) -> Option<f64> {
        per_volume(&self.post_labeling_delay, i)
    }

    /// The labelling duration of volume `i` (s), as [`AslMetadata::post_labeling_delay_at`].
    pub fn labeling_duration_at(&self, i: usize) -> Option<f64> {
        self.labeling_duration
            .as_deref()
            .and_then(|v| per_volume(v, i))
    }

    /// Checks the arrays given per volume, and the M0 rules, against the run's
    /// `aslcontext.tsv` (schema `asl_validation.yaml`): `PostLabelingDelay`,
    /// `LabelingDuration`, `RepetitionTimePreparation` and `FlipAngle` arrays must have one
    /// value per row (error); `EchoTime` arrays and `TotalAcquiredVolumes` should (warning);
    /// `M0Type` Included needs `m0scan` rows and Absent forbids them (error); a series with no
    /// control/label, deltam or cbf volume is an error. `path` names the file in issues.
    pub fn check_against_context(&self, ctx: &AslContext, path: &Path) -> Vec<Issue> {
        let n = ctx.len();
        let mut out = Vec::new();
        let mut arr = |key: &str, v: Option<&[f64]>, sev: Severity| {
            if let Some(v) = v
                && v.len() > 1
                && v.len() != n
            {
                out.push(Issue {
                    severity: sev,
                    path: path.to_path_buf(),
                    field: Some(key.into()),
                    message: format!(
                        "{} values, but {} has {n} volumes",
                        v.len(),
                        ctx.path
                            .file_name()
                            .map(|s| s.to_string_lossy())
                            .unwrap_or_default()
                    ),
                });
            }
        };
        arr(
            "PostLabelingDelay",
            Some(&self.post_labeling_delay),
            Severity::Error,
        );
        arr(
            "LabelingDuration",
            self.labeling_duration.as_deref(),
            Severity::Error,
        );
        arr(
            "RepetitionTimePreparation",
            self.repetition_time_preparation.as_deref(),
            Severity::Error,
        );
        arr("FlipAngle", self.flip_angle.as_deref(), Severity::Error);
        arr("EchoTime", self.echo_time.as_deref(), Severity::Warning);
        if let Some(v) = &self.volume_timing
            && v.len() != n
        {
            out.push(Issue::error(
                path,
                Some("VolumeTiming"),
                format!("{} onsets, but aslcontext.tsv has {n} volumes", v.len()),
            ));
        }
        if self.asl_type.is_continuous()
            && let Some(ld) = &self.labeling_duration
            && ld.len() == n
            && let Some(i) = (0..n).find(|&i| {
                matches!(
                    ctx.volume_types[i],
                    VolumeType::Control | VolumeType::Label | VolumeType::DeltaM
                ) && ld[i] <= 0.0
            })
        {
            out.push(Issue::error(
                path,
                Some("LabelingDuration"),
                format!(
                    "{} at volume {i} ({}): a {} volume needs a labelling duration above 0 s",
                    ld[i], ctx.volume_types[i], self.asl_type
                ),
            ));
        }
        if let Some(tv) = self
            .extra
            .get("TotalAcquiredVolumes")
            .and_then(Value::as_array)
            && tv.len() != n
        {
            out.push(Issue::warning(
                path,
                Some("TotalAcquiredVolumes"),
                format!("{} values, but aslcontext has {n} volumes", tv.len()),
            ));
        }
        let n_m0 = ctx.count(VolumeType::M0Scan);
        match self.m0_type {
            M0Type::Included if n_m0 == 0 => out.push(Issue::error(
                path,
                Some("M0Type"),
                "M0Type is \"Included\" but aslcontext.tsv has no m0scan volume",
            )),
            M0Type::Absent if n_m0 > 0 => out.push(Issue::error(
                path,
                Some("M0Type"),
                format!("M0Type is \"Absent\" but aslcontext.tsv has {n_m0} m0scan volume(s)"),
            )),
            _ => {}
        }
        let (nc, nl) = (ctx.count(VolumeType::Control), ctx.count(VolumeType::Label));
        if nc + nl + ctx.count(VolumeType::DeltaM) + ctx.count(VolumeType::Cbf) == 0 {
            out.push(Issue::error(
                path,
                None,
                "aslcontext.tsv has no control, label, deltam or cbf volume",
            ));
        } else if nc != nl {
            out.push(Issue::warning(
                path,
                None,
                format!("aslcontext.tsv has {nc} control but {nl} label volumes"),
            ));
        }
        out
    }
}

pub(super) fn per_volume(v: &[f64], i: usize) -> Option<f64> {
    if v.len() == 1 {
        Some(v[0])
    } else {
        v.get(i).copied()
    }
}

pub(super) fn unreachable_issue(f: &mut Fields<'_>) {
    // Defensive: a required value is absent but no error was recorded (cannot happen, since
    // missing and mistyped fields both record errors). Record one rather than panic.
    if !f.issues.iter().any(Issue::is_error) {
        let p = f.path.to_path_buf();
        f.issues
            .push(Issue::error(p, None, "incomplete ASL metadata"));
    }
}
