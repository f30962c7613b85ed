//! Typed ASL metadata validated by the BIDS rules for arterial spin labelling, the
//! `aslcontext.tsv` volume types, and discovery of ASL runs with their M0 scans.
//!
//! The rules follow the BIDS specification, section "Arterial Spin Labeling perfusion data"
//! (modality-specific files, MRI), as encoded in the BIDS schema (`rules/sidecars/asl.yaml` and
//! `rules/sidecars/asl_validation.yaml`): REQUIRED fields missing are errors, RECOMMENDED ones
//! warnings.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::{BidsFile, Entities, Error, Issue, Layout, Query, Result, Severity, Table};

/// `ArterialSpinLabelingType`: how the blood was labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AslType {
    /// Pseudo-continuous ASL (`"PCASL"`).
    Pcasl,
    /// Continuous ASL (`"CASL"`).
    Casl,
    /// Pulsed ASL (`"PASL"`).
    Pasl,
}

impl AslType {
    /// The BIDS value (`"PCASL"`, `"CASL"`, `"PASL"`).
    pub fn as_str(self) -> &'static str {
        match self {
            AslType::Pcasl => "PCASL",
            AslType::Casl => "CASL",
            AslType::Pasl => "PASL",
        }
    }

    /// True for CASL and PCASL (the labelling has a duration, `LabelingDuration`).
    pub fn is_continuous(self) -> bool {
        matches!(self, AslType::Pcasl | AslType::Casl)
    }
}

impl fmt::Display for AslType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `M0Type`: where the equilibrium magnetisation for calibration comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum M0Type {
    /// A separate `_m0scan.nii[.gz]` exists for this run.
    Separate,
    /// M0 volumes are inside the ASL time series (`m0scan` rows in `aslcontext.tsv`).
    Included,
    /// A single whole-brain M0 value is given in `M0Estimate` (arbitrary units of the images).
    Estimate(f64),
    /// No M0 is available; CBF cannot be quantified in absolute units from these data alone.
    Absent,
}

impl M0Type {
    /// The BIDS value (`"Separate"`, `"Included"`, `"Estimate"`, `"Absent"`).
    pub fn as_str(&self) -> &'static str {
        match self {
            M0Type::Separate => "Separate",
            M0Type::Included => "Included",
            M0Type::Estimate(_) => "Estimate",
            M0Type::Absent => "Absent",
        }
    }
}

