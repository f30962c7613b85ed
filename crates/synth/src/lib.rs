//! cbflow-synth
