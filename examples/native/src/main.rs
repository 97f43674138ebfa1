fn main() -> std::process::ExitCode {
    hokm_native::main()
}
