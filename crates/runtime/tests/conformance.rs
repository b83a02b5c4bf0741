//! Regression tests for what the OCI runtime-tools validation suite found
//! (scripts/conformance.sh, docs/conformance.md), each checked from inside
//! a real container rather than through the suite.

use std::fs;
use std::os::unix::fs::MetadataExt;

use serde_json::json;

mod common;

use common::host_mount::HostMount;
use common::Bundle;

/// Inside the container: bind the root recursively at /t, then mount
/// /src on /m and report whether the new mount also shows up under /t.
const PROPAGATION_PROBE: &str = "mkdir -p /t /m /src && touch /src/f && \
     mount -o rbind / /t && mount -o bind /src /m && \
     if [ -e /t/m/f ]; then echo exposed; else echo hidden; fi";

fn propagation_bundle(propagation: &str, script: &str) -> Bundle {
    let mut b = Bundle::new(&[]);
    b.sh(script);
    let caps = json!(["CAP_SYS_ADMIN", "CAP_MKNOD", "CAP_DAC_OVERRIDE"]);
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set] = caps.clone();
    }
    b.config["root"]["readonly"] = json!(false);
    b.config["linux"]["rootfsPropagation"] = json!(propagation);
    b
}

#[test]
fn shared_rootfs_propagation_reaches_binds_of_the_root() {
    // Before the fix pivot_root failed with EINVAL: "/" made shared left
    // the rootfs's parent mount shared.
    let mut b = propagation_bundle("shared", PROPAGATION_PROBE);
    let out = b.run_ok("prop-shared");
    assert_eq!(out.trim(), "exposed");
}

#[test]
fn shared_propagation_with_the_rootfs_on_its_own_mount() {
    // pier's overlay rootfs is a mount point itself: the bind of the rootfs
    // then sits on that mount, which rshared makes shared and which must be
    // made private for pivot_root, not the mount above it.
    let mut b = propagation_bundle("rshared", PROPAGATION_PROBE);
    let rootfs = b.rootfs();
    let _tmpfs = HostMount::tmpfs(&rootfs).unwrap();
    pier_testutil::write_busybox_rootfs(&rootfs).unwrap();
    let out = b.run_ok("prop-shared-mnt");
    assert_eq!(out.trim(), "exposed");
}

#[test]
fn private_and_slave_rootfs_propagation_do_not() {
    for p in ["private", "slave", "rprivate"] {
        let mut b = propagation_bundle(p, PROPAGATION_PROBE);
        let out = b.run_ok(&format!("prop-{p}"));
        assert_eq!(out.trim(), "hidden", "rootfsPropagation {p}");
    }
}

#[test]
fn unbindable_rootfs_propagation_refuses_binds_of_the_root() {
    // Before the fix the runtime itself failed to bind the rootfs.
    let mut b = propagation_bundle(
        "unbindable",
        "mkdir -p /t && if mount -o bind / /t 2>/dev/null; then echo bound; else echo refused; fi",
    );
    let out = b.run_ok("prop-unbindable");
    assert_eq!(out.trim(), "refused");
}

#[test]
fn without_a_mount_namespace_the_init_chroots_and_delete_unmounts() {
    let mut b = Bundle::new(&[]);
    // The container reports its mount namespace and its root, then waits.
    b.sh("readlink /proc/self/ns/mnt > /dev/shm/ns; ls -di / > /dev/shm/root; sleep 100");
    let namespaces = b.config["linux"]["namespaces"].as_array().unwrap().clone();
    b.config["linux"]["namespaces"] = json!(namespaces
        .into_iter()
        .filter(|n| n["type"] != "mount")
        .collect::<Vec<_>>());
    let rootfs = b.rootfs().canonicalize().unwrap();
    b.run_detached("no-mntns");

    let shm = rootfs.join("dev/shm");
    let mut ns = String::new();
    for _ in 0..100 {
        ns = fs::read_to_string(shm.join("root")).unwrap_or_default();
        if !ns.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!ns.is_empty(), "the container never wrote /dev/shm/root");
    let own_ns = fs::read_link("/proc/self/ns/mnt").unwrap();
    let container_ns = fs::read_to_string(shm.join("ns")).unwrap();
    assert_eq!(container_ns.trim(), own_ns.to_str().unwrap());
    // Its / is the rootfs directory (a chroot, the same inode).
    let root_ino: u64 = ns.split_whitespace().next().unwrap().parse().unwrap();
    assert_eq!(root_ino, fs::metadata(&rootfs).unwrap().ino());
    // exec lands in the same root.
    let out = b
        .cmd(&["exec", "no-mntns", "ls", "-di", "/"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let exec_root = common::check(&out);
    assert_eq!(
        exec_root.split_whitespace().next(),
        Some(root_ino.to_string().as_str())
    );
    // Its mounts live in our namespace while it runs...
    let mounts = common::host_mounts_at_or_below(&rootfs);
    for m in ["", "/proc", "/dev", "/dev/shm", "/sys"] {
        let want = format!("{}{m}", rootfs.display());
        assert!(mounts.contains(&want), "{want} not in {mounts:?}");
    }
    // ...and delete takes them away (runc 1.1.5 leaves them behind).
    let out = b.cmd(&["delete", "--force", "no-mntns"]).output().unwrap();
    common::check(&out);
    assert_eq!(
        common::host_mounts_at_or_below(&rootfs),
        Vec::<String>::new()
    );
}

#[test]
fn unknown_capability_or_rlimit_fails_create_naming_it() {
    let mut b = Bundle::new(&["true"]);
    b.config["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_TEST"]);
    let out = b.create("badcap", &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("CAP_TEST") && err.contains("config.json"),
        "{err}"
    );
    assert!(!b.state_dir_exists("badcap"));

    let mut b = Bundle::new(&["true"]);
    b.config["process"]["rlimits"] = json!([{"type": "RLIMIT_TEST", "hard": 1, "soft": 1}]);
    let out = b.create("badrlimit", &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("RLIMIT_TEST"), "{err}");
}

#[test]
fn non_recursive_private_propagation_with_a_shared_mount_above_the_rootfs() {
    // Only / turns private; the rootfs's own mount, shared on the host,
    // stays shared in the container's namespace, which pivot_root refuses
    // unless the runtime makes it private.
    let mut b = propagation_bundle("private", "echo ok");
    let rootfs = b.rootfs();
    let tmpfs = HostMount::tmpfs(&rootfs).unwrap();
    tmpfs.make_shared().unwrap();
    pier_testutil::write_busybox_rootfs(&rootfs).unwrap();
    assert_eq!(b.run_ok("prop-private-shared-mnt").trim(), "ok");
}
