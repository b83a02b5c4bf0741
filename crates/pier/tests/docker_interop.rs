//! Interchange with Docker and skopeo. Each test is skipped, with a
//! message saying why, when the peer is not installed or cannot run
//! (set PIER_TEST_INSTALL_DOCKER=1 to let the test `apt-get install
//! docker.io skopeo`). dockerd runs with its own data root, exec root and
//! socket in the test's temporary directory, without a bridge or iptables.

use pier_testutil::dockerd::{ensure, have, Dockerd};
use pier_testutil::PierEnv;
use std::path::Path;
use std::process::Command;

fn env() -> PierEnv {
    PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")))
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn docker_save_loads_into_pier_and_pier_save_loads_into_docker() {
    if !ensure(&["dockerd", "docker"], "docker.io") {
        pier_testutil::skip("dockerd/docker not installed (apt-get install docker.io, or set PIER_TEST_INSTALL_DOCKER=1)");
        return;
    }
    let env = env();
    let dockerd = match Dockerd::start(env.dir.path()) {
        Ok(d) => d,
        Err(why) => {
            pier_testutil::skip(&format!("dockerd cannot run on this machine: {why}"));
            return;
        }
    };
    // An image built by Docker: imported busybox plus a RUN layer.
    let bb = env.dir.path().join("busybox.tar");
    pier_testutil::write_busybox_tar(&bb).unwrap();
    dockerd.ok(&["import", p(&bb), "interop-base:1"]);
    let ctx = env.dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM interop-base:1\nRUN echo built-by-docker > /built\nENV GREETING=hello\nCMD [\"cat\", \"/built\"]\n",
    )
    .unwrap();
    dockerd.ok(&["build", "-q", "-t", "interop:docker", p(&ctx)]);
    let docker_id = dockerd.ok(&["image", "inspect", "-f", "{{.Id}}", "interop:docker"]);

    // docker save -> pier load -> pier run.
    let dtar = env.dir.path().join("from-docker.tar");
    dockerd.ok(&["save", "-o", p(&dtar), "interop:docker"]);
    assert_eq!(
        env.ok(&["load", "-i", p(&dtar)]).trim(),
        "Loaded image: interop:docker"
    );
    assert_eq!(
        env.ok(&["images", "-q", "--no-trunc", "interop"]).trim(),
        docker_id.trim()
    );
    assert_eq!(
        env.ok(&["run", "--rm", "interop:docker"]).trim(),
        "built-by-docker"
    );
    assert_eq!(
        env.ok(&[
            "run",
            "--rm",
            "interop:docker",
            "sh",
            "-c",
            "echo $GREETING"
        ])
        .trim(),
        "hello"
    );

    // pier commit -> pier save -> docker load -> docker run.
    env.ok(&[
        "run",
        "--name",
        "mk",
        "interop:docker",
        "sh",
        "-c",
        "echo made-by-pier > /pier; rm /built",
    ]);
    let pier_id = env.ok(&["commit", "mk", "interop:pier"]);
    let ptar = env.dir.path().join("from-pier.tar");
    env.ok(&["save", "-o", p(&ptar), "interop:pier"]);
    let out = dockerd.ok(&["load", "-i", p(&ptar)]);
    assert!(out.contains("interop:pier"), "{out}");
    let loaded = dockerd.ok(&["image", "inspect", "-f", "{{.Id}}", "interop:pier"]);
    assert_eq!(loaded.trim(), pier_id.trim());
    let out = dockerd.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "interop:pier",
        "sh",
        "-c",
        "cat /pier; test -e /built && echo still-there || echo removed",
    ]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["made-by-pier", "removed"]);
}

#[test]
fn skopeo_reads_pier_save_and_pier_loads_skopeo_oci_layouts() {
    if !ensure(&["skopeo"], "skopeo") {
        pier_testutil::skip(
            "skopeo not installed (apt-get install skopeo, or set PIER_TEST_INSTALL_DOCKER=1)",
        );
        return;
    }
    let env = env();
    env.import_busybox("busybox");
    env.ok(&[
        "run",
        "--name",
        "mk",
        "busybox",
        "sh",
        "-c",
        "echo layer2 > /l2",
    ]);
    let id = env.ok(&["commit", "mk", "sk:1"]);
    let tar = env.dir.path().join("sk.tar");
    env.ok(&["save", "-o", p(&tar), "sk:1"]);
    // pier's archive is an OCI layout: skopeo reads it as oci:DIR.
    let layout = env.dir.path().join("layout");
    std::fs::create_dir(&layout).unwrap();
    let st = Command::new("tar")
        .args(["-xf", p(&tar), "-C", p(&layout)])
        .status()
        .unwrap();
    assert!(st.success());
    let out = pier_testutil::run_ok(Command::new("skopeo").args([
        "inspect",
        "--config",
        &format!("oci:{}", p(&layout)),
    ]));
    let cfg: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    // skopeo writes an OCI layout (gzip layers, new manifest); pier loads it.
    let copy = env.dir.path().join("copy");
    pier_testutil::run_ok(Command::new("skopeo").args([
        "copy",
        &format!("oci:{}", p(&layout)),
        &format!("oci:{}:example.com/sk:2", p(&copy)),
    ]));
    let ctar = env.dir.path().join("copy.tar");
    let st = Command::new("tar")
        .args(["-cf", p(&ctar), "-C", p(&copy), "."])
        .status()
        .unwrap();
    assert!(st.success());
    let other = self::env();
    assert_eq!(
        other.ok(&["load", "-i", p(&ctar)]).trim(),
        "Loaded image: example.com/sk:2"
    );
    assert_eq!(other.ok(&["images", "-q", "--no-trunc"]).trim(), id.trim());
    assert_eq!(
        other
            .ok(&["run", "--rm", "example.com/sk:2", "cat", "/l2"])
            .trim(),
        "layer2"
    );
}

#[test]
fn the_docker_cli_drives_pierd_image_endpoints() {
    if !have("docker") {
        pier_testutil::skip("the docker CLI is not installed");
        return;
    }
    let env = env();
    env.import_busybox("busybox");
    let host = format!("unix://{}", env.exec_root.join("pier.sock").display());
    let docker = |args: &[&str]| -> String {
        let out = Command::new("docker")
            .env("DOCKER_HOST", &host)
            .env("DOCKER_CONFIG", env.dir.path().join("docker-config"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    docker(&["tag", "busybox", "other/bb:2"]);
    let list = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        list.contains("other/bb:2") && list.contains("busybox:latest"),
        "{list}"
    );
    assert_eq!(
        docker(&["image", "inspect", "-f", "{{.Os}}", "other/bb:2"]).trim(),
        "linux"
    );
    assert!(docker(&["history", "-q", "busybox"]).lines().count() >= 1);
    let tar = env.dir.path().join("via-docker-cli.tar");
    docker(&["save", "-o", p(&tar), "other/bb:2"]);
    let out = docker(&["rmi", "other/bb:2"]);
    assert!(out.contains("Untagged: other/bb:2"), "{out}");
    let out = docker(&["load", "-i", p(&tar)]);
    assert!(out.contains("Loaded image: other/bb:2"), "{out}");
    assert!(docker(&["system", "df"]).starts_with("TYPE"));
}