/// The ASL metadata cbflow uses, typed and checked. Times are in seconds, angles in degrees,
/// field strength in tesla, voxel sizes in mm. Arrays given per volume follow the order of the
/// rows of `aslcontext.tsv`.
#[derive(Debug, Clone, PartialEq)]
pub struct AslMetadata {
    /// `ArterialSpinLabelingType` (REQUIRED).
    pub asl_type: AslType,
    /// `PostLabelingDelay` (REQUIRED): one value for a single-delay series, or one per volume
    /// (multi-delay or Look-Locker; `m0scan` volumes have 0). For PASL this is the inversion
    /// time TI.
    pub post_labeling_delay: Vec<f64>,
    /// `LabelingDuration` (REQUIRED for CASL/PCASL): scalar (one value) or one per volume.
    pub labeling_duration: Option<Vec<f64>>,
    /// `BackgroundSuppression` (REQUIRED).
    pub background_suppression: bool,
    /// `BackgroundSuppressionNumberPulses` (RECOMMENDED when background suppression is on).
    pub background_suppression_number_pulses: Option<u32>,
    /// `BackgroundSuppressionPulseTime` (RECOMMENDED when on): pulse times after the start of
    /// labelling, s.
    pub background_suppression_pulse_time: Option<Vec<f64>>,
    /// `M0Type` (REQUIRED), with `M0Estimate` for [`M0Type::Estimate`].
    pub m0_type: M0Type,
    /// `MagneticFieldStrength` (REQUIRED), T.
    pub magnetic_field_strength: Option<f64>,
    /// `MRAcquisitionType` (REQUIRED): `"2D"` or `"3D"`.
    pub mr_acquisition_type: Option<String>,
    /// `EchoTime` (REQUIRED), s: one value or one per volume.
    pub echo_time: Option<Vec<f64>>,
    /// `FlipAngle` (RECOMMENDED; REQUIRED for Look-Locker), degrees: one value or one per volume.
    pub flip_angle: Option<Vec<f64>>,
    /// `LookLocker`.
    pub look_locker: Option<bool>,
    /// `SliceTiming` (REQUIRED for 2D): acquisition time of each slice within a volume, s.
    pub slice_timing: Option<Vec<f64>>,
    /// `BolusCutOffFlag` (REQUIRED for PASL).
    pub bolus_cut_off_flag: Option<bool>,
    /// `BolusCutOffDelayTime` (REQUIRED for PASL with a bolus cut-off), s, non-decreasing; for
    /// Q2TIPS the first and last saturation times.
    pub bolus_cut_off_delay_time: Option<Vec<f64>>,
    /// `BolusCutOffTechnique` (REQUIRED for PASL with a bolus cut-off), e.g. `Q2TIPS`.
    pub bolus_cut_off_technique: Option<String>,
    /// `LabelingEfficiency` (OPTIONAL), in (0, 1].
    pub labeling_efficiency: Option<f64>,
    /// `RepetitionTimePreparation` (REQUIRED), s: one value or one per volume.
    pub repetition_time_preparation: Option<Vec<f64>>,
    /// `TotalAcquiredPairs` (REQUIRED): label-control pairs acquired (before any averaging on
    /// the scanner, e.g. GE delta-M images).
    pub total_acquired_pairs: Option<u32>,
    /// `VascularCrushing` (RECOMMENDED).
    pub vascular_crushing: Option<bool>,
    /// `Manufacturer`.
    pub manufacturer: Option<String>,
    /// `AcquisitionVoxelSize` (RECOMMENDED), mm, before any interpolation.
    pub acquisition_voxel_size: Option<[f64; 3]>,
    /// `NumberShots` (OPTIONAL): RF excitations (segments, shots) per volume of a segmented
    /// readout (3D GRASE, 3D spiral); each takes `RepetitionTimePreparation`, so a volume lasts
    /// `NumberShots` × that.
    pub number_shots: Option<u32>,
    /// `VolumeTiming` (OPTIONAL): onset of each volume from the start of the run, s.
    pub volume_timing: Option<Vec<f64>>,
    /// Every other key of the sidecar, untouched.
    pub extra: Map<String, Value>,
    /// Warnings (RECOMMENDED fields missing, inconsistencies that do not stop processing).
    pub warnings: Vec<Issue>,
}

const TYPED_KEYS: &[&str] = &[
    "ArterialSpinLabelingType",
    "PostLabelingDelay",
    "LabelingDuration",
    "BackgroundSuppression",
    "BackgroundSuppressionNumberPulses",
    "BackgroundSuppressionPulseTime",
    "M0Type",
    "M0Estimate",
    "MagneticFieldStrength",
    "MRAcquisitionType",
    "EchoTime",
    "FlipAngle",
    "LookLocker",
    "SliceTiming",
    "BolusCutOffFlag",
    "BolusCutOffDelayTime",
    "BolusCutOffTechnique",
    "LabelingEfficiency",
    "RepetitionTimePreparation",
    "TotalAcquiredPairs",
    "VascularCrushing",
    "Manufacturer",
    "AcquisitionVoxelSize",
    "NumberShots",
    "VolumeTiming",
];

/// The plausible range of a BIDS time field, in seconds: `(field, lowest, highest, lowest
/// allowed)`. `lowest allowed` false means the lowest value itself is refused (a time that must
/// be positive). The ranges are wide screening limits for human ASL at 1.5–7 T, chosen by
/// cbflow: a value outside them is far more likely a unit error (milliseconds written where
/// BIDS asks for seconds, as dcm2niix does for some Siemens fields) than an acquisition.
pub const TIME_RULES: &[(&str, f64, f64, bool)] = &[
    ("RepetitionTimePreparation", 0.0, 30.0, false),
    ("RepetitionTime", 0.0, 30.0, false),
    ("PostLabelingDelay", 0.0, 10.0, true),
    ("LabelingDuration", 0.0, 10.0, true),
    ("BolusCutOffDelayTime", 0.0, 5.0, false),
    ("BackgroundSuppressionPulseTime", 0.0, 10.0, true),
    ("SliceTiming", 0.0, 30.0, true),
    ("EchoTime", 0.0, 1.0, false),
];

