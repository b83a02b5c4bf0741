//! Volumes end to end (issue 8): bind mounts, named and anonymous volumes,
//! tmpfs mounts, `--volumes-from`, image VOLUME entries and the `pier volume`
//! commands, through the pier CLI, real containers and real files. Expected
//! messages and formats are docker's: each was checked against a private
//! dockerd (Debian's docker.io 20.10 daemon, docker 28.2 CLI), and the few
//! that only docker 28's daemon shows (prune of anonymous volumes only) are
//! marked so. Every test has its own PierEnv (own data root, own pierd) and
//! host directories under its temporary directory.

use pier_testutil::PierEnv;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

struct T {
    env: PierEnv,
}

/// A pier environment with busybox imported (which starts its pierd).
fn setup() -> T {
    let env = PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")));
    env.import_busybox("busybox");
    T { env }
}

impl Drop for T {
    fn drop(&mut self) {
        // Through the API first, so that pierd releases mounts and cgroups;
        // PierEnv's drop then kills whatever is left and unmounts.
        let out = self.env.run(&["ps", "-aq", "--no-trunc"]);
        for id in stdout(&out).split_whitespace() {
            let _ = self.env.run(&["rm", "-f", id]);
        }
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl T {
    fn run(&self, args: &[&str]) -> Output {
        self.env.run(args)
    }

    fn ok(&self, args: &[&str]) -> String {
        self.env.ok(args)
    }

    /// `pier ARGS` must exit `code` with `msg` in its stderr; its stderr.
    fn fails(&self, args: &[&str], code: i32, msg: &str) -> String {
        let out = self.run(args);
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(code),
            "pier {args:?}: expected exit {code}, got {}\nstdout: {}\nstderr: {err}",
            out.status,
            stdout(&out)
        );
        assert!(
            err.contains(msg),
            "pier {args:?}: stderr lacks {msg:?}:\n{err}"
        );
        err
    }

    /// A directory under the test's temporary directory (created).
    fn host_dir(&self, name: &str) -> PathBuf {
        let d = self.env.dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A path under the test's temporary directory that does not exist.
    fn host_path(&self, name: &str) -> PathBuf {
        self.env.dir.path().join(name)
    }

    fn inspect(&self, what: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, what]).trim().to_string()
    }

    /// `inspect .Mounts`, sorted by destination.
    fn mounts(&self, container: &str) -> Vec<Value> {
        let json = self.inspect(container, "{{json .Mounts}}");
        let v: Value = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("inspect .Mounts of {container} is not JSON ({e}): {json}"));
        let mut list = v.as_array().cloned().unwrap_or_default();
        list.sort_by(|a, b| a["Destination"].as_str().cmp(&b["Destination"].as_str()));
        list
    }

    fn volumes(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .ok(&["volume", "ls", "-q"])
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    }

    fn containers(&self) -> Vec<String> {
        self.ok(&["ps", "-aq", "--no-trunc"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn volume_json(&self, name: &str) -> Value {
        let out = self.ok(&["volume", "inspect", name]);
        let v: Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("volume inspect {name} is not JSON ({e}): {out}"));
        assert_eq!(
            v.as_array().map(Vec::len),
            Some(1),
            "volume inspect {name} is not a one-element array: {out}"
        );
        v[0].clone()
    }

    /// Host directory holding the data of volume `name`.
    fn mountpoint(&self, name: &str) -> PathBuf {
        PathBuf::from(self.volume_json(name)["Mountpoint"].as_str().unwrap())
    }

    /// POSTs `body` to pierd's API (what `docker commit --change` would
    /// need a CLI flag for); returns the status code and body.
    fn api_post(&self, path: &str, body: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let sock = self.env.exec_root.join("pier.sock");
        let mut s = std::os::unix::net::UnixStream::connect(&sock)
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", sock.display()));
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: pier\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let status = resp
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = resp
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    /// Commits container `c` as `reference` with `Volumes` set to `dsts`
    /// (an image with VOLUME entries, as a Dockerfile's VOLUME makes).
    fn commit_with_volumes(&self, c: &str, repo: &str, tag: &str, dsts: &[&str]) {
        let vols: serde_json::Map<String, Value> = dsts
            .iter()
            .map(|d| (d.to_string(), serde_json::json!({})))
            .collect();
        let body = serde_json::json!({ "Volumes": vols }).to_string();
        let (status, resp) = self.api_post(
            &format!("/commit?container={c}&repo={repo}&tag={tag}"),
            &body,
        );
        assert_eq!(status, 201, "commit of {c} with Volumes failed: {resp}");
        let vols = self
            .ok(&[
                "image",
                "inspect",
                "-f",
                "{{json .Config.Volumes}}",
                &format!("{repo}:{tag}"),
            ])
            .trim()
            .to_string();
        for d in dsts {
            assert!(
                vols.contains(&format!("\"{d}\"")),
                "the committed image has no VOLUME {d}: {vols}"
            );
        }
    }
}

// ---------------------------------------------------------------- must show

#[test]
fn data_outlives_its_container_and_a_pierd_restart() {
    let t = setup();
    t.ok(&[
        "run",
        "--name",
        "writer",
        "-v",
        "keep-data:/data",
        "busybox",
        "sh",
        "-c",
        "echo written-by-writer > /data/note",
    ]);
    assert_eq!(t.ok(&["rm", "writer"]).trim(), "writer");
    t.env.kill_daemon();
    // The next command starts a new pierd, which knows the volume.
    assert_eq!(t.volumes(), ["keep-data"]);
    let out = t.ok(&[
        "run",
        "--rm",
        "-v",
        "keep-data:/data",
        "busybox",
        "cat",
        "/data/note",
    ]);
    assert_eq!(out, "written-by-writer\n");
}

#[test]
fn two_running_containers_share_a_volume() {
    let t = setup();
    for c in ["share-a", "share-b"] {
        t.ok(&[
            "run",
            "-d",
            "--name",
            c,
            "-v",
            "shared:/s",
            "busybox",
            "sleep",
            "1000",
        ]);
    }
    t.ok(&["exec", "share-a", "sh", "-c", "echo from-a > /s/a"]);
    assert_eq!(t.ok(&["exec", "share-b", "cat", "/s/a"]), "from-a\n");
    t.ok(&["exec", "share-b", "sh", "-c", "echo from-b > /s/b"]);
    assert_eq!(t.ok(&["exec", "share-a", "cat", "/s/b"]), "from-b\n");
    // The same data on the host, in the volume's directory.
    let mp = t.mountpoint("shared");
    assert_eq!(std::fs::read_to_string(mp.join("a")).unwrap(), "from-a\n");
    assert_eq!(std::fs::read_to_string(mp.join("b")).unwrap(), "from-b\n");
}

/// `pier run ARGS busybox sh -c 'echo x > /d/f'` must fail with
/// "Read-only file system" (as docker: sh exits 1).
fn assert_write_refused(t: &T, mount: &[&str], what: &str) {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(mount);
    args.extend_from_slice(&["busybox", "sh", "-c", "echo x > /d/f"]);
    let out = t.run(&args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: a write to a read-only mount did not fail as docker's (exit 1): {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{what}: no 'Read-only file system' error: {}",
        stderr(&out)
    );
}

#[test]
fn read_only_volume_refuses_writes() {
    let t = setup();
    assert_write_refused(&t, &["-v", "ro-vol:/d:ro"], "-v ro-vol:/d:ro");
    assert_eq!(
        t.ok(&[
            "run",
            "--rm",
            "-v",
            "ro-vol:/v",
            "busybox",
            "ls",
            "-A",
            "/v"
        ]),
        "",
        "the refused write left a file in the volume"
    );
    // The mount is read-only, not the volume.
    t.ok(&[
        "run",
        "--rm",
        "-v",
        "ro-vol:/d:rw",
        "busybox",
        "sh",
        "-c",
        "echo x > /d/f",
    ]);
}

#[test]
fn read_only_mount_flag_refuses_writes() {
    let t = setup();
    assert_write_refused(
        &t,
        &["--mount", "type=volume,src=ro-mnt,dst=/d,readonly"],
        "--mount ...,readonly",
    );
    assert_write_refused(
        &t,
        &["--mount", "type=volume,source=ro-mnt,target=/d,ro=true"],
        "--mount ...,ro=true",
    );
}

#[test]
fn read_only_bind_refuses_writes() {
    let t = setup();
    let h = t.host_dir("ro-bind");
    std::fs::write(h.join("seen"), "host file\n").unwrap();
    let spec = format!("{}:/d:ro", h.display());
    assert_write_refused(&t, &["-v", &spec], "-v HOST:/d:ro");
    let spec = format!("type=bind,src={},dst=/d,readonly", h.display());
    assert_write_refused(&t, &["--mount", &spec], "--mount type=bind,readonly");
    assert!(!h.join("f").exists(), "a read-only bind wrote to the host");
    // Reading works.
    let spec = format!("{}:/d:ro", h.display());
    assert_eq!(
        t.ok(&["run", "--rm", "-v", &spec, "busybox", "cat", "/d/seen"]),
        "host file\n"
    );
}

// -------------------------------------------------------------------- scope

#[test]
fn bind_mount_shows_host_files_and_writes_back() {
    let t = setup();
    let h = t.host_dir("bind");
    std::fs::write(h.join("in"), "from host\n").unwrap();
    for spec in [
        format!("{}:/b", h.display()),
        format!("{}:/b:rw", h.display()),
    ] {
        let out = t.ok(&[
            "run",
            "--rm",
            "-v",
            &spec,
            "busybox",
            "sh",
            "-c",
            "cat /b/in; echo from container > /b/out",
        ]);
        assert_eq!(out, "from host\n", "-v {spec}");
        assert_eq!(
            std::fs::read_to_string(h.join("out")).unwrap(),
            "from container\n",
            "-v {spec}"
        );
        std::fs::remove_file(h.join("out")).unwrap();
    }
    // A bind is no volume.
    assert_eq!(t.volumes(), Vec::<String>::new());
}

#[test]
fn anonymous_volume_is_created_for_a_bare_destination() {
    let t = setup();
    t.ok(&[
        "run",
        "--name",
        "anon",
        "-v",
        "/scratch",
        "busybox",
        "sh",
        "-c",
        "echo anon > /scratch/f",
    ]);
    let vols = t.volumes();
    assert_eq!(vols.len(), 1, "one anonymous volume expected: {vols:?}");
    let name = &vols[0];
    assert!(is_hex64(name), "anonymous volume name {name:?}");
    let m = t.mounts("anon");
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0]["Type"], "volume");
    assert_eq!(m[0]["Name"], name.as_str());
    assert_eq!(m[0]["Destination"], "/scratch");
    // Docker 23+ marks anonymous volumes with this label.
    let v = t.volume_json(name);
    assert!(
        v["Labels"]
            .as_object()
            .is_some_and(|l| l.contains_key("com.docker.volume.anonymous")),
        "anonymous volume lacks docker's com.docker.volume.anonymous label: {v}"
    );
    assert_eq!(
        std::fs::read_to_string(t.mountpoint(name).join("f")).unwrap(),
        "anon\n"
    );
}

