//! The image commands end to end through the CLI: save/load, commit, diff,
//! export, images (flags, filters, formats), inspect, history, tag, rmi,
//! image prune, system df, and layers shared on disk.

use pier_testutil::PierEnv;
use std::path::Path;

fn env() -> PierEnv {
    PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")))
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// busybox, plus a two-layer image `app:v1` committed from a container.
fn two_images(env: &PierEnv) -> String {
    env.import_busybox("busybox");
    env.ok(&[
        "run",
        "--name",
        "mk",
        "busybox",
        "sh",
        "-c",
        "echo app > /app.txt; rm /bin/vi",
    ]);
    let id = env.ok(&["commit", "-m", "add app", "mk", "app:v1"]);
    env.ok(&["rm", "mk"]);
    id.trim().to_string()
}

#[test]
fn commit_diff_export_then_run_the_new_image() {
    let env = env();
    env.import_busybox("busybox");
    env.ok(&[
        "run",
        "--name",
        "cc",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /srv/d && echo hi > /srv/d/f && rm /bin/vi && echo x >> /etc/passwd",
    ]);
    let diff = env.ok(&["diff", "cc"]);
    let lines: Vec<&str> = diff.lines().collect();
    for want in [
        "A /srv",
        "A /srv/d/f",
        "C /bin",
        "D /bin/vi",
        "C /etc",
        "C /etc/passwd",
    ] {
        assert!(lines.contains(&want), "{want:?} missing from:\n{diff}");
    }
    assert!(
        !diff.contains("/etc/hostname") && !diff.contains("/proc"),
        "{diff}"
    );

    let id = env.ok(&["commit", "-m", "msg", "-a", "me", "cc", "mine:v2"]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let out = env.ok(&[
        "run",
        "--rm",
        "mine:v2",
        "sh",
        "-c",
        "cat /srv/d/f; ls /bin/vi || echo gone",
    ]);
    assert!(out.contains("hi") && out.contains("gone"), "{out}");
    let hist = env.ok(&["history", "mine:v2"]);
    assert_eq!(hist.lines().count(), 3, "{hist}");
    assert!(hist.lines().nth(1).unwrap().contains("msg"), "{hist}");
    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["image", "inspect", "mine:v2"])).unwrap();
    assert_eq!(inspect[0]["Author"], "me");
    assert_eq!(inspect[0]["RootFS"]["Layers"].as_array().unwrap().len(), 2);

    let tar = env.dir.path().join("export.tar");
    env.ok(&["export", "-o", p(&tar), "cc"]);
    let mut names = Vec::new();
    for e in tar::Archive::new(std::fs::File::open(&tar).unwrap())
        .entries()
        .unwrap()
    {
        names.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
    }
    assert!(names.iter().any(|n| n == "srv/d/f"), "{names:?}");
    assert!(names.iter().any(|n| n == "bin/sh"), "{names:?}");
    assert!(
        !names.iter().any(|n| n == "bin/vi" || n.contains(".wh.")),
        "{names:?}"
    );
}

