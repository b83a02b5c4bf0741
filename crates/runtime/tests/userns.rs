//! User namespaces: root inside maps to an unprivileged uid on the host.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{check, Bundle};
use serde_json::json;

const HOST_ID: u32 = 200_000;

fn chown_tree(p: &Path, id: u32) {
    std::os::unix::fs::lchown(p, Some(id), Some(id)).unwrap();
    if fs::symlink_metadata(p).unwrap().is_dir() {
        for e in fs::read_dir(p).unwrap() {
            chown_tree(&e.unwrap().path(), id);
        }
    }
}

fn userns_bundle(args: &[&str]) -> Bundle {
    let mut b = Bundle::new(args);
    fs::set_permissions(b.path(), fs::Permissions::from_mode(0o755)).unwrap();
    chown_tree(&b.rootfs(), HOST_ID);
    let shared = b.path().join("shared");
    fs::create_dir(&shared).unwrap();
    std::os::unix::fs::chown(&shared, Some(HOST_ID), Some(HOST_ID)).unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/shared", "type": "bind", "source": shared, "options": ["rbind"]
    }));
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] =
        json!([{"containerID": 0, "hostID": HOST_ID, "size": 65536}]);
    b.config["linux"]["gidMappings"] =
        json!([{"containerID": 0, "hostID": HOST_ID, "size": 65536}]);
    b
}

#[test]
fn root_inside_is_the_mapped_uid_outside() {
    let mut b = userns_bundle(&[]);
    b.sh("id; cat /proc/self/uid_map; touch /shared/by-root; hostname");
    let out = b.run_ok("userns");
    assert_eq!(
        out,
        format!("uid=0(root) gid=0(root)\n         0     {HOST_ID}      65536\npier-test\n")
    );
    let md = fs::metadata(b.path().join("shared/by-root")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((md.uid(), md.gid()), (HOST_ID, HOST_ID));
}

#[test]
fn host_sees_the_mapped_uid_and_exec_joins_the_user_namespace() {
    let mut b = userns_bundle(&["sleep", "1000"]);
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.run_detached("usleep");
    let state: serde_json::Value =
        serde_json::from_slice(&b.cmd(&["state", "usleep"]).output().unwrap().stdout).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let want = HOST_ID + 1000;
    assert_eq!(uid_line, format!("Uid:\t{want}\t{want}\t{want}\t{want}"));
    let out = b
        .cmd(&[
            "exec",
            "usleep",
            "sh",
            "-c",
            "id; readlink /proc/self/ns/user; readlink /proc/1/ns/user",
        ])
        .output()
        .unwrap();
    let out = check(&out);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "uid=1000 gid=1000", "{out}");
    assert_eq!(lines[1], lines[2], "{out}");
}

#[test]
fn user_namespace_without_mappings_is_refused() {
    let mut b = Bundle::new(&["true"]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    let out = b.run("nomaps");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("uidMappings"));
}

#[test]
fn time_namespace_offsets() {
    let mut b = Bundle::new(&[]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    b.config["linux"]["timeOffsets"] = json!({"boottime": {"secs": 86400000}});
    b.sh("cut -d. -f1 /proc/uptime; readlink /proc/self/ns/time");
    let out = b.run_ok("timens");
    let mut lines = out.lines();
    let uptime: u64 = lines.next().unwrap().parse().unwrap();
    assert!(uptime >= 86_400_000, "{out}");
    let host_ns = fs::read_link("/proc/self/ns/time").unwrap();
    assert_ne!(lines.next().unwrap(), host_ns.to_str().unwrap(), "{out}");
}
