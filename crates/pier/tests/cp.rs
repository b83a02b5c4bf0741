//! `pier cp` end to end: files and directories both ways, into running and
//! stopped containers, ownership and modes, tar streams on stdin/stdout,
//! and symlink escapes that must stay inside the container's root. Files
//! in the container are checked on the host side of its filesystem (the
//! running container's rootfs mount, a stopped one's writable layer).

use pier_testutil::PierEnv;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn env() -> PierEnv {
    let env = PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")));
    env.import_busybox("busybox");
    env
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Starts a detached `sleep` container; returns its id.
fn running(env: &PierEnv, name: &str) -> String {
    env.ok(&["run", "-d", "--name", name, "busybox", "sleep", "1000"])
        .trim()
        .to_string()
}

/// Creates a container that never ran; returns its id.
fn created(env: &PierEnv, name: &str) -> String {
    env.ok(&["create", "--name", name, "busybox", "sleep", "1000"])
        .trim()
        .to_string()
}

fn rootfs(env: &PierEnv, id: &str) -> PathBuf {
    env.data_root.join("containers").join(id).join("rootfs")
}

fn upper(env: &PierEnv, id: &str) -> PathBuf {
    env.data_root.join("containers").join(id).join("upper")
}

/// Runs `pier ARGS` with `input` on stdin.
fn with_stdin(env: &PierEnv, args: &[&str], input: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = env
        .pier()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running pier");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// A host tree: src/a (0640, 1234:5678), src/sub/b, src/l -> a.
fn host_tree(dir: &Path) -> PathBuf {
    let src = dir.join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("a"), "alpha\n").unwrap();
    fs::set_permissions(src.join("a"), fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(src.join("a"), Some(1234), Some(5678)).unwrap();
    fs::write(src.join("sub/b"), "beta\n").unwrap();
    symlink("a", src.join("l")).unwrap();
    src
}

#[test]
fn cp_into_a_running_container_follows_docker_rules() {
    let env = env();
    let id = running(&env, "c1");
    let root = rootfs(&env, &id);
    let src = host_tree(env.dir.path());
    let s = |p: &str| src.join(p).to_string_lossy().into_owned();

    // A file into an existing directory keeps its name, mode and owner.
    env.ok(&["cp", &s("a"), "c1:/tmp"]);
    let md = fs::symlink_metadata(root.join("tmp/a")).unwrap();
    assert_eq!(fs::read_to_string(root.join("tmp/a")).unwrap(), "alpha\n");
    assert_eq!(md.mode() & 0o7777, 0o640);
    // A file to a new name.
    env.ok(&["cp", &s("a"), "c1:/tmp/renamed"]);
    assert_eq!(
        fs::read_to_string(root.join("tmp/renamed")).unwrap(),
        "alpha\n"
    );
    // -a: the source's owner.
    env.ok(&["cp", "-a", &s("a"), "c1:/root/"]);
    let md = fs::symlink_metadata(root.join("root/a")).unwrap();
    assert_eq!((md.uid(), md.gid()), (1234, 5678));
    // A directory into an existing directory; symlinks stay links.
    env.ok(&["cp", &s(""), "c1:/home"]);
    assert_eq!(
        fs::read_to_string(root.join("home/src/sub/b")).unwrap(),
        "beta\n"
    );
    assert_eq!(
        fs::read_link(root.join("home/src/l")).unwrap(),
        Path::new("a")
    );
    // A directory to a new name, and a directory's content (`/.`).
    env.ok(&["cp", &s(""), "c1:/newdir"]);
    assert!(root.join("newdir/sub/b").is_file());
    env.ok(&["cp", &format!("{}/.", s("sub")), "c1:/var"]);
    assert!(root.join("var/b").is_file(), "/. copies the content");
    assert!(!root.join("var/sub").exists());

    // Errors as docker.
    let out = env.run(&["cp", &s("a"), "c1:/nope/deeper/x"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "Error response from daemon: Could not find the file /nope/deeper in container c1"
        ),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["cp", &s("sub"), "c1:/tmp/a"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("cannot copy directory"),
        "{}",
        stderr(&out)
    );
    // A file on the way: dockerd's words, both ways.
    let out = env.run(&["cp", &s("a"), "c1:/etc/passwd/x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Error response from daemon: extraction point is not a directory"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["cp", "c1:/etc/passwd/x", &s("x")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("lstat /etc/passwd/x: not a directory"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["cp", &s("a"), &s("b")]);
    assert!(stderr(&out).contains("must specify at least one container source"));
    // A read-only root filesystem is refused (as docker), reading works.
    env.ok(&[
        "run",
        "-d",
        "--read-only",
        "--name",
        "ro",
        "busybox",
        "sleep",
        "1000",
    ]);
    let out = env.run(&["cp", &s("a"), "ro:/tmp/"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("container rootfs is marked read-only"),
        "{}",
        stderr(&out)
    );
    env.ok(&["cp", "ro:/etc/passwd", &s("ro-passwd")]);
    // -a into a container with a user: that user owns the files (as
    // docker); without -a the archive's owners stay.
    let uid = env
        .ok(&[
            "run", "-d", "--user", "nobody", "--name", "u1", "busybox", "sleep", "1000",
        ])
        .trim()
        .to_string();
    env.ok(&["cp", "-a", &s("a"), "u1:/tmp/fa"]);
    env.ok(&["cp", &s("a"), "u1:/tmp/fp"]);
    let md = fs::metadata(rootfs(&env, &uid).join("tmp/fa")).unwrap();
    assert_eq!((md.uid(), md.gid()), (65534, 65534));
    let md = fs::metadata(rootfs(&env, &uid).join("tmp/fp")).unwrap();
    assert_eq!((md.uid(), md.gid()), (1234, 5678));
    env.ok(&["rm", "-f", "c1", "ro", "u1"]);
}

#[test]
fn cp_out_of_containers_running_and_stopped() {
    let env = env();
    let id = running(&env, "c1");
    let host = env.dir.path().join("out");
    fs::create_dir(&host).unwrap();
    let h = |p: &str| host.join(p).to_string_lossy().into_owned();

    // A file into a directory, and to a new name.
    env.ok(&["cp", "c1:/etc/passwd", &h("")]);
    assert!(fs::read_to_string(host.join("passwd"))
        .unwrap()
        .starts_with("root:x:0:0:"));
    env.ok(&["cp", "c1:/etc/group", &h("grp")]);
    assert!(fs::read_to_string(host.join("grp"))
        .unwrap()
        .contains("nogroup"));
    // Files the running container has mounted (as docker shows them).
    env.ok(&["cp", "c1:/etc/hostname", &h("hostname")]);
    assert_eq!(
        fs::read_to_string(host.join("hostname")).unwrap(),
        format!("{}\n", &id[..12])
    );
    // A directory, its content, and a new name.
    env.ok(&["cp", "c1:/etc", &h("")]);
    assert!(host.join("etc/passwd").is_file());
    env.ok(&["cp", "c1:/etc", &h("etc2")]);
    assert!(host.join("etc2/group").is_file());
    fs::create_dir(host.join("content")).unwrap();
    env.ok(&["cp", "c1:/etc/.", &h("content")]);
    assert!(host.join("content/passwd").is_file());
    assert!(!host.join("content/etc").exists());
    // A symlink is copied as a link; -L copies what it points to.
    env.ok(&["cp", "c1:/bin/sh", &h("sh-link")]);
    assert!(fs::symlink_metadata(host.join("sh-link"))
        .unwrap()
        .file_type()
        .is_symlink());
    env.ok(&["cp", "-L", "c1:/bin/sh", &h("sh-file")]);
    let md = fs::symlink_metadata(host.join("sh-file")).unwrap();
    assert!(md.is_file() && md.len() > 100_000, "{md:?}");

    // Ownership: files copied out belong to the caller, with -a too (as
    // docker: its client never chowns on the host).
    fs::write(env.dir.path().join("owned"), "o").unwrap();
    std::os::unix::fs::chown(env.dir.path().join("owned"), Some(4321), Some(4321)).unwrap();
    env.ok(&[
        "cp",
        "-a",
        env.dir.path().join("owned").to_str().unwrap(),
        "c1:/tmp/",
    ]);
    env.ok(&["cp", "c1:/tmp/owned", &h("plain")]);
    assert_eq!(fs::metadata(host.join("plain")).unwrap().uid(), 0);
    env.ok(&["cp", "-a", "c1:/tmp/owned", &h("kept")]);
    assert_eq!(fs::metadata(host.join("kept")).unwrap().uid(), 0);
    // In the container the owner was kept.
    let md = fs::metadata(rootfs(&env, &id).join("tmp/owned")).unwrap();
    assert_eq!((md.uid(), md.gid()), (4321, 4321));
    // The whole root, named as docker names it (absolute entries).
    fs::create_dir(host.join("all")).unwrap();
    env.ok(&["cp", "c1:/", &h("all/rootcopy")]);
    assert!(host.join("all/rootcopy/etc/passwd").is_file());
    assert!(host.join("all/rootcopy/tmp/owned").is_file());

    let out = env.run(&["cp", "c1:/nope", &h("x")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .contains("Error response from daemon: Could not find the file /nope in container c1"),
        "{}",
        stderr(&out)
    );

    // Stopped: what was written while running is still there; a created
    // container that never ran gets files into its writable layer.
    env.ok(&["rm", "-f", "c1"]);
    let cid = created(&env, "c2");
    env.ok(&[
        "cp",
        env.dir.path().join("owned").to_str().unwrap(),
        "c2:/tmp/",
    ]);
    assert_eq!(
        fs::read_to_string(upper(&env, &cid).join("tmp/owned")).unwrap(),
        "o"
    );
    env.ok(&["cp", "c2:/tmp/owned", &h("from-stopped")]);
    assert_eq!(fs::read_to_string(host.join("from-stopped")).unwrap(), "o");
    env.ok(&["cp", "c2:/etc/passwd", &h("passwd-stopped")]);
    assert!(host.join("passwd-stopped").is_file());
    // The temporary mount goes once the archive has been streamed (pierd
    // detaches it after the last byte, which the client may have read a
    // moment before).
    let left = |cid: &str| {
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(&format!("containers/{cid}/cp-"))
    };
    let mut tries = 0;
    while left(&cid) && tries < 100 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        tries += 1;
    }
    assert!(!left(&cid), "a cp mount was left behind");
    // The container still starts and sees the file.
    env.ok(&["start", "c2"]);
    assert_eq!(
        fs::read_to_string(rootfs(&env, &cid).join("tmp/owned")).unwrap(),
        "o"
    );
    env.ok(&["rm", "-f", "c2"]);
}

#[test]
fn cp_streams_tar_on_stdin_and_stdout() {
    let env = env();
    let id = running(&env, "c1");
    // `-` as destination: a tar of the path, entries named after it.
    let out = env.pier().args(["cp", "c1:/etc", "-"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut a = tar::Archive::new(&out.stdout[..]);
    let names: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&"etc/passwd".to_string()), "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("etc")), "{names:?}");

    // `-` as source: a tar extracted into the directory.
    let mut buf = Vec::new();
    {
        let mut b = tar::Builder::new(&mut buf);
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o600);
        h.set_uid(77);
        h.set_gid(88);
        b.append_data(&mut h, "dir/f", &b"abc"[..]).unwrap();
        b.finish().unwrap();
    }
    let out = with_stdin(&env, &["cp", "-", "c1:/tmp"], &buf);
    assert!(out.status.success(), "{}", stderr(&out));
    let f = rootfs(&env, &id).join("tmp/dir/f");
    assert_eq!(fs::read(&f).unwrap(), b"abc");
    let md = fs::metadata(&f).unwrap();
    assert_eq!((md.mode() & 0o777, md.uid(), md.gid()), (0o600, 77, 88));
    // Only into a directory.
    let out = with_stdin(&env, &["cp", "-", "c1:/etc/passwd"], &buf);
    assert!(
        stderr(&out).contains("must be a directory"),
        "{}",
        stderr(&out)
    );
    env.ok(&["rm", "-f", "c1"]);
}

/// A tar with symlinks aimed out of the container: `/evil -> /`, `/evil2
/// -> /../../../HOSTDIR` and a file written through a link.
fn escape_tar(host_dir: &str) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut b = tar::Builder::new(&mut buf);
    let link = |b: &mut tar::Builder<&mut Vec<u8>>, name: &str, target: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, name, target).unwrap();
    };
    link(&mut b, "evil", "/");
    link(&mut b, "evil2", &format!("/../../..{host_dir}"));
    link(&mut b, "esc", host_dir);
    // The container's own copy of the host path, for `esc` to lead to.
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_size(0);
    h.set_mode(0o755);
    b.append_data(
        &mut h,
        format!("{}/", host_dir.trim_start_matches('/')),
        &b""[..],
    )
    .unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o644);
    b.append_data(&mut h, "esc/pwned", &b"pwned\n"[..]).unwrap();
    b.finish().unwrap();
    drop(b);
    buf
}

#[test]
fn cp_symlink_escapes_stay_inside_the_container() {
    let env = env();
    // A host directory the container's links aim at.
    let host_dir = env.dir.path().join("host-dir");
    fs::create_dir(&host_dir).unwrap();
    fs::write(host_dir.join("secret"), "host secret\n").unwrap();
    let hd = host_dir.to_string_lossy().into_owned();
    let out_dir = env.dir.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let payload = env.dir.path().join("payload");
    fs::write(&payload, "payload\n").unwrap();
    let p = payload.to_string_lossy().into_owned();

    let ids = [
        ("run1", running(&env, "run1")),
        ("stop1", created(&env, "stop1")),
    ];
    for (name, id) in &ids {
        let live = *name == "run1";
        let fs_root = if live {
            rootfs(&env, id)
        } else {
            upper(&env, id)
        };
        // The links, made through cp itself (a tar on stdin).
        let out = with_stdin(&env, &["cp", "-", &format!("{name}:/")], &escape_tar(&hd));
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        // The file written through `esc` landed in the container's copy of
        // the host path, not on the host.
        assert!(
            !host_dir.join("pwned").exists(),
            "{name}: wrote through a symlink onto the host"
        );
        let inside = fs_root.join(hd.trim_start_matches('/')).join("pwned");
        assert_eq!(fs::read_to_string(&inside).unwrap(), "pwned\n", "{name}");

        // A link to a path the container lacks: refused, nothing written.
        let mut buf = Vec::new();
        {
            let mut b = tar::Builder::new(&mut buf);
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, "esc2", format!("{hd}/missing"))
                .unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_size(1);
            b.append_data(&mut h, "esc2/x", &b"x"[..]).unwrap();
            b.finish().unwrap();
        }
        fs::create_dir(host_dir.join("missing")).unwrap();
        let out = with_stdin(&env, &["cp", "-", &format!("{name}:/")], &buf);
        assert_ne!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        assert_eq!(fs::read_dir(host_dir.join("missing")).unwrap().count(), 0);
        fs::remove_dir(host_dir.join("missing")).unwrap();

        // Reading through /evil2 (-> the host dir) finds the container's
        // copy of that path, which has no secret.
        let out = env.run(&[
            "cp",
            &format!("{name}:/evil2/secret"),
            out_dir.join("secret").to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("Could not find the file"),
            "{}",
            stderr(&out)
        );
        assert!(!out_dir.join("secret").exists(), "{name}: read a host file");
        // Through /evil (-> /): the container's /etc/passwd, not the host's.
        let dst = out_dir.join(format!("passwd-{name}"));
        env.ok(&[
            "cp",
            &format!("{name}:/evil/etc/passwd"),
            dst.to_str().unwrap(),
        ]);
        assert_eq!(
            fs::read_to_string(&dst).unwrap(),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
        );
        // Reading the whole /evil2/ directory gives the container's copy.
        let out = env
            .pier()
            .args(["cp", &format!("{name}:/evil2/"), "-"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let names: Vec<String> = tar::Archive::new(&out.stdout[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().any(|n| n.ends_with("/pwned")), "{names:?}");
        assert!(!names.iter().any(|n| n.ends_with("secret")), "{names:?}");

        // Writing into /evil/ (-> /) lands in the container's root.
        env.ok(&["cp", &p, &format!("{name}:/evil/")]);
        assert_eq!(
            fs::read_to_string(fs_root.join("payload")).unwrap(),
            "payload\n"
        );
        assert!(
            !Path::new("/payload").exists(),
            "{name}: wrote to the host's /"
        );
        // Writing into /evil2/ lands in the container's copy of the host dir.
        env.ok(&["cp", &p, &format!("{name}:/evil2/")]);
        assert!(
            !host_dir.join("payload").exists(),
            "{name}: wrote into the host dir"
        );
        assert!(fs_root
            .join(hd.trim_start_matches('/'))
            .join("payload")
            .is_file());
        // And to the link itself (no slash): docker follows it as well.
        env.ok(&["cp", &p, &format!("{name}:/evil2")]);
        assert!(!host_dir.join("payload").exists());
    }
    assert_eq!(
        fs::read_dir(&host_dir).unwrap().count(),
        1,
        "the host dir changed"
    );
    env.ok(&["rm", "-f", "run1", "stop1"]);
}

#[test]
fn archive_head_sends_docker_path_stat() {
    // The header Docker's own client reads: base64 JSON with Go's FileMode.
    let env = env();
    running(&env, "c1");
    let sock = env.exec_root.join("pier.sock");
    let Ok(raw) = Command::new("curl")
        .args(["-sS", "-I", "--unix-socket", sock.to_str().unwrap()])
        .arg("http://x/v1.45/containers/c1/archive?path=/etc")
        .output()
    else {
        pier_testutil::skip("curl not installed");
        return;
    };
    let raw = String::from_utf8_lossy(&raw.stdout).into_owned();
    let value = raw
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("x-docker-container-path-stat"))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no stat header in {raw}"));
    let json = Command::new("base64")
        .arg("-d")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(value.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["name"], "etc");
    // Go's os.ModeDir | 0755.
    assert_eq!(v["mode"].as_u64().unwrap(), (1u64 << 31) | 0o755);
    assert_eq!(v["linkTarget"], "");
    env.ok(&["rm", "-f", "c1"]);
}

#[test]
fn docker_cli_copies_lists_and_measures_through_pierd() {
    if !pier_testutil::dockerd::ensure(&["docker"], "docker.io") {
        pier_testutil::skip("the docker CLI is not installed (Debian docker.io)");
        return;
    }
    let env = env();
    let id = running(&env, "c1");
    let docker = |args: &[&str]| {
        let out = Command::new("docker")
            .env(
                "DOCKER_HOST",
                format!("unix://{}", env.exec_root.join("pier.sock").display()),
            )
            .env("DOCKER_CONFIG", env.dir.path().join("docker-config"))
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .args(args)
            .output()
            .expect("running docker");
        assert!(out.status.success(), "docker {args:?}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out_dir = env.dir.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let o = |p: &str| out_dir.join(p).to_string_lossy().into_owned();
    // Docker's client rebases our archive entries: a directory, its
    // content into a new directory, a file to a new name.
    docker(&["cp", "c1:/etc", &o("")]);
    assert!(out_dir.join("etc/passwd").is_file());
    docker(&["cp", "c1:/etc/.", &o("content")]);
    assert!(out_dir.join("content/passwd").is_file());
    assert!(
        !out_dir.join("passwd").exists(),
        "entries landed beside the target"
    );
    docker(&["cp", "c1:/etc/group", &o("grp")]);
    assert!(fs::read_to_string(out_dir.join("grp"))
        .unwrap()
        .contains("nogroup"));
    // And into the container.
    let src = host_tree(env.dir.path());
    docker(&["cp", src.to_str().unwrap(), "c1:/tmp/"]);
    assert!(rootfs(&env, &id).join("tmp/src/sub/b").is_file());
    docker(&["cp", &format!("{}/.", src.display()), "c1:/newdir"]);
    assert!(rootfs(&env, &id).join("newdir/sub/b").is_file());
    // top and stats read our answers.
    let top = docker(&["top", "c1"]);
    assert!(
        top.starts_with("UID") && top.contains("sleep 1000"),
        "{top}"
    );
    let stats = docker(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "c1",
    ]);
    assert_eq!(stats.trim(), "c1 1");
    env.ok(&["rm", "-f", "c1"]);
}

#[test]
fn whiteout_named_files_never_delete_host_files() {
    let env = env();
    let id = env
        .ok(&[
            "run",
            "-d",
            "--name",
            "wh",
            "busybox",
            "sh",
            "-c",
            "mkdir /d; touch /d/.wh.victim; echo k > /d/keep; sleep 1000",
        ])
        .trim()
        .to_string();
    let keep = rootfs(&env, &id).join("d/keep");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while fs::read_to_string(&keep).unwrap_or_default() != "k\n" {
        assert!(
            std::time::Instant::now() < deadline,
            "the container did not write /d/keep"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let host = env.dir.path().join("host");
    fs::create_dir(&host).unwrap();
    fs::write(host.join("victim"), "precious").unwrap();
    let out = env.run(&["cp", "wh:/d/.", host.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("skipping ./.wh.victim"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fs::read_to_string(host.join("victim")).unwrap(), "precious");
    assert_eq!(fs::read_to_string(host.join("keep")).unwrap(), "k\n");
    env.ok(&["rm", "-f", "wh"]);
}
