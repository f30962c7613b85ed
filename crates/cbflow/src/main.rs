use std::process::ExitCode;

fn main() -> ExitCode {
    cbflow::run(std::env::args_os())
}