/// Why the values `v` of time field `key` are not plausible seconds ([`TIME_RULES`]), or `None`
/// when they are (or `key` has no rule). The message names the value, the expected range and,
/// when the value divided by 1000 would fit, says it looks like milliseconds.
pub fn time_problem(key: &str, v: &[f64]) -> Option<String> {
    let &(_, lo, hi, lo_ok) = TIME_RULES.iter().find(|r| r.0 == key)?;
    let fits = |x: f64| x.is_finite() && x <= hi && (x > lo || (lo_ok && x == lo));
    let (i, &x) = v.iter().enumerate().find(|(_, x)| !fits(**x))?;
    let at = if v.len() > 1 {
        format!(" at index {i}")
    } else {
        String::new()
    };
    let range = if lo_ok {
        format!("{lo} to {hi} s")
    } else {
        format!("above {lo} and at most {hi} s")
    };
    let hint = if fits(x / 1000.0) && x > hi {
        format!(
            "; it looks like milliseconds ({x} ms = {} s): BIDS times are in seconds, so write {}",
            x / 1000.0,
            x / 1000.0
        )
    } else {
        String::new()
    };
    Some(format!(
        "{x}{at} is not a plausible time in seconds (expected {range}){hint}"
    ))
}

/// Collects typed values and issues from one sidecar.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: &'a Path,
    issues: Vec<Issue>,
    type_errors: BTreeSet<String>,
}

impl<'a> Fields<'a> {
    fn error(&mut self, key: &str, msg: String) {
        self.issues.push(Issue::error(self.path, Some(key), msg));
    }
    fn warn(&mut self, key: &str, msg: String) {
        self.issues.push(Issue::warning(self.path, Some(key), msg));
    }
    fn type_error(&mut self, key: &str, expected: &str) {
        let got = self.map.get(key).map(|v| v.to_string()).unwrap_or_default();
        self.type_errors.insert(key.to_string());
        self.error(key, format!("expected {expected}, got {got}"));
    }
    fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }
    /// Presence rule: missing REQUIRED → error, missing RECOMMENDED → warning.
    fn need(&mut self, key: &str, severity: Severity, when: &str) {
        if self.has(key) {
            return;
        }
        let (level, sev) = match severity {
            Severity::Error => ("REQUIRED", Severity::Error),
            Severity::Warning => ("RECOMMENDED", Severity::Warning),
        };
        let msg = if when.is_empty() {
            format!("missing {level} field {key}")
        } else {
            format!("missing {level} field {key} ({level} when {when})")
        };
        self.issues.push(Issue {
            severity: sev,
            path: self.path.to_path_buf(),
            field: Some(key.into()),
            message: msg,
        });
    }
    fn number(&mut self, key: &str) -> Option<f64> {
        match self.map.get(key)? {
            Value::Number(n) => n.as_f64(),
            _ => {
                self.type_error(key, "a number");
                None
            }
        }
    }
    /// A number or a non-empty array of numbers.
    fn numbers(&mut self, key: &str) -> Option<Vec<f64>> {
        match self.map.get(key)? {
            Value::Number(n) => n.as_f64().map(|x| vec![x]),
            Value::Array(a) if !a.is_empty() => {
                let v: Option<Vec<f64>> = a.iter().map(Value::as_f64).collect();
                if v.is_none() {
                    self.type_error(key, "a number or an array of numbers");
                }
                v
            }
            _ => {
                self.type_error(key, "a number or a non-empty array of numbers");
                None
            }
        }
    }
    /// Plausibility of a time field: every value finite and within its [`TimeRule`] range,
    /// in seconds. A value that is plausible only after dividing by 1000 is named as
    /// milliseconds (dcm2niix writes some Siemens fields in ms).
    fn seconds(&mut self, key: &str, v: &Option<Vec<f64>>) {
        let Some(v) = v else { return };
        if let Some(msg) = time_problem(key, v) {
            self.error(key, msg);
        }
    }
    fn boolean(&mut self, key: &str) -> Option<bool> {
        match self.map.get(key)? {
            Value::Bool(b) => Some(*b),
            _ => {
                self.type_error(key, "true or false");
                None
            }
        }
    }
    fn string(&mut self, key: &str) -> Option<String> {
        match self.map.get(key)? {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.type_error(key, "a string");
                None
            }
        }
    }
    fn count(&mut self, key: &str) -> Option<u32> {
        match self.map.get(key)? {
            Value::Number(n) if n.as_u64().is_some_and(|x| x <= u32::MAX as u64) => {
                n.as_u64().map(|x| x as u32)
            }
            _ => {
                self.type_error(key, "a non-negative integer");
                None
            }
        }
    }
}

