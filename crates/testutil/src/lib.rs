//! Test support shared by pier's crates: busybox root filesystems (from
//! Debian's busybox-static) as directories and tarballs, and isolated pier
//! environments ([`PierEnv`]) that clean up after themselves.

pub mod dockerd;
pub mod env;
pub mod net;
pub mod oci_layout;
pub mod registry;
pub mod rootfs;
pub mod terminal;

pub use env::PierEnv;
pub use oci_layout::{busybox_layer, write_oci_layout, LayerFile, LayoutImage};
pub use registry::DockerRegistry;
pub use rootfs::{busybox, write_busybox_rootfs, write_busybox_tar};

/// Skips a test whose peer (docker, skopeo, containerd, runc...) is missing
/// or cannot run, with the reason. Under CI (`CI` set) it fails instead:
/// .ci/run installs every peer, and a skipped test there checks nothing.
pub fn skip(reason: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{reason}; CI installs every peer (.ci/run), so this is a failure there");
    }
    eprintln!("SKIPPED: {reason}");
}

/// Runs `cmd`, panics with the command line and its stderr unless it exits
/// 0, and returns its output.
pub fn run_ok(cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
