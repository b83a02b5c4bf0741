fn main() {
    std::process::exit(pier_cli::main())
}