impl AslMetadata {
    /// Parses and checks the metadata of one `_asl` series (the merged sidecar, see
    /// [`Layout::metadata`]); `path` names the file in issues (relative to the dataset root).
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

fn per_volume(v: &[f64], i: usize) -> Option<f64> {
    if v.len() == 1 {
        Some(v[0])
    } else {
        v.get(i).copied()
    }
}

fn unreachable_issue(f: &mut Fields<'_>) {
    // Defensive: a required value is absent but no error was recorded (cannot happen, since
    // missing and mistyped fields both record errors). Record one rather than panic.
    if !f.issues.iter().any(Issue::is_error) {
        let p = f.path.to_path_buf();
        f.issues
            .push(Issue::error(p, None, "incomplete ASL metadata"));
    }
}

/// A volume type of `aslcontext.tsv` (`volume_type` column): the ASL kernels' own type, so that
/// what the validator accepts and what the pipeline runs are spelled by one parser.
pub use cbflow_cbf::VolumeType;

/// The contents of an `_aslcontext.tsv`: the type of each volume of the ASL series, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AslContext {
    /// The file read.
    pub path: PathBuf,
    /// One entry per volume (row).
    pub volume_types: Vec<VolumeType>,
}

impl AslContext {
    /// Reads an `_aslcontext.tsv`: a `volume_type` column is required; other columns are
    /// ignored; an unknown value is an error naming the file, the row and the value.
    pub fn read(path: &Path) -> Result<AslContext> {
        let t = Table::read_tsv(path)?;
        Self::from_table(&t)
    }

    /// Builds the context from a table already read.
    pub fn from_table(t: &Table) -> Result<AslContext> {
        let col = t.column("volume_type")?;
        let volume_types = col
            .iter()
            .enumerate()
            .map(|(i, s)| {
                VolumeType::parse(s.trim()).ok_or_else(|| Error::Table {
                    path: t.path.clone(),
                    message: format!(
                        "row {}: unknown volume_type {s:?} (expected control, label, m0scan, deltam, cbf or noRF)",
                        i + 1
                    ),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AslContext {
            path: t.path.clone(),
            volume_types,
        })
    }

    /// Number of volumes.
    pub fn len(&self) -> usize {
        self.volume_types.len()
    }

    /// True when there are no volumes.
    pub fn is_empty(&self) -> bool {
        self.volume_types.is_empty()
    }

    /// Number of volumes of type `t`.
    pub fn count(&self, t: VolumeType) -> usize {
        self.volume_types.iter().filter(|v| **v == t).count()
    }

    /// Indices (0-based) of the volumes of type `t`.
    pub fn indices(&self, t: VolumeType) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| self.volume_types[i] == t)
            .collect()
    }
}

/// One ASL series ready for processing: the image, its context, checked metadata and M0.
#[derive(Debug, Clone)]
pub struct AslRun {
    /// The `_asl.nii[.gz]`.
    pub asl: BidsFile,
    /// The run's entities (those of `asl`).
    pub entities: Entities,
    /// Path of the `_aslcontext.tsv`.
    pub context: PathBuf,
    /// The volume types read from `context`.
    pub volumes: AslContext,
    /// Typed metadata (warnings included).
    pub metadata: AslMetadata,
    /// The merged sidecar the metadata was parsed from.
    pub sidecar: Map<String, Value>,
    /// The separate M0 image (`perf/*_m0scan.nii[.gz]`), if any: the one whose sidecar's
    /// `IntendedFor` names this series, else the one with the same entities.
    pub m0scan: Option<BidsFile>,
    /// The merged sidecar of `m0scan`.
    pub m0scan_metadata: Option<Map<String, Value>>,
}

impl Layout {
    /// Every ASL series (`perf/*_asl.nii[.gz]`) of the dataset, parsed and checked. `Err` lists
    /// all issues of all files when any is an error; use [`Layout::asl_runs_with_issues`] to
    /// keep the runs that are fine.
    pub fn asl_runs(&self) -> Result<Vec<AslRun>> {
        let (runs, issues) = self.asl_runs_with_issues(&Query::new());
        if issues.iter().any(Issue::is_error) {
            Err(Error::Issues(issues))
        } else {
            Ok(runs)
        }
    }