#[test]
fn mount_flag_handles_bind_volume_and_tmpfs() {
    let t = setup();
    let h = t.host_dir("mnt-bind");
    std::fs::write(h.join("hf"), "bound\n").unwrap();
    let bind = format!("type=bind,source={},target=/b", h.display());
    let out = t.ok(&[
        "run",
        "--rm",
        "--mount",
        &bind,
        "--mount",
        "type=volume,src=mnt-vol,dst=/v",
        "--mount",
        "type=tmpfs,dst=/t,tmpfs-size=1048576",
        "busybox",
        "sh",
        "-c",
        "cat /b/hf; echo vol > /v/f; echo tmp > /t/f; grep ' /t ' /proc/mounts",
    ]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("bound"), "{out}");
    let tmpfs = lines.next().unwrap_or_default();
    assert!(
        tmpfs.starts_with("tmpfs /t tmpfs ") && tmpfs.contains("size=1024k"),
        "/t is not a 1 MiB tmpfs: {out}"
    );
    assert_eq!(t.volumes(), ["mnt-vol"]);
    assert_eq!(
        std::fs::read_to_string(t.mountpoint("mnt-vol").join("f")).unwrap(),
        "vol\n"
    );
}

#[test]
fn tmpfs_flag_mounts_a_fresh_tmpfs_with_options() {
    let t = setup();
    let script = "grep ' /tt ' /proc/mounts; stat -c %a /tt; ls -A /tt; echo x > /tt/f";
    for _ in 0..2 {
        // As docker: rw,nosuid,nodev,noexec,relatime,size=1024k,mode=1770.
        let out = t.ok(&[
            "run",
            "--rm",
            "--tmpfs",
            "/tt:size=1m,mode=1770",
            "busybox",
            "sh",
            "-c",
            script,
        ]);
        let mut lines = out.lines();
        let m = lines.next().unwrap_or_default();
        assert!(m.starts_with("tmpfs /tt tmpfs "), "{out}");
        for opt in ["nosuid", "nodev", "noexec", "size=1024k", "mode=1770"] {
            assert!(m.contains(opt), "--tmpfs mount lacks {opt}: {m}");
        }
        assert_eq!(lines.next(), Some("1770"), "{out}");
        // Empty each time: the file written by the first run is gone.
        assert_eq!(lines.next(), None, "{out}");
    }
    assert_eq!(t.volumes(), Vec::<String>::new());
}

#[test]
fn volumes_from_shares_the_other_containers_mounts() {
    let t = setup();
    let h = t.host_dir("vf-bind");
    let bind = format!("{}:/hb", h.display());
    t.ok(&[
        "run",
        "--name",
        "vf-src",
        "-v",
        "vf-named:/shared",
        "-v",
        "/anon",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "echo named > /shared/f; echo anon > /anon/g; echo bind > /hb/h",
    ]);
    let out = t.ok(&[
        "run",
        "--name",
        "vf-dst",
        "--volumes-from",
        "vf-src",
        "busybox",
        "sh",
        "-c",
        "cat /shared/f /anon/g /hb/h; echo back > /shared/w",
    ]);
    assert_eq!(out, "named\nanon\nbind\n");
    assert_eq!(
        std::fs::read_to_string(t.mountpoint("vf-named").join("w")).unwrap(),
        "back\n"
    );
    // Same volumes (not new ones), same destinations.
    let strip = |m: Vec<Value>| -> Vec<(Value, Value, Value)> {
        m.into_iter()
            .map(|m| {
                (
                    m["Type"].clone(),
                    m["Destination"].clone(),
                    m["Name"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(strip(t.mounts("vf-dst")), strip(t.mounts("vf-src")));
    assert_eq!(t.volumes().len(), 2, "{:?}", t.volumes());
}

#[test]
fn volumes_from_ro_makes_them_read_only() {
    let t = setup();
    t.ok(&[
        "run",
        "--name",
        "vfro-src",
        "-v",
        "vfro:/shared",
        "-v",
        "/anon",
        "busybox",
        "sh",
        "-c",
        "echo hello > /shared/f",
    ]);
    let out = t.run(&[
        "run",
        "--name",
        "vfro-dst",
        "--volumes-from",
        "vfro-src:ro",
        "busybox",
        "sh",
        "-c",
        "cat /shared/f; echo w > /shared/w",
    ]);
    assert_eq!(stdout(&out), "hello\n");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    // As docker: Mode "" and RW false for both mounts.
    for m in t.mounts("vfro-dst") {
        assert_eq!(m["RW"], false, "{m}");
    }
    assert_eq!(
        t.inspect("vfro-dst", "{{json .HostConfig.VolumesFrom}}"),
        r#"["vfro-src:ro"]"#
    );
}

#[test]
fn image_volume_gets_an_anonymous_volume_with_the_image_content() {
    let t = setup();
    t.ok(&[
        "run",
        "--name",
        "img-src",
        "busybox",
        "sh",
        "-c",
        "mkdir /data && echo from-image > /data/seed",
    ]);
    t.commit_with_volumes("img-src", "volimg", "1", &["/data"]);
    let out = t.ok(&[
        "run",
        "--name",
        "img-user",
        "volimg:1",
        "sh",
        "-c",
        "cat /data/seed; echo new > /data/new",
    ]);
    assert_eq!(out, "from-image\n");
    let m = t.mounts("img-user");
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0]["Type"], "volume");
    assert_eq!(m[0]["Destination"], "/data");
    let name = m[0]["Name"].as_str().unwrap_or_default().to_string();
    assert!(is_hex64(&name), "{m:?}");
    let mp = t.mountpoint(&name);
    assert_eq!(
        std::fs::read_to_string(mp.join("seed")).unwrap(),
        "from-image\n"
    );
    assert_eq!(std::fs::read_to_string(mp.join("new")).unwrap(), "new\n");
    // rm -v takes it with the container.
    t.ok(&["rm", "-v", "img-user"]);
    assert!(!t.volumes().contains(&name), "{:?}", t.volumes());

    // A user mount at the image's VOLUME replaces it: no anonymous volume.
    t.ok(&[
        "run",
        "--name",
        "img-named",
        "-v",
        "img-named-vol:/data",
        "volimg:1",
        "cat",
        "/data/seed",
    ]);
    assert_eq!(t.volumes(), ["img-named-vol"]);
}

/// The image's /etc/passwd, read from a container without volumes.
fn image_passwd(t: &T) -> String {
    t.ok(&["run", "--rm", "busybox", "cat", "/etc/passwd"])
}

#[test]
fn copy_up_fills_a_new_volume_with_the_image_content() {
    let t = setup();
    t.ok(&["run", "--rm", "-v", "cu-etc:/etc", "busybox", "true"]);
    let out = t.ok(&[
        "run",
        "--rm",
        "-v",
        "cu-etc:/v",
        "busybox",
        "sh",
        "-c",
        "cat /v/passwd; stat -c '%n %a %u %g' /v/group",
    ]);
    let passwd = image_passwd(&t);
    assert!(!passwd.is_empty());
    assert_eq!(out, format!("{passwd}/v/group 644 0 0\n"));
    // The volume's root takes the directory's mode and owner (as docker).
    t.ok(&[
        "run",
        "--name",
        "mkspecial",
        "busybox",
        "sh",
        "-c",
        "mkdir -m 1750 /special && chown 65534:65534 /special && echo x > /special/f",
    ]);
    t.ok(&["commit", "mkspecial", "special:1"]);
    t.ok(&["run", "--rm", "-v", "cu-sp:/special", "special:1", "true"]);
    assert_eq!(
        t.ok(&[
            "run",
            "--rm",
            "-v",
            "cu-sp:/v",
            "busybox",
            "sh",
            "-c",
            "stat -c '%a %u %g' /v; cat /v/f",
        ]),
        "1750 65534 65534\nx\n"
    );
    // An anonymous volume and a --mount volume are filled as well.
    let out = t.ok(&["run", "--rm", "-v", "/etc", "busybox", "cat", "/etc/passwd"]);
    assert_eq!(out, passwd);
    let out = t.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=cu-mnt,dst=/etc",
        "busybox",
        "cat",
        "/etc/passwd",
    ]);
    assert_eq!(out, passwd);
}

#[test]
fn volume_nocopy_leaves_the_volume_empty() {
    let t = setup();
    let out = t.run(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=nocopy,dst=/etc,volume-nocopy",
        "busybox",
        "cat",
        "/etc/passwd",
    ]);
    assert!(
        !out.status.success(),
        "volume-nocopy still copied /etc/passwd: {}",
        stdout(&out)
    );
    let listing = t.ok(&[
        "run",
        "--rm",
        "-v",
        "nocopy:/v",
        "busybox",
        "ls",
        "-A",
        "/v",
    ]);
    for f in ["passwd", "group"] {
        assert!(
            !listing.lines().any(|l| l == f),
            "volume-nocopy copied {f}: {listing}"
        );
    }
}

