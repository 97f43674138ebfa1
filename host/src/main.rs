//! The `hoard` binary; everything lives in the library's [`hoard::cli`].

fn main() -> std::process::ExitCode {
    hoard::cli::main()
}
