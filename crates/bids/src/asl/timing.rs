//! The timing fields and their plausible ranges in seconds (one set of rules for validate and the run).

pub(super) const TYPED_KEYS: &[&str] = &[
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
