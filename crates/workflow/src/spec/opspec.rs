//! What an operation declares (input slots, outputs, resources, checks).

use super::base::{Level, Pos, Resources};

// ---------------------------------------------------------------------------------------------
// Operations. Adding one: a params struct implementing `OpSpec`, one line in `ops!`, and one
// match arm in `runner::PipelineRunner::run`.

/// An input slot of an operation.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    /// Slot name (the key under `inputs:`).
    pub name: &'static str,
    /// Whether the step must fill it.
    pub required: bool,
    /// What may fill it.
    pub kind: SlotKind,
    /// For people.
    pub doc: &'static str,
}

/// What may fill an input slot.
#[derive(Debug, Clone, Copy)]
pub enum SlotKind {
    /// A BIDS query.
    Bids,
    /// An output of another step, with one of these names.
    Output(&'static [&'static str]),
}

/// What every operation declares: its level, input slots, outputs, default resources, and a
/// check of its parameters.
pub trait OpSpec {
    /// The level its jobs run at.
    fn level(&self) -> Level;
    /// Its input slots.
    fn slots(&self) -> &'static [Slot];
    /// The outputs a step of this operation makes with these parameters.
    fn outputs(&self) -> Vec<&'static str>;
    /// Resources of one job unless the step says otherwise.
    fn default_resources(&self) -> Resources;
    /// The seed of its random draws, if it has any.
    fn seed(&self) -> Option<u64> {
        None
    }
    /// Checks parameter values the types cannot (ranges); the message names the field.
    fn check(&self) -> std::result::Result<(), String> {
        Ok(())
    }
    /// A problem of a value whose place in the file is known (a key that the types cannot
    /// check, e.g. a contrast's cell named by the design), with that place; checked before
    /// [`check`](Self::check).
    fn located_problem(&self) -> Option<(Pos, String)> {
        None
    }
}