    /// The ASL series matching `filter` (e.g. one subject) that parse without errors, and every
    /// issue (errors and warnings) found in them, per file. A series with an error is left out
    /// of the runs and its errors are in the issues.
    pub fn asl_runs_with_issues(&self, filter: &Query) -> (Vec<AslRun>, Vec<Issue>) {
        let mut runs = Vec::new();
        let mut issues = Vec::new();
        let q = Query::new().datatype("perf").suffix("asl").nifti();
        for f in self.query(&q).into_iter().filter(|f| filter.matches(f)) {
            let (run, mut iss) = self.asl_run(f);
            issues.append(&mut iss);
            if let Some(r) = run {
                runs.push(r);
            }
        }
        (runs, issues)
    }

    fn asl_run(&self, f: &BidsFile) -> (Option<AslRun>, Vec<Issue>) {
        let mut issues = Vec::new();
        let json_rel = self
            .companion(f, "asl", ".json")
            .map(|j| j.rel_path.clone());
        let report_path = json_rel.clone().unwrap_or_else(|| f.rel_path.clone());
        let sidecar = match self.metadata(f) {
            Ok(m) => m,
            Err(e) => {
                issues.push(Issue::error(&report_path, None, e.to_string()));
                return (None, issues);
            }
        };
        if self.sidecars(f).is_empty() {
            issues.push(Issue::error(
                &f.rel_path,
                None,
                "no JSON sidecar applies to this ASL series",
            ));
            return (None, issues);
        }
        let metadata = match AslMetadata::from_sidecar(&sidecar, &report_path) {
            Ok(m) => {
                issues.extend(m.warnings.iter().cloned());
                Some(m)
            }
            Err(mut e) => {
                issues.append(&mut e);
                None
            }
        };
        let ctx_file = self.companion(f, "aslcontext", ".tsv");
        let volumes = match ctx_file {
            None => {
                issues.push(Issue::error(
                    &f.rel_path,
                    None,
                    format!("missing {}_aslcontext.tsv", f.entities),
                ));
                None
            }
            Some(c) => match AslContext::read(&c.path) {
                Ok(v) => Some(v),
                Err(e) => {
                    issues.push(Issue::error(
                        &c.rel_path,
                        Some("volume_type"),
                        strip_path(&e, &c.path),
                    ));
                    None
                }
            },
        };
        let (m0scan, mut m0_issues) = self.find_m0scan(f);
        issues.append(&mut m0_issues);
        let m0scan_metadata = match &m0scan {
            Some(m) => match self.metadata(m) {
                Ok(md) => {
                    let at = self
                        .companion(m, "m0scan", ".json")
                        .map(|j| j.rel_path.clone())
                        .unwrap_or(m.rel_path.clone());
                    issues.extend(m0scan_time_issues(&md, &at));
                    Some(md)
                }
                Err(e) => {
                    issues.push(Issue::error(&m.rel_path, None, e.to_string()));
                    None
                }
            },
            None => None,
        };
        if let Some(md) = &metadata {
            match (md.m0_type, &m0scan) {
                (M0Type::Separate, None) => issues.push(Issue::error(
                    &report_path,
                    Some("M0Type"),
                    "M0Type is \"Separate\" but no perf/*_m0scan.nii[.gz] was found for this series (by IntendedFor or matching entities)",
                )),
                (M0Type::Absent, Some(m)) => issues.push(Issue::error(
                    &report_path,
                    Some("M0Type"),
                    format!("M0Type is \"Absent\" but {} is an M0 scan for this series", m.rel_path.display()),
                )),
                _ => {}
            }
            if let Some(v) = &volumes {
                issues.extend(md.check_against_context(v, &report_path));
            }
        }
        let run = match (metadata, volumes, ctx_file) {
            (Some(metadata), Some(volumes), Some(c)) if !issues.iter().any(Issue::is_error) => {
                Some(AslRun {
                    asl: f.clone(),
                    entities: f.entities.clone(),
                    context: c.path.clone(),
                    volumes,
                    metadata,
                    sidecar,
                    m0scan,
                    m0scan_metadata,
                })
            }
            _ => None,
        };
        (run, issues)
    }

