//! The typed ASL metadata: labelling type, M0 type and the sidecar's fields.

use std::fmt;

use serde_json::{Map, Value};

use crate::Issue;

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
