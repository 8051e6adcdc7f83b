//! The `volley` binary: everything lives in the library (`volley::cli`).

fn main() -> std::process::ExitCode {
    volley::cli::main()
}