    /// The separate M0 scan of ASL series `f`: among `perf/*_m0scan.nii[.gz]` of the same
    /// subject and session, the one whose `IntendedFor` names `f` (paths relative to the
    /// subject directory, or `bids::` URIs), else the one with identical entities.
    pub fn find_m0scan(&self, f: &BidsFile) -> (Option<BidsFile>, Vec<Issue>) {
        let mut issues = Vec::new();
        let mut q = Query::new().datatype("perf").suffix("m0scan").nifti();
        if let Some(s) = f.subject() {
            q = q.sub(s);
        }
        if let Some(s) = f.session() {
            q = q.ses(s);
        }
        let cands = self.query(&q);
        let target = f.rel_path.to_string_lossy().replace('\\', "/");
        let mut intended = Vec::new();
        for c in &cands {
            let md = match self.metadata(c) {
                Ok(m) => m,
                Err(e) => {
                    issues.push(Issue::error(&c.rel_path, None, e.to_string()));
                    continue;
                }
            };
            let entries: Vec<&str> = match md.get("IntendedFor") {
                Some(Value::String(s)) => vec![s.as_str()],
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            let sub_dir = format!("sub-{}/", c.subject().unwrap_or_default());
            if entries
                .iter()
                .any(|e| resolve_intended_for(e, &sub_dir) == target)
            {
                intended.push(*c);
            }
        }
        let pick = if intended.is_empty() {
            cands.iter().find(|c| c.entities == f.entities).copied()
        } else {
            let best = intended
                .iter()
                .find(|c| c.entities == f.entities)
                .copied()
                .unwrap_or(intended[0]);
            if intended.len() > 1 {
                issues.push(Issue::warning(
                    &f.rel_path,
                    Some("IntendedFor"),
                    format!(
                        "{} M0 scans name this series in IntendedFor; using {}",
                        intended.len(),
                        best.rel_path.display()
                    ),
                ));
            }
            Some(best)
        };
        (pick.cloned(), issues)
    }
}

/// The time fields of an `m0scan` sidecar checked by [`TIME_RULES`] (its
/// `RepetitionTimePreparation` sets the M0's saturation-recovery correction).
fn m0scan_time_issues(md: &Map<String, Value>, path: &Path) -> Vec<Issue> {
    let mut out = Vec::new();
    for key in ["RepetitionTimePreparation", "RepetitionTime", "EchoTime"] {
        let v: Option<Vec<f64>> = match md.get(key) {
            Some(Value::Number(n)) => n.as_f64().map(|x| vec![x]),
            Some(Value::Array(a)) => a.iter().map(Value::as_f64).collect(),
            _ => None,
        };
        if let Some(msg) = v.and_then(|v| time_problem(key, &v)) {
            out.push(Issue::error(path, Some(key), msg));
        }
    }
    out
}

/// Resolves an `IntendedFor` entry to a dataset-relative path with `/` separators.
fn resolve_intended_for(entry: &str, sub_dir: &str) -> String {
    if let Some(rest) = entry.strip_prefix("bids::") {
        rest.trim_start_matches('/').to_string()
    } else if entry.starts_with("sub-") {
        entry.to_string() // some datasets give it from the root
    } else {
        format!("{sub_dir}{}", entry.trim_start_matches("./"))
    }
}

fn strip_path(e: &Error, path: &Path) -> String {
    let s = e.to_string();
    let p = format!("{}: ", path.display());
    s.strip_prefix(&p).map(str::to_string).unwrap_or(s)
}
