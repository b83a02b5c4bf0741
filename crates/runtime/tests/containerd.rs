//! containerd drives pier-runtime: `ctr run --runc-binary pier-runtime`
//! through scripts/containerd-pier-runtime.sh (a private containerd, a
//! busybox OCI image built on the fly). Skipped where containerd is not
//! installed. It also runs `ctr task exec` in a running task.

use std::path::Path;
use std::process::Command;

#[test]
fn ctr_run_uses_pier_runtime_and_returns_the_exit_code() {
    if !["/usr/bin/containerd", "/usr/local/bin/containerd"]
        .iter()
        .any(|p| Path::new(p).exists())
    {
        pier_testutil::skip("containerd not installed (apt-get install containerd)");
        return;
    }
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/containerd-pier-runtime.sh");
    let out = Command::new("sh")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_pier-runtime"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("hello from root pid 1\nexit code: 3\n"),
        "{stdout}"
    );
    // `ctr task exec` goes through `pier-runtime exec --process --detach`.
    assert!(stdout.contains("exec exit code: 5\n"), "{stdout}");
}
