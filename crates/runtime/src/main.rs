fn main() {
    std::process::exit(pier_runtime::cli::main())
}
