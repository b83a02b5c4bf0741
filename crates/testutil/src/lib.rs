//! Test support shared by pier's crates: busybox root filesystems (from
//! Debian's busybox-static) as directories and tarballs, and isolated pier
//! environments ([`PierEnv`]) that clean up after themselves.

pub mod env;
pub mod rootfs;

pub use env::PierEnv;
pub use rootfs::{busybox, write_busybox_rootfs, write_busybox_tar};
