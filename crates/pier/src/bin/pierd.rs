fn main() {
    std::process::exit(pier_engine::daemon::main())
}