#[test]
fn a_non_empty_volume_is_not_overwritten() {
    let t = setup();
    t.ok(&[
        "run",
        "--rm",
        "-v",
        "full:/d",
        "busybox",
        "sh",
        "-c",
        "echo mine > /d/mine",
    ]);
    let out = t.ok(&[
        "run",
        "--rm",
        "-v",
        "full:/etc",
        "busybox",
        "ls",
        "-A",
        "/etc",
    ]);
    let names: Vec<&str> = out.lines().collect();
    assert!(names.contains(&"mine"), "{out}");
    for f in ["passwd", "group"] {
        assert!(
            !names.contains(&f),
            "the image's {f} was copied into a non-empty volume: {out}"
        );
    }
    // (hostname and hosts may show: docker mounts them over the volume.)
}

// --------------------------------------------------------- volume commands

#[test]
fn volume_create_ls_inspect_rm() {
    let t = setup();
    assert_eq!(t.ok(&["volume", "create", "crud"]), "crud\n");
    // Creating it again is no error (as docker) and keeps it.
    assert_eq!(t.ok(&["volume", "create", "crud"]), "crud\n");
    // As docker: a table with DRIVER and VOLUME NAME.
    assert_eq!(
        t.ok(&["volume", "ls"]),
        "DRIVER    VOLUME NAME\nlocal     crud\n"
    );
    let v = t.volume_json("crud");
    assert_eq!(v["Name"], "crud");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    let mp = v["Mountpoint"].as_str().unwrap_or_default();
    assert!(
        mp.starts_with(&*t.env.data_root.to_string_lossy()) && mp.ends_with("/volumes/crud/_data"),
        "Mountpoint {mp} is not DATA_ROOT/volumes/crud/_data"
    );
    assert!(Path::new(mp).is_dir(), "{mp} missing");
    let created = v["CreatedAt"].as_str().unwrap_or_default();
    assert!(
        created.len() >= 20 && created.as_bytes()[10] == b'T',
        "CreatedAt {created:?} is not RFC 3339"
    );
    for k in ["Labels", "Options"] {
        assert!(v.get(k).is_some(), "volume inspect lacks {k}: {v}");
    }
    assert_eq!(
        t.ok(&[
            "volume",
            "inspect",
            "-f",
            "{{.Name}} {{.Driver}} {{.Scope}}",
            "crud"
        ]),
        "crud local local\n"
    );
    // As docker: a missing one fails with "get NAME: no such volume", exit
    // 1; the found ones are still printed.
    let out = t.run(&["volume", "inspect", "crud", "no-such-vol"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("get no-such-vol: no such volume"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("\"crud\""), "{}", stdout(&out));
    assert_eq!(t.ok(&["volume", "rm", "crud"]), "crud\n");
    assert!(!Path::new(mp).exists(), "volume rm left {mp}");
    t.fails(
        &["volume", "inspect", "crud"],
        1,
        "get crud: no such volume",
    );
    t.fails(&["volume", "rm", "crud"], 1, "get crud: no such volume");
    assert_eq!(t.ok(&["volume", "ls", "-q"]), "");
}

#[test]
fn volume_create_without_a_name_makes_a_random_one() {
    let t = setup();
    let name = t.ok(&["volume", "create"]).trim().to_string();
    assert!(is_hex64(&name), "{name:?}");
    assert_eq!(t.volumes(), [name]);
}

#[test]
fn volume_ls_filters_quiet_and_format() {
    let t = setup();
    t.ok(&["volume", "create", "--label", "env=test", "lbl-one"]);
    t.ok(&[
        "volume", "create", "--label", "env=prod", "--label", "x", "lbl-two",
    ]);
    t.ok(&["volume", "create", "plain"]);
    t.ok(&[
        "create", "--name", "user", "-v", "plain:/p", "busybox", "true",
    ]);
    let q = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["volume", "ls", "-q"];
        all.extend_from_slice(args);
        let mut v: Vec<String> = t.ok(&all).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(q(&[]), ["lbl-one", "lbl-two", "plain"]);
    assert_eq!(q(&["--filter", "dangling=true"]), ["lbl-one", "lbl-two"]);
    assert_eq!(q(&["-f", "dangling=false"]), ["plain"]);
    assert_eq!(q(&["--filter", "name=lbl"]), ["lbl-one", "lbl-two"]);
    assert_eq!(q(&["--filter", "label=env"]), ["lbl-one", "lbl-two"]);
    assert_eq!(q(&["--filter", "label=env=prod"]), ["lbl-two"]);
    assert_eq!(q(&["--filter", "label=x"]), ["lbl-two"]);
    assert_eq!(
        q(&["--filter", "name=lbl", "--filter", "label=env=test"]),
        ["lbl-one"]
    );
    // As docker: .Labels is k=v joined by commas, .Label "k" one value.
    let out = t.ok(&[
        "volume",
        "ls",
        "--format",
        "{{.Name}}|{{.Driver}}|{{.Scope}}|{{.Label \"env\"}}|{{.Mountpoint}}",
    ]);
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    let root = t.env.data_root.display().to_string();
    assert_eq!(
        lines,
        [
            format!("lbl-one|local|local|test|{root}/volumes/lbl-one/_data"),
            format!("lbl-two|local|local|prod|{root}/volumes/lbl-two/_data"),
            format!("plain|local|local||{root}/volumes/plain/_data"),
        ]
    );
    let labels = t.ok(&[
        "volume",
        "ls",
        "--filter",
        "name=lbl-two",
        "--format",
        "{{.Labels}}",
    ]);
    let mut kv: Vec<&str> = labels.trim().split(',').collect();
    kv.sort();
    assert_eq!(kv, ["env=prod", "x="]);
    // As docker: a JSON line per volume.
    let json = t.ok(&["volume", "ls", "--filter", "name=plain", "--format", "json"]);
    let v: Value = serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(v["Name"], "plain");
    assert_eq!(v["Driver"], "local");
}

#[test]
fn volume_create_with_local_driver_options() {
    let t = setup();
    // tmpfs, as docker's local driver: mounted while a container uses it.
    t.ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=2m",
        "tmpvol",
    ]);
    let v = t.volume_json("tmpvol");
    assert_eq!(
        v["Options"],
        serde_json::json!({"type": "tmpfs", "device": "tmpfs", "o": "size=2m"})
    );
    let out = t.ok(&[
        "run",
        "--rm",
        "-v",
        "tmpvol:/t",
        "busybox",
        "grep",
        " /t ",
        "/proc/mounts",
    ]);
    assert!(
        out.starts_with("tmpfs /t tmpfs ") && out.contains("size=2048k"),
        "{out}"
    );
    // A bind of a host directory.
    let h = t.host_dir("bindvol-src");
    let dev = format!("device={}", h.display());
    t.ok(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        &dev,
        "bindvol",
    ]);
    t.ok(&[
        "run",
        "--rm",
        "-v",
        "bindvol:/b",
        "busybox",
        "sh",
        "-c",
        "echo through-bind > /b/f",
    ]);
    assert_eq!(
        std::fs::read_to_string(h.join("f")).unwrap(),
        "through-bind\n"
    );
    // Options survive a restart.
    t.env.kill_daemon();
    assert_eq!(t.volume_json("tmpvol")["Options"]["o"], "size=2m");
}

#[test]
fn volume_labels_and_data_survive_a_pierd_restart() {
    let t = setup();
    t.ok(&["volume", "create", "--label", "team=storage", "persist"]);
    t.ok(&[
        "run",
        "--name",
        "persist-user",
        "-v",
        "persist:/p",
        "-v",
        "/anon",
        "busybox",
        "sh",
        "-c",
        "echo kept > /p/f; echo kept-too > /anon/g",
    ]);
    let before = t.volumes();
    t.env.kill_daemon();
    assert_eq!(t.volumes(), before);
    assert_eq!(
        t.ok(&["volume", "inspect", "-f", "{{.Labels.team}}", "persist"]),
        "storage\n"
    );
    // The container still holds its volumes after the restart.
    t.fails(&["volume", "rm", "persist"], 1, "volume is in use");
    assert_eq!(
        t.ok(&["start", "-a", "persist-user"]),
        "",
        "the restarted container's script prints nothing"
    );
    let out = t.ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "persist-user",
        "busybox",
        "cat",
        "/p/f",
        "/anon/g",
    ]);
    assert_eq!(out, "kept\nkept-too\n");
}

#[test]
fn rm_v_removes_anonymous_volumes_only() {
    let t = setup();
    t.ok(&[
        "run",
        "--name",
        "rmv",
        "-v",
        "/anon",
        "-v",
        "rmv-named:/n",
        "--mount",
        "type=volume,dst=/anon2",
        "busybox",
        "true",
    ]);
    assert_eq!(t.volumes().len(), 3, "{:?}", t.volumes());
    assert_eq!(t.ok(&["rm", "-v", "rmv"]).trim(), "rmv");
    assert_eq!(t.volumes(), ["rmv-named"]);
    // Without -v the anonymous volume stays (as docker).
    t.ok(&[
        "run", "--name", "keepanon", "-v", "/anon", "busybox", "true",
    ]);
    t.ok(&["rm", "keepanon"]);
    assert_eq!(t.volumes().len(), 2, "{:?}", t.volumes());
}

