//! The `hoard` binary, built inside this package so tests can start it as a
//! real process (and kill it) via `CARGO_BIN_EXE_hoard-test-host`.

fn main() -> std::process::ExitCode {
    hoard::cli::main()
}
