//! The `tupper` binary: a thin layer over the library (see `tupper::cli`).

fn main() {
    std::process::exit(tupper::cli::main());
}
