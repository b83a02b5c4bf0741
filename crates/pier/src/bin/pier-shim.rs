fn main() {
    std::process::exit(pier_shim::main())
}
