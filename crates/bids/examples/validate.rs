//! Prints the validation report of a BIDS dataset: `cargo run -p cbflow-bids --example validate -- DIR`.

fn main() {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: validate BIDS_DIR");
        std::process::exit(2);
    };
    match cbflow_bids::validate(std::path::Path::new(&dir)) {
        Ok(report) => {
            println!("{report}");
            std::process::exit(i32::from(report.has_errors()));
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