#[test]
fn run_rm_removes_anonymous_volumes_only() {
    let t = setup();
    t.ok(&[
        "run",
        "--rm",
        "-v",
        "/anon",
        "-v",
        "runrm-named:/n",
        "busybox",
        "sh",
        "-c",
        "echo x > /n/f",
    ]);
    assert_eq!(t.volumes(), ["runrm-named"]);
    assert!(t.containers().is_empty());
}

#[test]
fn volume_rm_refuses_a_volume_in_use() {
    let t = setup();
    let id = t
        .ok(&[
            "run", "-d", "--name", "holder", "-v", "busy:/b", "busybox", "sleep", "1000",
        ])
        .trim()
        .to_string();
    // As docker: "remove NAME: volume is in use - [ID]", exit 1; -f only
    // forgives missing volumes.
    let msg = format!("remove busy: volume is in use - [{id}]");
    t.fails(&["volume", "rm", "busy"], 1, &msg);
    t.fails(&["volume", "rm", "-f", "busy"], 1, &msg);
    t.ok(&["stop", "-t", "0", "holder"]);
    // A stopped container still uses it.
    t.fails(&["volume", "rm", "busy"], 1, &msg);
    assert_eq!(t.volumes(), ["busy"]);
    t.ok(&["rm", "holder"]);
    assert_eq!(t.ok(&["volume", "rm", "busy"]), "busy\n");
    assert_eq!(t.volumes(), Vec::<String>::new());
}

#[test]
fn volume_rm_force_forgives_a_missing_volume() {
    let t = setup();
    t.ok(&["volume", "create", "there"]);
    // As docker: the name is printed and the exit is 0.
    assert_eq!(
        t.ok(&["volume", "rm", "-f", "not-there", "there"]),
        "not-there\nthere\n"
    );
    assert_eq!(t.volumes(), Vec::<String>::new());
}

