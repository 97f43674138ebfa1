//! The `hoard` binary, built inside this package so tests can start it as a
//! real process (and kill it) via `CARGO_BIN_EXE_hoard-test-host`. Built
//! with hoard's `failpoints` feature: a test may set `FAILPOINTS` (see the
//! `fail` crate) to pause or crash it at chosen places.

fn main() -> std::process::ExitCode {
    let _failpoints = fail::FailScenario::setup();
    hoard::cli::main()
}
