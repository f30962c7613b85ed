//! Print `describe` for each file given on the command line (what `cbflow inspect` shows).
fn main() -> std::process::ExitCode {
    let mut ok = true;
    for arg in std::env::args_os().skip(1) {
        match cbflow_image::describe(std::path::Path::new(&arg)) {
            Ok(d) => println!("{d}"),
            Err(e) => {
                eprintln!("error: {e}");
                ok = false;
            }
        }
    }
    if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
