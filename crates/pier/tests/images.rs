//! `pier image import`, `pier images`, `pier info`, and the daemon being
//! started on demand.

use pier_testutil::PierEnv;
use std::path::Path;

fn env() -> PierEnv {
    PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")))
}

#[test]
fn first_command_starts_the_daemon() {
    let env = env();
    assert!(env.daemon_pid().is_none());
    env.ok(&["images"]);
    assert!(env.daemon_pid().is_some(), "pier did not start pierd");
    assert!(env.exec_root.join("pier.sock").exists());
}

#[test]
fn import_makes_a_listed_image() {
    let env = env();
    let id = env.import_busybox("busybox");
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "import printed {id:?}"
    );
    let tar = env.dir.path().join("busybox.tar");
    env.ok(&[
        "import",
        tar.to_str().unwrap(),
        "localhost:5000/tools/bb:v1",
    ]);

    let table = env.ok(&["images"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .split("   ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(header, ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
    let short = &id[7..19];
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert!(
        rows.iter()
            .any(|r| r[0] == "busybox" && r[1] == "latest" && r[2] == short),
        "{table}"
    );
    assert!(
        rows.iter()
            .any(|r| r[0] == "localhost:5000/tools/bb" && r[1] == "v1"),
        "{table}"
    );
    // As with `docker import`, each import is a new image (its config has
    // its own creation time), though both share the one layer.
    let ids = env.ok(&["images", "-q"]);
    assert_eq!(ids.lines().count(), 2, "{ids}");
    assert!(ids.lines().any(|l| l == short), "{ids}");
}

#[test]
fn import_of_a_corrupt_tarball_fails_cleanly() {
    let env = env();
    let bad = env.dir.path().join("bad.tar.gz");
    std::fs::write(&bad, b"\x1f\x8b\x08\x00garbage that is not gzip").unwrap();
    let out = env.run(&["image", "import", bad.to_str().unwrap(), "broken"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(!out.stderr.is_empty());
    assert_eq!(env.ok(&["images", "-q"]), "");

    let out = env.run(&["image", "import", "/no/such/file.tar", "x"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/file.tar"));
}

#[test]
fn info_reports_versions_roots_and_cgroup_mode() {
    let env = env();
    let info = env.ok(&["info"]);
    let data_root = format!("Data Root: {}", env.data_root.display());
    let exec_root = format!("Exec Root: {}", env.exec_root.display());
    assert!(info.contains(&data_root), "{info}");
    assert!(info.contains(&exec_root), "{info}");
    assert!(
        info.contains(&format!("Server Version: {}", env!("CARGO_PKG_VERSION"))),
        "{info}"
    );
    let mode = info
        .lines()
        .find(|l| l.contains("Cgroup Version:"))
        .unwrap();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let unified = mountinfo
        .lines()
        .any(|l| l.contains(" /sys/fs/cgroup ") && l.contains(" - cgroup2 "));
    let want = if unified { "2 (unified)" } else { "1 (" };
    assert!(mode.contains(want), "{mode}");
    assert_eq!(
        env.ok(&["system", "info"]).lines().count(),
        info.lines().count()
    );
}

#[test]
fn docker_api_answers_on_the_socket() {
    let env = env();
    env.ok(&["version"]);
    // Raw HTTP over the unix socket, as any Docker API client speaks it.
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(env.exec_root.join("pier.sock")).unwrap();
    s.write_all(b"GET /v1.41/_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(
        resp.to_ascii_lowercase().contains("api-version: 1.56"),
        "{resp}"
    );
    assert!(resp.ends_with("OK"), "{resp}");

    let mut s = std::os::unix::net::UnixStream::connect(env.exec_root.join("pier.sock")).unwrap();
    s.write_all(b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{bad}").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(resp.contains("\"message\""), "{resp}");
}