#[test]
fn save_then_load_into_another_daemon_and_run() {
    let a = env();
    let id = two_images(&a);
    let tar = a.dir.path().join("app.tar");
    a.ok(&["save", "-o", p(&tar), "app:v1"]);
    let b = env();
    let out = b.ok(&["load", "-i", p(&tar)]);
    assert_eq!(out.trim(), "Loaded image: app:v1");
    assert_eq!(b.ok(&["images", "-q", "--no-trunc"]).trim(), id);
    assert_eq!(
        b.ok(&["run", "--rm", "app:v1", "cat", "/app.txt"]).trim(),
        "app"
    );
    // Quiet, from stdin, and again (idempotent).
    let out = b
        .pier()
        .args(["load", "-q"])
        .stdin(std::fs::File::open(&tar).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    // Save to stdout, by ID: loads untagged.
    let out = a.pier().args(["save", &id[7..19]]).output().unwrap();
    assert!(out.status.success());
    let c = env();
    let by_id = c.dir.path().join("by-id.tar");
    std::fs::write(&by_id, &out.stdout).unwrap();
    assert_eq!(
        c.ok(&["load", "-i", p(&by_id)]).trim(),
        format!("Loaded image ID: {id}")
    );
    // Not an archive: a clear error, exit 1, nothing loaded.
    let junk = c.dir.path().join("junk.tar");
    std::fs::write(&junk, b"this is not a tar").unwrap();
    let out = c.run(&["load", "-i", p(&junk)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!out.stderr.is_empty());
    assert_eq!(c.ok(&["images", "-q"]).lines().count(), 1);
    let out = a.run(&["save", "-o", p(&a.dir.path().join("x.tar")), "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such image"));
}

#[test]
fn images_flags_filters_and_formats() {
    let env = env();
    two_images(&env);
    env.ok(&["tag", "app:v1", "example.com/team/app:latest"]);
    let f = env.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut got: Vec<&str> = f.lines().collect();
    got.sort();
    assert_eq!(
        got,
        ["app:v1", "busybox:latest", "example.com/team/app:latest"]
    );
    let f = env.ok(&[
        "images",
        "--filter",
        "reference=app",
        "--format",
        "{{.Repository}}",
    ]);
    assert_eq!(f.trim(), "app");
    let f = env.ok(&["images", "app", "--format", "{{.Tag}}"]);
    assert_eq!(f.trim(), "v1");
    let f = env.ok(&["images", "-f", "since=busybox", "-q"]);
    assert_eq!(f.lines().count(), 1, "{f}");
    let f = env.ok(&[
        "images",
        "-f",
        "before=app:v1",
        "--format",
        "{{.Repository}}",
    ]);
    assert_eq!(f.trim(), "busybox");
    assert_eq!(env.ok(&["images", "-f", "dangling=true", "-q"]), "");
    let t = env.ok(&["images", "--digests"]);
    assert!(t.lines().next().unwrap().contains("DIGEST"), "{t}");
    assert!(t.contains("sha256:"), "{t}");
    let t = env.ok(&["images", "--format", "table {{.Repository}}\\t{{.ID}}"]);
    assert!(t.starts_with("REPOSITORY"), "{t}");
    assert!(t.lines().next().unwrap().contains("IMAGE ID"), "{t}");
    let out = env.run(&["images", "-f", "bogus=1"]);
    assert_eq!(out.status.code(), Some(1));
    let ins = env.ok(&[
        "image",
        "inspect",
        "-f",
        "{{.Os}} {{json .RepoTags}}",
        "app:v1",
    ]);
    assert_eq!(
        ins.trim(),
        r#"linux ["app:v1","example.com/team/app:latest"]"#
    );
    let out = env.run(&["image", "inspect", "nope"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn rmi_and_prune_follow_docker_rules() {
    let env = env();
    let app = two_images(&env);
    env.ok(&["tag", "app:v1", "app:extra"]);
    // Two tags: removing one only untags.
    assert_eq!(env.ok(&["rmi", "app:extra"]).trim(), "Untagged: app:extra");
    // Used by a container: refused unless forced.
    env.ok(&["run", "--name", "user", "app:v1", "true"]);
    let out = env.run(&["rmi", "app:v1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must force"),
        "{out:?}"
    );
    let out = env.run(&["rmi", &app[7..19]]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stopped container"),
        "{out:?}"
    );
    assert_eq!(env.ok(&["rmi", "-f", "app:v1"]).trim(), "Untagged: app:v1");
    // Dangling but in use: prune keeps it; once the container is gone it goes.
    let out = env.ok(&["image", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space: 0B"), "{out}");
    env.ok(&["rm", "user"]);
    assert_eq!(
        env.ok(&["images", "-f", "dangling=true", "-q"]).trim(),
        &app[7..19]
    );
    let out = env.ok(&["image", "prune", "-f"]);
    assert!(out.contains(&format!("deleted: {app}")), "{out}");
    assert!(!out.contains("Total reclaimed space: 0B"), "{out}");
    // -a removes unused tagged images too; blobs and snapshots go with them.
    let out = env.ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains("untagged: busybox:latest"), "{out}");
    assert_eq!(env.ok(&["images", "-q"]), "");
    let snaps = std::fs::read_dir(env.data_root.join("snapshots"))
        .unwrap()
        .count();
    let blobs = std::fs::read_dir(env.data_root.join("content/blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!((snaps, blobs), (0, 0));
    let out = env.run(&["rmi", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such image"));
}

/// Disk use in KiB as `du -sk` reports it.
fn du_k(path: &Path) -> u64 {
    let out = std::process::Command::new("du")
        .args(["-sk", p(path)])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn two_images_sharing_a_base_layer_store_and_unpack_it_once() {
    let env = env();
    env.import_busybox("busybox");
    let snaps = env.data_root.join("snapshots");
    let one = du_k(&snaps);
    for (name, file) in [("a:1", "/a"), ("b:1", "/b")] {
        env.ok(&[
            "run",
            "--name",
            "mk",
            "busybox",
            "sh",
            "-c",
            &format!("echo x > {file}"),
        ]);
        env.ok(&["commit", "mk", name]);
        env.ok(&["rm", "mk"]);
    }
    let three = du_k(&snaps);
    // The busybox layer (about 2 MB) is there once; each image adds a few KiB.
    assert!(one > 1000, "busybox snapshot is {one} KiB");
    assert!(three - one < 100, "du grew from {one} KiB to {three} KiB");
    assert_eq!(std::fs::read_dir(&snaps).unwrap().count(), 3);
    let layers = |n: &str| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&env.ok(&["image", "inspect", n])).unwrap();
        serde_json::from_value(v[0]["RootFS"]["Layers"].clone()).unwrap()
    };
    assert_eq!(layers("a:1")[0], layers("b:1")[0]);
    let df = env.ok(&["system", "df"]);
    assert!(df.starts_with("TYPE"), "{df}");
    assert!(df.lines().nth(1).unwrap().starts_with("Images"), "{df}");
}

#[test]
fn a_daemon_killed_during_load_leaves_a_consistent_store() {
    let a = env();
    a.import_busybox("busybox");
    a.ok(&[
        "run",
        "--name",
        "mk",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/urandom of=/big bs=1M count=64 2>/dev/null",
    ]);
    a.ok(&["commit", "mk", "big:1"]);
    let tar = a.dir.path().join("big.tar");
    a.ok(&["save", "-o", p(&tar), "big:1"]);

    let b = env();
    b.ok(&["images"]); // starts pierd
                       // Slow the upload down so the kill lands mid-stream.
    let mut load = b
        .pier()
        .args(["load"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = load.stdin.take().unwrap();
    let data = std::fs::read(&tar).unwrap();
    let half = data.len() / 2;
    use std::io::Write;
    stdin.write_all(&data[..half]).unwrap();
    let ingest = b.data_root.join("content/ingest");
    let t = std::time::Instant::now();
    while std::fs::read_dir(&ingest).unwrap().count() == 0 && t.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    b.kill_daemon();
    drop(stdin);
    let _ = load.wait();
    // The next command starts a new pierd, which cleans what the crash left.
    assert_eq!(b.ok(&["images", "-q"]), "");
    assert_eq!(std::fs::read_dir(&ingest).unwrap().count(), 0);
    let tmp: Vec<_> = std::fs::read_dir(b.data_root.join("snapshots"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("tmp-")
        })
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
    // And loading again works.
    assert_eq!(b.ok(&["load", "-i", p(&tar)]).trim(), "Loaded image: big:1");
    assert_eq!(
        b.ok(&["run", "--rm", "big:1", "sh", "-c", "wc -c < /big"])
            .trim(),
        "67108864"
    );
    // Unreferenced blobs a crash may leave are collected by the next prune.
    b.ok(&["rmi", "big:1"]);
    b.ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(
        std::fs::read_dir(b.data_root.join("content/blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
}