/// Names of a prune's "Deleted Volumes:" block.
fn pruned(out: &str) -> Vec<String> {
    let mut v: Vec<String> = out
        .split_once("Deleted Volumes:\n")
        .map(|(_, rest)| rest)
        .unwrap_or_default()
        .lines()
        .take_while(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn volume_prune_removes_unused_anonymous_volumes_unless_all() {
    let t = setup();
    t.ok(&["volume", "create", "unused-named"]);
    t.ok(&["run", "--name", "gone", "-v", "/anon", "busybox", "true"]);
    let dangling_anon = t.mounts("gone")[0]["Name"].as_str().unwrap().to_string();
    t.ok(&["rm", "gone"]);
    t.ok(&[
        "create",
        "--name",
        "stays",
        "-v",
        "used-named:/u",
        "-v",
        "/anon",
        "busybox",
        "true",
    ]);
    let used_anon = t
        .mounts("stays")
        .into_iter()
        .find(|m| m["Destination"] == "/anon")
        .unwrap()["Name"]
        .as_str()
        .unwrap()
        .to_string();
    // As docker 28 (API 1.42+): anonymous unused volumes only.
    let out = t.ok(&["volume", "prune", "-f"]);
    assert_eq!(pruned(&out), [dangling_anon.as_str()], "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    let mut left = vec![
        "unused-named".to_string(),
        "used-named".into(),
        used_anon.clone(),
    ];
    left.sort();
    assert_eq!(t.volumes(), left);
    // --all: named unused ones too; used ones never.
    let out = t.ok(&["volume", "prune", "-a", "-f"]);
    assert_eq!(pruned(&out), ["unused-named"], "{out}");
    let mut left = vec!["used-named".to_string(), used_anon];
    left.sort();
    assert_eq!(t.volumes(), left);
    // A label filter narrows it.
    t.ok(&["volume", "create", "--label", "keep=1", "lab-keep"]);
    t.ok(&["volume", "create", "lab-go"]);
    let out = t.ok(&["volume", "prune", "-a", "-f", "--filter", "label!=keep"]);
    assert_eq!(pruned(&out), ["lab-go"], "{out}");
}

// ------------------------------------------------------------ inspect Mounts

#[test]
fn inspect_mounts_fields_as_docker() {
    let t = setup();
    let h = t.host_dir("insp");
    let ro_bind = format!("{}:/h:ro", h.display());
    let rw_bind = format!("{}:/h2", h.display());
    let mnt_bind = format!("type=bind,src={},dst=/b", h.display());
    t.ok(&[
        "run",
        "--name",
        "insp",
        "-v",
        "insp-named:/n",
        "-v",
        "/anon",
        "-v",
        &ro_bind,
        "-v",
        &rw_bind,
        "-v",
        "insp-ro:/r:ro",
        "--mount",
        &mnt_bind,
        "--mount",
        "type=volume,src=insp-mnt,dst=/m",
        "--mount",
        "type=volume,src=insp-mro,dst=/mr,readonly",
        "--mount",
        "type=tmpfs,dst=/t",
        "--tmpfs",
        "/t2",
        "busybox",
        "true",
    ]);
    let m = t.mounts("insp");
    let anon = m
        .iter()
        .find(|m| m["Destination"] == "/anon")
        .map(|m| m["Name"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default();
    assert!(is_hex64(&anon), "{m:?}");
    let vol = |name: &str| format!("{}/volumes/{name}/_data", t.env.data_root.display());
    let hs = h.display().to_string();
    let volume = |name: &str, dst: &str, mode: &str, rw: bool| {
        serde_json::json!({"Type": "volume", "Name": name, "Source": vol(name),
            "Destination": dst, "Driver": "local", "Mode": mode, "RW": rw, "Propagation": ""})
    };
    let bind = |dst: &str, mode: &str, rw: bool| {
        serde_json::json!({"Type": "bind", "Source": hs, "Destination": dst,
            "Mode": mode, "RW": rw, "Propagation": "rprivate"})
    };
    // As docker (checked against dockerd): named -v and --mount volumes
    // have Mode "z", anonymous ones "", :ro ones "ro"; binds have no Name
    // or Driver and rprivate propagation; --tmpfs is not in Mounts.
    let expected = vec![
        volume(&anon, "/anon", "", true),
        bind("/b", "", true),
        bind("/h", "ro", false),
        bind("/h2", "", true),
        volume("insp-mnt", "/m", "z", true),
        volume("insp-mro", "/mr", "z", false),
        volume("insp-named", "/n", "z", true),
        volume("insp-ro", "/r", "ro", false),
        serde_json::json!({"Type": "tmpfs", "Source": "", "Destination": "/t",
            "Mode": "", "RW": true, "Propagation": ""}),
    ];
    assert_eq!(
        Value::Array(m.clone()),
        Value::Array(expected.clone()),
        "\npier:     {}\nexpected: {}",
        serde_json::to_string(&m).unwrap(),
        serde_json::to_string(&expected).unwrap()
    );
}

// ---------------------------------------------------------------- bad input

#[test]
fn relative_host_path_is_an_invalid_volume_name() {
    let t = setup();
    // As docker: taken as a volume name, which it cannot be.
    t.fails(
        &["run", "--rm", "-v", "rel/dir:/d", "busybox", "true"],
        125,
        "create rel/dir: \"rel/dir\" includes invalid characters for a local volume name, \
         only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host \
         directory, use absolute path",
    );
    assert!(t.containers().is_empty());
    assert_eq!(t.volumes(), Vec::<String>::new());
}

#[test]
fn dot_relative_host_path_is_made_absolute() {
    let t = setup();
    let cwd = t.host_dir("cwd");
    std::fs::create_dir(cwd.join("dir")).unwrap();
    std::fs::write(cwd.join("dir/f"), "relative\n").unwrap();
    // As docker 28's CLI: ./dir is the current directory's dir.
    let out = t
        .env
        .pier()
        .current_dir(&cwd)
        .args([
            "run", "--name", "dotrel", "-v", "./dir:/d", "busybox", "cat", "/d/f",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "relative\n");
    assert_eq!(
        t.inspect("dotrel", "{{json .HostConfig.Binds}}"),
        format!(r#"["{}/dir:/d"]"#, cwd.display())
    );
    // As docker 28's CLI: `.` and `..` too, and --mount's source.
    let sub = cwd.join("dir");
    for (name, args, listing) in [
        ("dot", vec!["-v", ".:/d"], "f\n"),
        ("dotdot", vec!["-v", "..:/d"], "dir\n"),
        ("mntdot", vec!["--mount", "type=bind,src=.,dst=/d"], "f\n"),
    ] {
        let mut all = vec!["run", "--name", name];
        all.extend_from_slice(&args);
        all.extend_from_slice(&["busybox", "ls", "/d"]);
        let out = t.env.pier().current_dir(&sub).args(&all).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), listing, "{args:?}");
    }
    assert_eq!(
        t.inspect("dotdot", "{{json .HostConfig.Binds}}"),
        format!(r#"["{}:/d"]"#, cwd.display())
    );
}

#[test]
fn missing_host_path_is_created_by_v() {
    let t = setup();
    let p = t.host_path("made/by/v");
    let spec = format!("{}:/d", p.display());
    t.ok(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "busybox",
        "sh",
        "-c",
        "echo in > /d/f",
    ]);
    assert!(p.is_dir(), "-v did not create {}", p.display());
    assert_eq!(std::fs::read_to_string(p.join("f")).unwrap(), "in\n");
}

#[test]
fn missing_bind_source_is_refused_by_mount() {
    let t = setup();
    let p = t.host_path("not-made");
    let spec = format!("type=bind,src={},dst=/d", p.display());
    // As docker.
    t.fails(
        &["run", "--rm", "--mount", &spec, "busybox", "true"],
        125,
        &format!(
            "invalid mount config for type \"bind\": bind source path does not exist: {}",
            p.display()
        ),
    );
    assert!(!p.exists(), "--mount created {}", p.display());
    assert!(t.containers().is_empty());
}

#[test]
fn invalid_volume_names_are_refused() {
    let t = setup();
    let invalid = |n: &str| {
        format!(
            "create {n}: \"{n}\" includes invalid characters for a local volume name, \
             only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host \
             directory, use absolute path"
        )
    };
    // As docker.
    for n in ["a/b", "_a", "a:b", ".hidden", "a b", ".."] {
        t.fails(&["volume", "create", n], 1, &invalid(n));
    }
    t.fails(
        &["volume", "create", "a"],
        1,
        "create a: volume name is too short, names should be at least two alphanumeric characters",
    );
    t.fails(
        &["run", "--rm", "-v", "a b:/d", "busybox", "true"],
        125,
        &invalid("a b"),
    );
    t.fails(
        &[
            "run",
            "--rm",
            "--mount",
            "type=volume,src=_x,dst=/d",
            "busybox",
            "true",
        ],
        125,
        &invalid("_x"),
    );
    assert_eq!(t.volumes(), Vec::<String>::new());
    assert!(t.containers().is_empty());
}

#[test]
fn bad_mount_specs_are_refused() {
    let t = setup();
    // As docker, each one: nothing created.
    t.fails(
        &["run", "--rm", "-v", "bm1:/d:xx", "busybox", "true"],
        125,
        "invalid mode: xx",
    );
    t.fails(
        &["run", "--rm", "-v", "bm1:d", "busybox", "true"],
        125,
        "invalid volume specification: 'bm1:d': invalid mount config for type \"volume\": \
         invalid mount path: 'd' mount path must be absolute",
    );
    let h = t.host_dir("to-root");
    let spec = format!("{}:/", h.display());
    t.fails(
        &["run", "--rm", "-v", &spec, "busybox", "true"],
        125,
        &format!(
            "invalid volume specification: '{}:/': invalid mount config for type \"bind\": \
             invalid specification: destination can't be '/'",
            h.display()
        ),
    );
    t.fails(
        &[
            "run",
            "--rm",
            "--mount",
            "type=foo,dst=/d",
            "busybox",
            "true",
        ],
        125,
        "invalid mount config for type \"foo\": mount type unknown",
    );
    t.fails(
        &[
            "run",
            "--rm",
            "--mount",
            "type=volume,src=bm1",
            "busybox",
            "true",
        ],
        125,
        "target is required",
    );
    t.fails(
        &[
            "run",
            "--rm",
            "--volumes-from",
            "no-such-ctr",
            "busybox",
            "true",
        ],
        125,
        "No such container: no-such-ctr",
    );
    assert_eq!(t.volumes(), Vec::<String>::new());
    assert!(t.containers().is_empty());
}

#[test]
fn dotdot_destination_stays_inside_the_container() {
    let t = setup();
    // Unique: named after the test's temporary directory.
    let name = format!(
        "escape-{}",
        t.env.dir.path().file_name().unwrap().to_string_lossy()
    );
    let host = Path::new("/").join(&name);
    assert!(!host.exists());
    let dst = format!("/../../{name}");
    let spec = format!("esc:{dst}");
    let script = format!("echo inside > /{name}/f; grep -c ' /{name} ' /proc/mounts");
    // As docker: the destination is cleaned to /NAME in the container.
    let out = t.ok(&["run", "--rm", "-v", &spec, "busybox", "sh", "-c", &script]);
    assert_eq!(out, "1\n");
    assert!(!host.exists(), "{} appeared on the host", host.display());
    assert_eq!(
        std::fs::read_to_string(t.mountpoint("esc").join("f")).unwrap(),
        "inside\n"
    );
    // A bind too.
    let h = t.host_dir("esc-bind");
    let spec = format!("{}:/../../../{name}", h.display());
    let out = t.ok(&["run", "--rm", "-v", &spec, "busybox", "sh", "-c", &script]);
    assert_eq!(out, "1\n");
    assert!(!host.exists(), "{} appeared on the host", host.display());
    assert_eq!(std::fs::read_to_string(h.join("f")).unwrap(), "inside\n");
}

#[test]
fn symlink_destination_stays_inside_the_container() {
    let t = setup();
    // A host directory the image's symlinks point at by absolute and by
    // relative path: mounts must resolve them inside the container's root.
    let target = t.host_dir("symlink-target");
    let abs = target.display().to_string();
    let rel = format!("../../../../../../../..{abs}");
    t.ok(&[
        "run",
        "--name",
        "mklinks",
        "busybox",
        "sh",
        "-c",
        &format!("ln -s {abs} /link && ln -s {rel} /rel"),
    ]);
    t.ok(&["commit", "mklinks", "symimg:1"]);
    let out = t.ok(&[
        "run",
        "--rm",
        "-v",
        "symv:/link/sub",
        "symimg:1",
        "sh",
        "-c",
        "echo via-link > /link/sub/f && cat /link/sub/f",
    ]);
    assert_eq!(out, "via-link\n");
    let src = t.host_dir("symlink-bind-src");
    let spec = format!("{}:/rel/sub", src.display());
    t.ok(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "symimg:1",
        "sh",
        "-c",
        "echo via-rel > /rel/sub/g",
    ]);
    let left: Vec<_> = std::fs::read_dir(&target).unwrap().collect();
    assert!(
        left.is_empty(),
        "a mount through an image symlink created {left:?} on the host"
    );
    assert!(
        !std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(&abs),
        "something is mounted at the host's {abs}"
    );
    assert_eq!(
        std::fs::read_to_string(t.mountpoint("symv").join("f")).unwrap(),
        "via-link\n"
    );
    assert_eq!(std::fs::read_to_string(src.join("g")).unwrap(), "via-rel\n");
}

#[test]
fn duplicate_mount_points_are_refused() {
    let t = setup();
    let h = t.host_dir("dup");
    let hv = format!("{}:/d", h.display());
    let hm = format!("type=bind,src={},dst=/d", h.display());
    let cases: Vec<Vec<&str>> = vec![
        vec!["-v", "dup-a:/d", "-v", "dup-b:/d"],
        vec!["-v", "dup-a:/d", "--tmpfs", "/d"],
        vec!["-v", &hv, "--mount", "type=volume,src=dup-c,dst=/d"],
        vec!["--mount", &hm, "--mount", "type=tmpfs,dst=/d"],
    ];
    for c in cases {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(&c);
        args.extend_from_slice(&["busybox", "true"]);
        // As docker.
        t.fails(&args, 125, "Duplicate mount point: /d");
        assert!(t.containers().is_empty(), "{c:?} created a container");
    }
    let vols = t.volumes();
    assert!(
        !vols.contains(&"dup-c".to_string()) && !vols.contains(&"dup-b".to_string()),
        "{vols:?}"
    );
    assert_eq!(std::fs::read_dir(&h).unwrap().count(), 0);
}

#[test]
fn container_created_symlink_is_resolved_inside_on_restart() {
    let t = setup();
    // The first run moves the directory holding the mount point away and
    // puts a symlink to a host directory in its place; the second start
    // must mount the volume inside the container's root, as docker does,
    // not at the host's directory.
    let target = t.host_dir("restart-symlink-target");
    let script = format!(
        "if [ -L /evil ]; then echo second > /evil/sub/s; \
         else mv /evil /evil2 && ln -s {} /evil && echo first; fi",
        target.display()
    );
    t.ok(&[
        "create",
        "--name",
        "evil",
        "-v",
        "evilvol:/evil/sub",
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(t.ok(&["start", "-a", "evil"]), "first\n");
    assert_eq!(t.ok(&["start", "-a", "evil"]), "");
    let left: Vec<_> = std::fs::read_dir(&target).unwrap().collect();
    assert!(
        left.is_empty(),
        "the restart mounted or wrote through the container's symlink at the host's {}: {left:?}",
        target.display()
    );
    assert_eq!(
        std::fs::read_to_string(t.mountpoint("evilvol").join("s")).unwrap(),
        "second\n"
    );
}

#[test]
fn unknown_volume_driver_is_refused() {
    let t = setup();
    // As docker.
    t.fails(
        &["volume", "create", "-d", "nosuchdriver", "drv"],
        1,
        "create drv: error looking up volume plugin nosuchdriver: plugin \"nosuchdriver\" not found",
    );
    assert_eq!(t.volumes(), Vec::<String>::new());
}

#[test]
fn volume_rm_of_several_removes_what_it_can() {
    let t = setup();
    t.ok(&["volume", "create", "several-a"]);
    t.ok(&["volume", "create", "several-b"]);
    let id = t
        .ok(&[
            "create",
            "--name",
            "hold",
            "-v",
            "several-busy:/b",
            "busybox",
            "true",
        ])
        .trim()
        .to_string();
    // As docker: the removed ones printed, each failure on stderr, exit 1.
    let out = t.run(&[
        "volume",
        "rm",
        "several-a",
        "several-busy",
        "several-b",
        "several-none",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stdout(&out), "several-a\nseveral-b\n");
    let err = stderr(&out);
    assert!(
        err.contains(&format!("remove several-busy: volume is in use - [{id}]"))
            && err.contains("get several-none: no such volume"),
        "{err}"
    );
    assert_eq!(t.volumes(), ["several-busy"]);
}

#[test]
fn forced_and_detached_removals_take_anonymous_volumes() {
    let t = setup();
    t.ok(&[
        "run",
        "-d",
        "--name",
        "running",
        "-v",
        "/anon",
        "-v",
        "frc-named:/n",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(t.volumes().len(), 2, "{:?}", t.volumes());
    // rm -f -v of a running container.
    t.ok(&["rm", "-f", "-v", "running"]);
    assert_eq!(t.volumes(), ["frc-named"]);
    // run -d --rm: pierd removes the anonymous volume when the container
    // ends.
    t.ok(&["run", "-d", "--rm", "-v", "/anon", "busybox", "true"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !(t.containers().is_empty() && t.volumes() == ["frc-named"]) {
        assert!(
            std::time::Instant::now() < deadline,
            "run -d --rm left {:?} and volumes {:?}",
            t.containers(),
            t.volumes()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn bind_mount_of_a_single_file() {
    let t = setup();
    let f = t.host_path("my.conf");
    std::fs::write(&f, "conf\n").unwrap();
    let spec = format!("{}:/etc/my.conf:ro", f.display());
    // As docker: the file shows, a write to it is refused.
    let out = t.run(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "busybox",
        "sh",
        "-c",
        "cat /etc/my.conf; echo x > /etc/my.conf",
    ]);
    assert_eq!(stdout(&out), "conf\n");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "conf\n");
    // Read-write: the host file changes.
    let spec = format!("{}:/etc/my.conf", f.display());
    t.ok(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "busybox",
        "sh",
        "-c",
        "echo changed > /etc/my.conf",
    ]);
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "changed\n");
}

#[test]
fn nested_mounts_go_on_in_depth_order() {
    let t = setup();
    // Given deeper first: pier, as docker, mounts /d before /d/sub.
    t.ok(&[
        "run",
        "--rm",
        "-v",
        "nest-b:/d/sub",
        "-v",
        "nest-a:/d",
        "busybox",
        "sh",
        "-c",
        "echo a > /d/fa; echo b > /d/sub/fb",
    ]);
    let ls = |v: &str| {
        let mut n: Vec<String> = std::fs::read_dir(t.mountpoint(v))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    };
    assert_eq!(ls("nest-a"), ["fa", "sub"]);
    assert_eq!(ls("nest-b"), ["fb"]);
}

#[test]
fn volumes_stay_writable_on_a_read_only_rootfs() {
    let t = setup();
    // As docker: --read-only covers the root filesystem, not the volumes.
    let out = t.run(&[
        "run",
        "--rm",
        "--read-only",
        "-v",
        "rofs:/d",
        "busybox",
        "sh",
        "-c",
        "echo x > /d/f && echo ok; echo y > /f",
    ]);
    assert_eq!(stdout(&out), "ok\n", "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(t.mountpoint("rofs").join("f")).unwrap(),
        "x\n"
    );
}

#[test]
fn create_makes_the_volumes_before_start() {
    let t = setup();
    t.ok(&[
        "create",
        "--name",
        "atc",
        "-v",
        "atcreate:/d",
        "-v",
        "/anon",
        "busybox",
        "sh",
        "-c",
        "echo started > /d/f",
    ]);
    // As docker: both volumes exist and show in Mounts before the start.
    let vols = t.volumes();
    assert_eq!(vols.len(), 2, "{vols:?}");
    assert!(vols.contains(&"atcreate".to_string()), "{vols:?}");
    let m = t.mounts("atc");
    assert_eq!(m.len(), 2, "{m:?}");
    t.ok(&["start", "-a", "atc"]);
    assert_eq!(
        std::fs::read_to_string(t.mountpoint("atcreate").join("f")).unwrap(),
        "started\n"
    );
    t.ok(&["rm", "-v", "atc"]);
    assert_eq!(t.volumes(), ["atcreate"]);
}

#[test]
fn concurrent_first_uses_fill_a_volume_once() {
    let t = setup();
    let passwd = image_passwd(&t);
    // Four containers race to create and fill the same new volume; each
    // sees the image's /etc, and the volume holds one copy.
    std::thread::scope(|s| {
        for _ in 0..4 {
            let t = &t;
            let passwd = &passwd;
            s.spawn(move || {
                let out = t.ok(&[
                    "run",
                    "--rm",
                    "-v",
                    "raced:/etc",
                    "busybox",
                    "cat",
                    "/etc/passwd",
                ]);
                assert_eq!(&out, passwd);
            });
        }
    });
    assert_eq!(t.volumes(), ["raced"]);
    assert_eq!(
        std::fs::read_to_string(t.mountpoint("raced").join("passwd")).unwrap(),
        passwd
    );
}

#[test]
fn a_bind_shows_host_changes_live() {
    let t = setup();
    let h = t.host_dir("live");
    let spec = format!("{}:/live", h.display());
    t.ok(&[
        "run", "-d", "--name", "live", "-v", &spec, "busybox", "sleep", "1000",
    ]);
    std::fs::write(h.join("later"), "written after start\n").unwrap();
    assert_eq!(
        t.ok(&["exec", "live", "cat", "/live/later"]),
        "written after start\n"
    );
}

#[test]
fn v_flag_modes_nocopy_and_selinux_labels() {
    let t = setup();
    // As docker: `nocopy` in -v's mode skips the copy-up.
    let out = t.ok(&[
        "run",
        "--rm",
        "-v",
        "v-nocopy:/etc:nocopy",
        "busybox",
        "ls",
        "-A",
        "/etc",
    ]);
    assert!(
        !out.lines().any(|l| l == "passwd"),
        "-v ...:nocopy copied /etc: {out}"
    );
    // As docker: z and Z (SELinux relabel) are accepted, alone or with ro.
    let h = t.host_dir("zlabel");
    let z = format!("{}:/d:z", h.display());
    t.ok(&["run", "--rm", "-v", &z, "busybox", "true"]);
    assert_write_refused(&t, &["-v", "zvol:/d:Z,ro"], "-v zvol:/d:Z,ro");
}

#[test]
fn mount_flag_volume_and_tmpfs_options() {
    let t = setup();
    // As docker: volume-opt makes a local-driver volume with options,
    // volume-label labels it.
    let out = t.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=mnt-opts,dst=/t,volume-opt=type=tmpfs,volume-opt=device=tmpfs,\
         volume-opt=o=size=3m,volume-label=k=v",
        "busybox",
        "grep",
        " /t ",
        "/proc/mounts",
    ]);
    assert!(
        out.starts_with("tmpfs /t tmpfs ") && out.contains("size=3072k"),
        "{out}"
    );
    let v = t.volume_json("mnt-opts");
    assert_eq!(
        v["Options"],
        serde_json::json!({"type": "tmpfs", "device": "tmpfs", "o": "size=3m"})
    );
    assert_eq!(v["Labels"], serde_json::json!({"k": "v"}));
    // tmpfs-mode.
    assert_eq!(
        t.ok(&[
            "run",
            "--rm",
            "--mount",
            "type=tmpfs,dst=/tt,tmpfs-mode=1770",
            "busybox",
            "stat",
            "-c",
            "%a",
            "/tt",
        ]),
        "1770\n"
    );
}

#[test]
fn copy_up_through_an_image_symlink_and_of_symlinks() {
    let t = setup();
    let secret = t.host_path("secret");
    std::fs::write(&secret, "host secret\n").unwrap();
    let script = format!(
        "mkdir /realdata && echo real > /realdata/f && ln -s /realdata /data && \
         mkdir /sd && ln -s {} /sd/abs",
        secret.display()
    );
    t.ok(&["run", "--name", "mk2", "busybox", "sh", "-c", &script]);
    t.ok(&["commit", "mk2", "img2:1"]);
    // As docker: /data is the image's symlink to /realdata; the volume goes
    // on /realdata and is filled from it.
    assert_eq!(
        t.ok(&[
            "run",
            "--rm",
            "-v",
            "via-link:/data",
            "img2:1",
            "cat",
            "/data/f"
        ]),
        "real\n"
    );
    assert_eq!(
        std::fs::read_to_string(t.mountpoint("via-link").join("f")).unwrap(),
        "real\n"
    );
    // As docker: a symlink is copied as a symlink, never followed to the
    // host file it names.
    t.ok(&["run", "--rm", "-v", "links:/sd", "img2:1", "true"]);
    let abs = t.mountpoint("links").join("abs");
    let meta = std::fs::symlink_metadata(&abs).unwrap();
    assert!(
        meta.file_type().is_symlink(),
        "{} is no symlink",
        abs.display()
    );
    assert_eq!(std::fs::read_link(&abs).unwrap(), secret);
}

/// Mount points (from /proc/self/mountinfo) at or under `dir`.
fn mounted_under(dir: &Path) -> Vec<String> {
    let root = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| *p == root || p.starts_with(&format!("{root}/")))
        .map(str::to_string)
        .collect()
}

/// Waits up to 20 s for `f` (a deadline, not a timing assertion).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn restart_keeps_volumes_and_renews_tmpfs() {
    let t = setup();
    t.ok(&[
        "run",
        "-d",
        "--name",
        "rs",
        "-v",
        "rs-vol:/v",
        "--tmpfs",
        "/t",
        "busybox",
        "sleep",
        "1000",
    ]);
    t.ok(&[
        "exec",
        "rs",
        "sh",
        "-c",
        "echo kept > /v/f; echo lost > /t/f",
    ]);
    t.ok(&["restart", "-t", "0", "rs"]);
    // As docker: the volume's data stays, the tmpfs starts empty.
    assert_eq!(t.ok(&["exec", "rs", "cat", "/v/f"]), "kept\n");
    assert_eq!(t.ok(&["exec", "rs", "ls", "-A", "/t"]), "");
    // pierd restarted under a running container: its mounts stay, and a
    // stop and start mounts them again.
    t.env.kill_daemon();
    assert_eq!(t.ok(&["exec", "rs", "cat", "/v/f"]), "kept\n");
    t.ok(&["exec", "rs", "sh", "-c", "echo after-restart > /v/g"]);
    t.ok(&["stop", "-t", "0", "rs"]);
    t.ok(&["start", "rs"]);
    assert_eq!(t.ok(&["exec", "rs", "cat", "/v/g"]), "after-restart\n");
}

#[test]
fn options_volumes_are_unmounted_when_unused() {
    let t = setup();
    t.ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=1m",
        "opt-tmp",
    ]);
    let mp = t.mountpoint("opt-tmp");
    t.ok(&[
        "run",
        "-d",
        "--name",
        "ot1",
        "-v",
        "opt-tmp:/t",
        "busybox",
        "sleep",
        "1000",
    ]);
    t.ok(&[
        "run",
        "-d",
        "--name",
        "ot2",
        "-v",
        "opt-tmp:/t",
        "busybox",
        "sleep",
        "1000",
    ]);
    t.ok(&["exec", "ot1", "sh", "-c", "echo shared > /t/f"]);
    // One tmpfs for both containers.
    assert_eq!(t.ok(&["exec", "ot2", "cat", "/t/f"]), "shared\n");
    t.ok(&["rm", "-f", "ot1"]);
    // Still used by ot2: still mounted, data still there.
    assert_eq!(t.ok(&["exec", "ot2", "cat", "/t/f"]), "shared\n");
    // As docker: mounted on the host's Mountpoint while in use, so the
    // data shows there.
    assert!(
        !mounted_under(&mp).is_empty(),
        "{} not mounted",
        mp.display()
    );
    assert_eq!(std::fs::read_to_string(mp.join("f")).unwrap(), "shared\n");
    t.ok(&["rm", "-f", "ot2"]);
    // As docker's local driver: unmounted once no container uses it.
    eventually(
        &format!("{} still mounted after its last user went", mp.display()),
        || mounted_under(&mp).is_empty(),
    );
    assert_eq!(t.ok(&["volume", "rm", "opt-tmp"]), "opt-tmp\n");
}

#[test]
fn removed_containers_leave_no_mounts_behind() {
    let t = setup();
    let h = t.host_dir("leak-bind");
    let bind = format!("{}:/b", h.display());
    let file = t.host_path("leak-file");
    std::fs::write(&file, "f\n").unwrap();
    let fbind = format!("{}:/etc/leak:ro", file.display());
    t.ok(&[
        "run",
        "-d",
        "--name",
        "leak1",
        "-v",
        "leak-vol:/v",
        "-v",
        "/anon",
        "-v",
        &bind,
        "-v",
        &fbind,
        "--tmpfs",
        "/t",
        "busybox",
        "sleep",
        "1000",
    ]);
    t.ok(&[
        "run",
        "--name",
        "leak2",
        "--volumes-from",
        "leak1",
        "busybox",
        "true",
    ]);
    t.ok(&["rm", "-f", "-v", "leak1", "leak2"]);
    let vols = t.env.data_root.join("volumes");
    eventually("mounts left under the volumes directory", || {
        mounted_under(&vols).is_empty()
    });
    eventually("mounts left on the bind sources", || {
        mounted_under(&h).is_empty() && mounted_under(&file).is_empty()
    });
    eventually("mounts left under the containers' directories", || {
        mounted_under(&t.env.data_root.join("containers")).is_empty()
            && mounted_under(&t.env.exec_root.join("containers")).is_empty()
    });
    assert_eq!(t.volumes(), ["leak-vol"]);
}

#[test]
fn host_paths_with_spaces_and_trailing_slashes() {
    let t = setup();
    let h = t.host_dir("with space");
    std::fs::write(h.join("f"), "sp\n").unwrap();
    let spec = format!("{}:/d", h.display());
    assert_eq!(
        t.ok(&["run", "--rm", "-v", &spec, "busybox", "cat", "/d/f"]),
        "sp\n"
    );
    let spec = format!("type=bind,src={},dst=/d e", h.display());
    assert_eq!(
        t.ok(&["run", "--rm", "--mount", &spec, "busybox", "cat", "/d e/f"]),
        "sp\n"
    );
    // As docker: /d/ is /d, mounted once.
    assert_eq!(
        t.ok(&[
            "run",
            "--rm",
            "-v",
            "trail:/d/",
            "busybox",
            "sh",
            "-c",
            "grep -c ' /d ' /proc/mounts",
        ]),
        "1\n"
    );
}

#[test]
fn a_volume_on_an_image_file_is_refused() {
    let t = setup();
    // As docker: the copy-up finds a file, not a directory: exit 125 and
    // no container left ("source .../etc/passwd is not directory").
    let out = t.run(&[
        "run",
        "--name",
        "onfile",
        "-v",
        "onfile:/etc/passwd",
        "busybox",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/etc/passwd is not directory"),
        "{}",
        stderr(&out)
    );
    assert!(t.containers().is_empty(), "{:?}", t.containers());
    assert!(mounted_under(&t.env.data_root.join("volumes")).is_empty());
}

#[test]
fn mount_volume_subpath() {
    let t = setup();
    let secret = t.host_dir("subpath-outside");
    std::fs::write(secret.join("s"), "outside\n").unwrap();
    let script = format!(
        "mkdir -p /v/sub && echo inner > /v/sub/f && ln -s {} /v/out && ln -s ../.. /v/up",
        secret.display()
    );
    t.ok(&[
        "run",
        "--rm",
        "-v",
        "subvol:/v",
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    // Docker 26+ (API 1.45): volume-subpath mounts a directory of the
    // volume.
    assert_eq!(
        t.ok(&[
            "run",
            "--rm",
            "--mount",
            "type=volume,src=subvol,dst=/d,volume-subpath=sub",
            "busybox",
            "cat",
            "/d/f",
        ]),
        "inner\n"
    );
    // A missing subpath, a `..` one and symlinks leading out of the volume
    // are refused (exit 125 as a daemon error), nothing of the host shows.
    for sub in ["missing", "../..", "out", "up", "sub/../../.."] {
        let spec = format!("type=volume,src=subvol,dst=/d,volume-subpath={sub}");
        let out = t.run(&[
            "run", "--rm", "--mount", &spec, "busybox", "sh", "-c", "ls -A /d",
        ]);
        assert_eq!(
            out.status.code(),
            Some(125),
            "volume-subpath={sub} was not refused: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
    assert!(t.containers().is_empty(), "{:?}", t.containers());
}

fn sh_ok(script: &str) {
    let out = std::process::Command::new("sh")
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(out.status.success(), "sh -c {script:?}: {}", stderr(&out));
}

#[test]
fn bind_propagation_as_docker() {
    let t = setup();
    // A shared host mount (a tmpfs of the test's, made shared), so that
    // rshared and rslave binds are allowed (docker refuses them on a
    // private source); PierEnv's drop unmounts it.
    let shared = t.host_dir("shared");
    sh_ok(&format!(
        "mount -t tmpfs tmpfs {0} && mount --make-shared {0} && mkdir {0}/src",
        shared.display()
    ));
    let src = shared.join("src");
    let s = src.display().to_string();
    let private = format!("{s}:/d");
    let slave = format!("{s}:/d:ro,rslave");
    let mnt_slave = format!("type=bind,src={s},dst=/d,bind-propagation=rslave");
    let shared_spec = format!("{s}:/d:rshared");
    for (name, flag, spec) in [
        ("p-private", "-v", private.as_str()),
        ("p-slave", "-v", slave.as_str()),
        ("p-mnt-slave", "--mount", mnt_slave.as_str()),
        ("p-shared", "-v", shared_spec.as_str()),
    ] {
        t.ok(&[
            "run", "-d", "--name", name, flag, spec, "busybox", "sleep", "1000",
        ]);
    }
    // A mount made on the host after the start.
    sh_ok(&format!(
        "mkdir {s}/sub && mount -t tmpfs tmpfs {s}/sub && echo hi > {s}/sub/x"
    ));
    // As docker: Mode and Propagation, and only rslave/rshared binds see
    // the host's later mount.
    for (name, mode, prop, sees) in [
        ("p-private", "", "rprivate", false),
        ("p-slave", "ro,rslave", "rslave", true),
        ("p-mnt-slave", "", "rslave", true),
        ("p-shared", "rshared", "rshared", true),
    ] {
        let m = t.mounts(name);
        assert_eq!(
            m.iter()
                .map(|m| (m["Mode"].clone(), m["Propagation"].clone()))
                .collect::<Vec<_>>(),
            [(Value::from(mode), Value::from(prop))],
            "{name}"
        );
        let out = t.run(&["exec", name, "cat", "/d/sub/x"]);
        assert_eq!(
            out.status.success(),
            sees,
            "{name}: the host's later mount {} in the container: {}{}",
            if sees { "should show" } else { "shows" },
            stdout(&out),
            stderr(&out)
        );
    }
    for name in ["p-private", "p-slave", "p-mnt-slave", "p-shared"] {
        t.ok(&["rm", "-f", name]);
    }
}

#[test]
fn volume_command_usage_errors() {
    let t = setup();
    t.ok(&["volume", "create", "u-keep"]);
    // Wrong argument counts fail and do nothing (docker exits 1 with
    // "requires at least 1 argument" and the like; pier's CLI-wide usage
    // errors are clap's).
    for args in [
        vec!["volume", "rm"],
        vec!["volume", "inspect"],
        vec!["volume", "create", "u-a", "u-b"],
        vec!["volume", "ls", "extra"],
    ] {
        let out = t.run(&args);
        assert!(!out.status.success(), "pier {args:?} succeeded");
        assert!(stdout(&out).is_empty(), "{args:?}: {}", stdout(&out));
    }
    // As docker 28 (moby's api/types/filters invalidFilter; the 20.10
    // dockerd here still capitalizes it): the daemon refuses unknown filters.
    t.fails(
        &["volume", "ls", "--filter", "bogus=1"],
        1,
        "invalid filter 'bogus'",
    );
    t.fails(
        &["volume", "prune", "-f", "--filter", "bogus=1"],
        1,
        "invalid filter 'bogus'",
    );
    assert_eq!(t.volumes(), ["u-keep"]);
}

#[test]
fn volume_names_never_reach_outside_the_volumes_directory() {
    let t = setup();
    t.ok(&["volume", "create", "victim"]);
    t.ok(&[
        "run",
        "--rm",
        "-v",
        "victim:/v",
        "busybox",
        "sh",
        "-c",
        "echo precious > /v/f",
    ]);
    let entries = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let root_before = entries(&t.env.data_root);
    // Docker answers these with errors (its URL cleaning makes most of
    // them "page not found"); nothing may be removed, whatever the path.
    for name in [
        "..",
        ".",
        "../containers",
        "../../data",
        "victim/..",
        "victim/../..",
        "%2e%2e",
    ] {
        let out = t.run(&["volume", "rm", "-f", name]);
        let out2 = t.run(&["volume", "inspect", name]);
        assert!(
            !out2.status.success(),
            "volume inspect {name:?} found something: {}",
            stdout(&out2)
        );
        assert_eq!(
            entries(&t.env.data_root),
            root_before,
            "volume rm -f {name:?} ({}) changed the data root",
            stderr(&out)
        );
        assert_eq!(
            std::fs::read_to_string(t.mountpoint("victim").join("f")).unwrap(),
            "precious\n",
            "volume rm -f {name:?}"
        );
    }
    assert_eq!(t.volumes(), ["victim"]);
    assert!(
        t.ok(&["images", "-q"]).lines().count() == 1,
        "the image went"
    );
}

#[test]
fn copy_up_never_reads_the_host_through_image_symlinks() {
    let t = setup();
    // Host files an image's symlinks name, by absolute and relative path.
    let secret_dir = t.host_dir("exfil-secret");
    std::fs::write(secret_dir.join("secret"), "host only\n").unwrap();
    let abs = secret_dir.display().to_string();
    let script =
        format!("ln -s {abs} /data && mkdir /deep && ln -s ../../../../../../../..{abs} /deep/rel");
    t.ok(&["run", "--name", "mkexfil", "busybox", "sh", "-c", &script]);
    t.ok(&["commit", "mkexfil", "exfil:1"]);
    for (vol, dst) in [("exfil-abs", "/data"), ("exfil-rel", "/deep/rel")] {
        let spec = format!("{vol}:{dst}");
        let out = t.run(&[
            "run",
            "--rm",
            "-v",
            &spec,
            "exfil:1",
            "sh",
            "-c",
            &format!("cat {dst}/secret 2>/dev/null; ls -A {dst}"),
        ]);
        assert!(
            !stdout(&out).contains("host only") && !stdout(&out).contains("secret"),
            "-v {spec}: the host's file shows in the container: {}",
            stdout(&out)
        );
        if out.status.success() {
            let listing = std::fs::read_dir(t.mountpoint(vol))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>();
            assert!(
                !listing.iter().any(|n| n == "secret"),
                "-v {spec}: copy-up copied the host's file: {listing:?}"
            );
        }
    }
    // The host directory is untouched.
    let left: Vec<String> = std::fs::read_dir(&secret_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["secret"]);
}

#[test]
fn volumes_from_is_transitive_and_image_volumes_go_with_run_rm() {
    let t = setup();
    // As docker: c inherits b's mounts, which include those b took from a.
    t.ok(&[
        "run",
        "--name",
        "vf-a",
        "-v",
        "vf-av:/a",
        "busybox",
        "sh",
        "-c",
        "echo a > /a/f",
    ]);
    t.ok(&[
        "run",
        "--name",
        "vf-b",
        "--volumes-from",
        "vf-a",
        "-v",
        "vf-bv:/b",
        "busybox",
        "sh",
        "-c",
        "echo b > /b/g",
    ]);
    assert_eq!(
        t.ok(&[
            "run",
            "--rm",
            "--volumes-from",
            "vf-b",
            "busybox",
            "cat",
            "/a/f",
            "/b/g"
        ]),
        "a\nb\n"
    );
    // An image VOLUME's anonymous volume goes with `run --rm`.
    t.ok(&[
        "run",
        "--name",
        "vf-img-src",
        "busybox",
        "sh",
        "-c",
        "mkdir /data && echo seed > /data/s",
    ]);
    t.commit_with_volumes("vf-img-src", "vfimg", "1", &["/data"]);
    let before = t.volumes();
    assert_eq!(
        t.ok(&["run", "--rm", "vfimg:1", "cat", "/data/s"]),
        "seed\n"
    );
    assert_eq!(t.volumes(), before);
}

#[test]
fn cp_goes_through_volume_mounts() {
    let t = setup();
    let src = t.host_path("cpf");
    std::fs::write(&src, "cpdata\n").unwrap();
    let h = t.host_dir("cp-bind");
    let bind = format!("{}:/b", h.display());
    // A running container's volume.
    t.ok(&[
        "run", "-d", "--name", "cpr", "-v", "cpv2:/v", "busybox", "sleep", "1000",
    ]);
    t.ok(&["cp", &src.display().to_string(), "cpr:/v/"]);
    assert_eq!(
        std::fs::read_to_string(t.mountpoint("cpv2").join("cpf")).ok(),
        Some("cpdata\n".to_string()),
        "cp into a running container's /v did not land in its volume"
    );
    t.ok(&[
        "create",
        "--name",
        "cpc",
        "-v",
        "cpv:/v",
        "-v",
        "cpro:/r:ro",
        "-v",
        &bind,
        "busybox",
        "true",
    ]);
    // As docker: cp into a stopped container's volume and bind writes
    // into them, and reads come from them.
    let s = src.display().to_string();
    t.ok(&["cp", &s, "cpc:/v/"]);
    t.ok(&["cp", &s, "cpc:/b/"]);
    assert_eq!(
        std::fs::read_to_string(t.mountpoint("cpv").join("cpf")).unwrap(),
        "cpdata\n"
    );
    assert_eq!(std::fs::read_to_string(h.join("cpf")).unwrap(), "cpdata\n");
    let out = t
        .env
        .pier()
        .args(["cp", "cpc:/v/cpf", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut ar = tar::Archive::new(out.stdout.as_slice());
    let mut e = ar
        .entries()
        .unwrap()
        .next()
        .expect("cp - gave an empty tar")
        .unwrap();
    let mut body = String::new();
    std::io::Read::read_to_string(&mut e, &mut body).unwrap();
    assert_eq!(body, "cpdata\n");
    // As docker: a read-only volume refuses the copy.
    t.fails(
        &["cp", &s, "cpc:/r/"],
        1,
        "mounted volume is marked read-only",
    );
    assert!(!t.mountpoint("cpro").join("cpf").exists());
}

#[test]
fn commit_diff_and_export_leave_volume_content_out() {
    let t = setup();
    let h = t.host_dir("cm-bind");
    let bind = format!("{}:/hb", h.display());
    t.ok(&[
        "run",
        "--name",
        "cm",
        "-v",
        "cmv:/data",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "echo in-vol > /data/f; echo in-bind > /hb/g; echo in-root > /rootf",
    ]);
    // As docker: the image has the (empty) mount points and the rootfs
    // change, not what the volume or bind hold.
    t.ok(&["commit", "cm", "cmimg:1"]);
    assert_eq!(
        t.ok(&[
            "run",
            "--rm",
            "cmimg:1",
            "sh",
            "-c",
            "ls -A /data /hb; cat /rootf"
        ]),
        "/data:\n\n/hb:\nin-root\n"
    );
    let mut diff: Vec<String> = t.ok(&["diff", "cm"]).lines().map(str::to_string).collect();
    diff.sort();
    assert_eq!(diff, ["A /data", "A /hb", "A /rootf"]);
    let out = t.env.pier().args(["export", "cm"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut names: Vec<String> = tar::Archive::new(out.stdout.as_slice())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .filter(|n| {
            let n = n.trim_start_matches("./");
            n.starts_with("data") || n.starts_with("hb") || n.starts_with("rootf")
        })
        .map(|n| n.trim_start_matches("./").trim_end_matches('/').to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["data", "hb", "rootf"]);
}

#[test]
fn volume_events_as_docker() {
    let t = setup();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let since = now();
    t.ok(&["volume", "create", "evv"]);
    t.ok(&["run", "--name", "evc", "-v", "evv:/d", "busybox", "true"]);
    let cid = t.inspect("evc", "{{.Id}}");
    t.ok(&["rm", "evc"]);
    t.ok(&["volume", "rm", "evv"]);
    let out = t.ok(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &(now() + 1).to_string(),
        "--filter",
        "type=volume",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}} \
         {{.Actor.Attributes.container}} {{.Actor.Attributes.destination}}",
    ]);
    // As docker: create, mount (with container and destination), unmount,
    // destroy; dockerd may repeat the create when run finds the volume.
    let mut lines: Vec<&str> = out.lines().collect();
    lines.dedup();
    assert_eq!(
        lines,
        [
            "volume create evv local <no value> <no value>".to_string(),
            format!("volume mount evv local {cid} /d"),
            format!("volume unmount evv local {cid} <no value>"),
            "volume destroy evv local <no value> <no value>".to_string(),
        ],
        "{out}"
    );
}
