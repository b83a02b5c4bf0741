//! Differential tests: the same bundle through `runc run` and
//! `pier-runtime run` must give the same observable results (normalised).
//! Skipped (with a message) where runc is not installed.

mod common;

use std::process::{Command, Stdio};

use common::Bundle;
use serde_json::json;

fn runc() -> Option<&'static str> {
    [
        "/usr/sbin/runc",
        "/usr/bin/runc",
        "/usr/local/sbin/runc",
        "/usr/local/bin/runc",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
}

/// (stdout, exit code) of `RUNTIME --root ROOT run --bundle B ID`.
fn run_with(runtime: &str, b: &Bundle, root: &std::path::Path, id: &str) -> (String, i32) {
    b.write_config();
    let out = Command::new(runtime)
        .arg("--root")
        .arg(root)
        .args(["run", "--bundle"])
        .arg(b.path())
        .arg(id)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let _ = Command::new(runtime)
        .arg("--root")
        .arg(root)
        .args(["delete", "--force", id])
        .stderr(Stdio::null())
        .status();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// Runs `script` under both runtimes and compares the normalised output.
fn same(name: &str, b: &mut Bundle, script: &str, normalise: fn(&str) -> String) {
    let Some(runc) = runc() else {
        pier_testutil::skip(&format!(
            "runc not installed (apt-get install runc): {name}"
        ));
        return;
    };
    b.sh(script);
    let roots = tempfile::tempdir().unwrap();
    let (theirs, their_code) = run_with(runc, b, &roots.path().join("runc"), name);
    let (ours, our_code) = run_with(common::BIN, b, &roots.path().join("pier"), name);
    assert_eq!(
        (normalise(&ours), our_code),
        (normalise(&theirs), their_code),
        "{name}: pier (left) and runc (right) differ\npier:\n{ours}\nrunc:\n{theirs}"
    );
    assert!(!theirs.is_empty(), "{name}: no output");
}

fn as_is(s: &str) -> String {
    s.to_owned()
}

/// Mount points and filesystem types (ids and superblock options vary).
fn mounts(s: &str) -> String {
    let mut v: Vec<String> = s
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let f: Vec<&str> = pre.split(' ').collect();
            let fstype = post.split(' ').next()?;
            // The per-mount flags (ro, nosuid, ...), minus atime details.
            let mut flags: Vec<&str> = f
                .get(5)?
                .split(',')
                .filter(|o| !o.ends_with("atime"))
                .collect();
            flags.sort_unstable();
            Some(format!("{} {fstype} {}", f.get(4)?, flags.join(",")))
        })
        .collect();
    v.sort();
    v.join("\n")
}

#[test]
fn identity_hostname_caps_and_exit_code() {
    let mut b = Bundle::new(&[]);
    same(
        "ident",
        &mut b,
        "id; hostname; grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; exit 7",
        as_is,
    );
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 6]});
    b.config["process"]["capabilities"]["inheritable"] = json!(["CAP_KILL"]);
    same(
        "ident-user",
        &mut b,
        "id; grep -E '^Cap' /proc/self/status",
        as_is,
    );
}

#[test]
fn mount_table() {
    let mut b = Bundle::new(&[]);
    same("mounts", &mut b, "cat /proc/self/mountinfo", mounts);
}

#[test]
fn rlimits() {
    let mut b = Bundle::new(&[]);
    b.config["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512},
        {"type": "RLIMIT_NPROC", "hard": 100, "soft": 50},
        {"type": "RLIMIT_CORE", "hard": 0, "soft": 0}
    ]);
    same("ulimit", &mut b, "ulimit -a", as_is);
}

#[test]
fn seccomp_denials() {
    let mut b = Bundle::new(&[]);
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 30},
            {"names": ["chmod", "fchmodat"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}]}
        ]
    });
    same(
        "seccomp",
        &mut b,
        "mkdir /tmp/a 2>&1; touch /tmp/f; chmod 700 /tmp/f 2>&1; \
         kill -USR1 $$ 2>&1; kill -USR2 $$ 2>&1; grep Seccomp: /proc/self/status",
        as_is,
    );
}

#[test]
fn user_namespace() {
    let mut b = Bundle::new(&[]);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(b.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    same(
        "userns",
        &mut b,
        "id; cat /proc/self/uid_map /proc/self/gid_map; cat /proc/self/setgroups",
        as_is,
    );
}

/// Removes, on drop, the cgroup a run of `b` as `id` gets (a failed run
/// leaves it), in every hierarchy: found by the runtime's own placement,
/// which agrees with runc's (a relative path under the caller's own cgroup
/// of each hierarchy, so a nested memory cgroup is found too).
struct CgroupDirs(pier_runtime::cgroups::CgroupState);

impl CgroupDirs {
    fn new(b: &Bundle, id: &str) -> CgroupDirs {
        let spec: oci_spec::runtime::Spec = serde_json::from_value(b.config.clone()).unwrap();
        let (st, _) = pier_runtime::cgroups::plan(&spec, id).unwrap();
        CgroupDirs(st)
    }
}

impl Drop for CgroupDirs {
    fn drop(&mut self) {
        if let Err(e) = pier_runtime::cgroups::remove(&self.0) {
            eprintln!("cleanup: {e}");
        }
    }
}

/// Bundle with runc spec's `/sys/fs/cgroup` mount and a memory limit.
fn cgroup_bundle() -> Bundle {
    let mut b = Bundle::new(&[]);
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(common::cgroup_mount());
    b.config["linux"]["resources"] = json!({"memory": {"limit": 67108864}});
    b
}

/// mountinfo lines reduced to "mount-point options".
fn cgroup_mounts(s: &str) -> String {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort_unstable();
    v.join("\n")
}

#[test]
fn cgroup_mount_matches_runc() {
    let id = format!("cgmount-{}", std::process::id());
    let mut b = cgroup_bundle();
    let _dirs = CgroupDirs::new(&b, &id);
    same(
        &id,
        &mut b,
        "ls /sys/fs/cgroup; cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
         grep cgroup /proc/self/mountinfo | awk '{print $5, $6}'; \
         echo 1000000 > /sys/fs/cgroup/memory/memory.limit_in_bytes && echo WRITABLE; \
         cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
        cgroup_mounts,
    );
}

#[test]
fn cgroup_mount_with_cgroup_namespace_matches_runc() {
    let id = format!("cgmount-ns-{}", std::process::id());
    let mut b = cgroup_bundle();
    let _dirs = CgroupDirs::new(&b, &id);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "cgroup"}));
    same(
        &id,
        &mut b,
        "ls /sys/fs/cgroup; cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
         grep cgroup /proc/self/mountinfo | awk '{print $5, $6}'; \
         echo 1000000 > /sys/fs/cgroup/memory/memory.limit_in_bytes && echo WRITABLE; \
         cat /proc/self/cgroup",
        cgroup_mounts,
    );
}
