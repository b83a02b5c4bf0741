//! Compiles src/init.rs alone into a static executable (crt-static, panic
//! abort, size-optimized with LTO, stripped): the init must run in images without a
//! C library. Falls back to a dynamic one, with a warning, where the C
//! library has no static archive.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=src/init.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = std::env::var("TARGET").expect("TARGET");
    let exe = out.join("pier-init");
    let build = |static_crt: bool| {
        let mut c = Command::new(&rustc);
        c.args([
            "--edition",
            "2021",
            "--crate-type",
            "bin",
            "--crate-name",
            "pier_init",
        ])
        .args(["--target", &target])
        .args([
            "-C",
            "opt-level=z",
            "-C",
            "panic=abort",
            "-C",
            "strip=symbols",
        ])
        .args(["-C", "codegen-units=1", "-C", "lto=fat"]);
        if static_crt {
            c.args(["-C", "target-feature=+crt-static"]);
        }
        c.arg("src/init.rs").arg("-o").arg(&exe);
        c.status().map(|s| s.success()).unwrap_or(false)
    };
    if !build(true) {
        println!("cargo:warning=pier-init: static build failed; building it dynamically (install the C library's static archive, e.g. libc6-dev)");
        assert!(build(false), "compiling src/init.rs failed");
    }
}
