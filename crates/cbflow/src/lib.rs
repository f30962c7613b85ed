//! cbflow command line
use std::ffi::OsString;
use std::process::ExitCode;

/// Entry point of the binary.
pub fn run(_args: impl IntoIterator<Item = OsString>) -> ExitCode {
    ExitCode::SUCCESS
}
