//! Pull and push through pierd's Docker API against Debian's
//! docker-registry (CNCF distribution): images made in the test with
//! `write_oci_layout` and pushed with skopeo; pulled, run, pushed back,
//! pulled by another pier and by skopeo; layer reuse counted at the byte
//! level through a TCP proxy; htpasswd auth; the docker CLI against pierd.

mod pull_push_support;

use std::io::Write;
use std::process::Command;
use std::sync::atomic::Ordering;

use pier_testutil::oci_layout::{busybox_layer, write_oci_layout};
use pier_testutil::{skip, DockerRegistry};
use pull_push_support::*;

#[test]
fn pull_run_push_and_pull_back() {
    let Some(()) = peers() else { return };
    let reg = DockerRegistry::start().unwrap();
    let img = push_test_image(&reg, "test/bb", "v1", "hello from the registry\n");
    let name = format!("{}/test/bb", reg.addr);
    let env = new_env();

    let r = pull(&env, &name, "v1", None);
    r.assert_ok("first pull");
    let st = r.statuses();
    assert_eq!(st[0], "Pulling from test/bb", "{}", r.body);
    for want in [
        "Pulling fs layer",
        "Downloading",
        "Download complete",
        "Pull complete",
    ] {
        assert!(st.iter().any(|s| s == want), "no {want:?} in {}", r.body);
    }
    let lines = r.lines();
    let layer_ids: Vec<String> = img
        .layer_digests
        .iter()
        .map(|d| d[7..19].to_owned())
        .collect();
    for id in &layer_ids {
        assert!(
            lines
                .iter()
                .any(|l| l["id"] == id.as_str() && l["status"] == "Pull complete"),
            "layer {id} not completed: {}",
            r.body
        );
    }
    assert!(lines.iter().any(|l| l["status"] == "Downloading"
        && l["progressDetail"]["total"].as_u64() == Some(img.layer_sizes[0])
        && l["progress"].as_str().is_some_and(|p| p.starts_with('['))));
    assert!(
        st.contains(&format!("Digest: {}", img.manifest_digest)),
        "{}",
        r.body
    );
    assert_eq!(
        st.last().unwrap(),
        &format!("Status: Downloaded newer image for {name}:v1")
    );

    // Again: nothing to fetch.
    let r = pull(&env, &name, "v1", None);
    r.assert_ok("second pull");
    assert_eq!(
        r.statuses().last().unwrap(),
        &format!("Status: Image is up to date for {name}:v1")
    );
    assert_eq!(
        r.statuses()
            .iter()
            .filter(|s| *s == "Already exists")
            .count(),
        2
    );

    // It runs.
    let out = env.ok(&[
        "run",
        "--rm",
        &format!("{name}:v1"),
        "sh",
        "-c",
        "cat /etc/msg",
    ]);
    assert_eq!(out, "hello from the registry\n");

    // By digest.
    let r = pull(&env, &name, &img.manifest_digest, None);
    r.assert_ok("pull by digest");
    assert!(r
        .statuses()
        .contains(&format!("Digest: {}", img.manifest_digest)));
    env.ok(&[
        "image",
        "inspect",
        &format!("{name}@{}", img.manifest_digest),
    ]);

    // Push under another repository: the layers are mounted from test/bb.
    let copy = format!("{}/other/copy", reg.addr);
    env.ok(&["tag", &format!("{name}:v1"), &format!("{copy}:v2")]);
    let r = api(
        &env,
        "POST",
        &format!("/images/{copy}/push?tag=v2"),
        None,
        None,
    );
    r.assert_ok("push");
    let st = r.statuses();
    assert_eq!(st[0], format!("The push refers to repository [{copy}]"));
    assert_eq!(
        st.iter().filter(|s| *s == "Mounted from test/bb").count(),
        2,
        "{}",
        r.body
    );
    let size = std::fs::metadata(env.data_root.join(format!(
        "content/blobs/sha256/{}",
        &img.manifest_digest[7..]
    )))
    .unwrap()
    .len();
    assert!(
        st.contains(&format!("v2: digest: {} size: {size}", img.manifest_digest)),
        "{}",
        r.body
    );
    let aux = r
        .lines()
        .into_iter()
        .find(|l| l.get("aux").is_some())
        .unwrap();
    assert_eq!(aux["aux"]["Digest"], img.manifest_digest.as_str());
    assert_eq!(aux["aux"]["Tag"], "v2");

    // Pushing again: everything is there.
    let r = api(
        &env,
        "POST",
        &format!("/images/{copy}/push?tag=v2"),
        None,
        None,
    );
    r.assert_ok("second push");
    assert_eq!(
        r.statuses()
            .iter()
            .filter(|s| *s == "Layer already exists")
            .count(),
        2
    );

    // skopeo reads what pier pushed.
    let back = layout_dir();
    pier_testutil::run_ok(
        Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{copy}:v2"))
            .arg(format!("oci:{}:x", back.path().display())),
    );

    // Another pier (own data root) pulls it and runs it.
    let other = new_env();
    pull(&other, &copy, "v2", None).assert_ok("pull by another pier");
    let out = other.ok(&[
        "run",
        "--rm",
        &format!("{copy}:v2"),
        "sh",
        "-c",
        "cat /etc/msg",
    ]);
    assert_eq!(out, "hello from the registry\n");
}

#[test]
fn a_fresh_image_pushed_by_pier_is_pulled_by_skopeo() {
    let Some(()) = peers() else { return };
    let reg = DockerRegistry::start().unwrap();
    let env = new_env();
    let name = format!("{}/fresh/bb", reg.addr);
    env.import_busybox(&format!("{name}:1"));
    let r = api(
        &env,
        "POST",
        &format!("/images/{name}/push?tag=1"),
        None,
        None,
    );
    r.assert_ok("push of an imported image");
    assert!(r.statuses().iter().any(|s| s == "Pushed"), "{}", r.body);
    let back = layout_dir();
    pier_testutil::run_ok(
        Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{name}:1"))
            .arg(format!("oci:{}:x", back.path().display())),
    );
    let other = new_env();
    pull(&other, &name, "1", None).assert_ok("pull back");
    assert_eq!(
        other.ok(&["run", "--rm", &format!("{name}:1"), "sh", "-c", "echo ok"]),
        "ok\n"
    );
}

#[test]
fn errors_before_streaming_get_an_http_status() {
    let Some(()) = peers() else { return };
    let reg = DockerRegistry::start().unwrap();
    let env = new_env();
    let r = pull(&env, &format!("{}/no/such", reg.addr), "v1", None);
    assert_eq!(r.status, 404, "{}", r.body);
    let msg: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert!(
        msg["message"]
            .as_str()
            .unwrap()
            .contains("manifest unknown"),
        "{}",
        r.body
    );
    let r = pull(&env, "a..b", "", None);
    assert_eq!(r.status, 400, "{}", r.body);
    let r = api(&env, "POST", "/images/127.0.0.1:1/nothing/push", None, None);
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(
        r.body.contains("An image does not exist locally"),
        "{}",
        r.body
    );
    // A registry that is not there.
    let port = pier_testutil::registry::free_port();
    let r = pull(&env, &format!("127.0.0.1:{port}/x"), "v1", None);
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains("reachable"), "{}", r.body);
}

#[test]
fn a_pull_transfers_only_the_missing_layer() {
    let Some(()) = peers() else { return };
    let reg = DockerRegistry::start().unwrap();
    let layout = layout_dir();
    let base = [
        vec![random_file("l1", 700_000)],
        vec![random_file("l2", 600_000)],
    ];
    let a = write_oci_layout(
        layout.path(),
        "a",
        &[
            base[0].clone_files(),
            base[1].clone_files(),
            vec![random_file("a3", 300_000)],
        ],
        &["sh"],
    )
    .unwrap();
    let b = write_oci_layout(
        layout.path(),
        "b",
        &[
            base[0].clone_files(),
            base[1].clone_files(),
            vec![random_file("b3", 400_000)],
        ],
        &["sh"],
    )
    .unwrap();
    assert_eq!(a.layer_digests[..2], b.layer_digests[..2]);
    skopeo_copy(
        layout.path(),
        "a",
        &format!("{}/reuse/img:a", reg.addr),
        None,
    );
    skopeo_copy(
        layout.path(),
        "b",
        &format!("{}/reuse/img:b", reg.addr),
        None,
    );
    let proxy = CountingProxy::start(&reg.addr);
    let env = new_env();
    let name = format!("{}/reuse/img", proxy.addr);
    pull(&env, &name, "a", None).assert_ok("pull a");
    let first = proxy.served.swap(0, Ordering::SeqCst);
    assert!(first >= a.layer_sizes.iter().sum::<u64>(), "served {first}");
    let r = pull(&env, &name, "b", None);
    r.assert_ok("pull b");
    let second = proxy.served.load(Ordering::SeqCst);
    assert_eq!(
        r.statuses()
            .iter()
            .filter(|s| *s == "Already exists")
            .count(),
        2,
        "{}",
        r.body
    );
    let missing = b.layer_sizes[2];
    // The missing layer plus manifests, config and headers: far less than
    // either shared layer.
    assert!(second >= missing, "served {second} < layer {missing}");
    assert!(
        second < missing + 64 * 1024,
        "served {second} bytes for a {missing}-byte layer: shared layers were fetched again"
    );
}

#[test]
fn htpasswd_auth_login_pull_and_push() {
    let Some(()) = peers() else { return };
    if !pier_testutil::dockerd::have("htpasswd") {
        skip("htpasswd is not installed (apt-get install apache2-utils)");
        return;
    }
    let auth_dir = layout_dir();
    let htpasswd = auth_dir.path().join("htpasswd");
    let out = Command::new("htpasswd")
        .args(["-Bbn", "user", "s3cret"])
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::write(&htpasswd, &out.stdout).unwrap();
    let path_line = format!("    path: {}", htpasswd.display());
    let reg =
        DockerRegistry::start_with(&["auth:", "  htpasswd:", "    realm: pier-test", &path_line])
            .unwrap();
    let layout = layout_dir();
    write_oci_layout(layout.path(), "v1", &[busybox_layer().unwrap()], &["sh"]).unwrap();
    skopeo_copy(
        layout.path(),
        "v1",
        &format!("{}/priv/bb:v1", reg.addr),
        Some("user:s3cret"),
    );
    let env = new_env();
    let name = format!("{}/priv/bb", reg.addr);

    let r = pull(&env, &name, "v1", None);
    assert_eq!(r.status, 401, "{}", r.body);
    let login = |pass: &str| {
        let body = format!(
            r#"{{"username":"user","password":"{pass}","serveraddress":"{}"}}"#,
            reg.addr
        );
        api(&env, "POST", "/auth", None, Some(&body))
    };
    let bad = login("wrong");
    assert_eq!(bad.status, 401, "{}", bad.body);
    assert!(bad.body.contains("login attempt to"), "{}", bad.body);
    let good = login("s3cret");
    assert_eq!(good.status, 200, "{}", good.body);
    assert!(good.body.contains("Login Succeeded"), "{}", good.body);
    // The docker CLI logs in through pierd too.
    if pier_testutil::dockerd::have("docker") {
        let cfg = layout_dir();
        let out = Command::new("docker")
            .env("DOCKER_CONFIG", cfg.path())
            .arg("-H")
            .arg(format!(
                "unix://{}",
                env.exec_root.join("pier.sock").display()
            ))
            .args(["login", "-u", "user", "--password-stdin", &reg.addr])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin.take().unwrap().write_all(b"s3cret\n")?;
                c.wait_with_output()
            })
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("Login Succeeded"), "{text}");
    }

    let wrong = b64url(&format!(
        r#"{{"username":"user","password":"nope","serveraddress":"{}"}}"#,
        reg.addr
    ));
    assert_eq!(pull(&env, &name, "v1", Some(&wrong)).status, 401);
    let creds = b64url(&format!(
        r#"{{"username":"user","password":"s3cret","serveraddress":"{}"}}"#,
        reg.addr
    ));
    pull(&env, &name, "v1", Some(&creds)).assert_ok("pull with credentials");
    env.ok(&["tag", &format!("{name}:v1"), &format!("{name}:v2")]);
    let r = api(
        &env,
        "POST",
        &format!("/images/{name}/push?tag=v2"),
        Some(&creds),
        None,
    );
    r.assert_ok("push with credentials");
    let r = api(
        &env,
        "POST",
        &format!("/images/{name}/push?tag=v2"),
        None,
        None,
    );
    assert!(
        r.status == 401 || r.error().is_some_and(|e| e.contains("unauthorized")),
        "anonymous push went through: {}",
        r.body
    );
}

#[test]
fn the_docker_cli_pulls_through_pierd() {
    let Some(()) = peers() else { return };
    if !pier_testutil::dockerd::have("docker") {
        skip("the docker CLI is not installed (apt-get install docker.io)");
        return;
    }
    let reg = DockerRegistry::start().unwrap();
    push_test_image(&reg, "cli/bb", "v1", "via docker\n");
    let env = new_env();
    env.ok(&["images"]);
    let cfg = layout_dir();
    let docker = |args: &[&str]| {
        Command::new("docker")
            .env("DOCKER_CONFIG", cfg.path())
            .arg("-H")
            .arg(format!(
                "unix://{}",
                env.exec_root.join("pier.sock").display()
            ))
            .args(args)
            .output()
            .unwrap()
    };
    let out = docker(&["pull", &format!("{}/cli/bb:v1", reg.addr)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Downloaded newer image"), "{text}");
    assert!(text.contains("Pull complete"), "{text}");
    let out = env.ok(&[
        "run",
        "--rm",
        &format!("{}/cli/bb:v1", reg.addr),
        "sh",
        "-c",
        "cat /etc/msg",
    ]);
    assert_eq!(out, "via docker\n");
    // docker push through pierd, to another repository.
    env.ok(&[
        "tag",
        &format!("{}/cli/bb:v1", reg.addr),
        &format!("{}/cli/pushed:v1", reg.addr),
    ]);
    let out = docker(&["push", &format!("{}/cli/pushed:v1", reg.addr)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("v1: digest: sha256:"), "{text}");
    pier_testutil::run_ok(
        Command::new("skopeo")
            .args(["inspect", "--tls-verify=false"])
            .arg(format!("docker://{}/cli/pushed:v1", reg.addr)),
    );
}

#[test]
fn the_progress_stream_has_dockerds_shape() {
    let Some(()) = peers() else { return };
    if !pier_testutil::dockerd::ensure(&["dockerd", "docker"], "docker.io") {
        skip("dockerd is not installed (apt-get install docker.io)");
        return;
    }
    let reg = DockerRegistry::start().unwrap();
    push_test_image(&reg, "shape/bb", "v1", "shape\n");
    let name = format!("{}/shape/bb", reg.addr);
    let dir = layout_dir();
    let dockerd = pier_testutil::dockerd::Dockerd::start(dir.path()).unwrap();
    let theirs = api_at(
        &dockerd.sock,
        "POST",
        &format!("/images/create?fromImage={name}&tag=v1"),
        None,
        None,
    );
    theirs.assert_ok("dockerd pull");
    let env = new_env();
    let ours = pull(&env, &name, "v1", None);
    ours.assert_ok("pier pull");
    // The same lines outside the layers, in the same order.
    let top = |r: &Api| -> Vec<(String, String)> {
        r.lines()
            .iter()
            .filter(|l| {
                l["status"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("Pulling from") || l.get("id").is_none())
            })
            .map(|l| {
                (
                    l["status"].as_str().unwrap_or("").to_owned(),
                    l["id"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(
        top(&ours),
        top(&theirs),
        "pier:\n{}\ndockerd:\n{}",
        ours.body,
        theirs.body
    );
    let shape = layer_shape(&theirs);
    assert_eq!(shape.len(), 2, "{}", theirs.body);
    assert!(shape
        .values()
        .all(|v| v.last().map(String::as_str) == Some("Pull complete")));
    // dockerd coalesces its progress output: a fast layer may lack its
    // "Downloading", "Verifying Checksum" or "Extracting" lines. So each of
    // its per-layer sequences must be found, in order, in pier's, and
    // pier's are complete.
    let mine = layer_shape(&ours);
    assert_eq!(
        mine.keys().collect::<Vec<_>>(),
        shape.keys().collect::<Vec<_>>(),
        "{}",
        ours.body
    );
    for (id, theirs_steps) in &shape {
        let mut it = mine[id].iter();
        assert!(
            theirs_steps.iter().all(|st| it.any(|m| m == st)),
            "layer {id}: dockerd's {theirs_steps:?} is not in pier's {:?}",
            mine[id]
        );
    }
    let full = [
        "Pulling fs layer",
        "Downloading",
        "Verifying Checksum",
        "Download complete",
        "Extracting",
        "Pull complete",
    ];
    for v in mine.values() {
        assert_eq!(v, &full, "{}", ours.body);
    }
    // Where both report the same byte counts, the bars read the same.
    let bars = |r: &Api| -> Vec<(u64, u64, String)> {
        r.lines()
            .iter()
            .filter_map(|l| {
                Some((
                    l["progressDetail"]["current"].as_u64()?,
                    l["progressDetail"]["total"].as_u64()?,
                    l["progress"].as_str()?.to_owned(),
                ))
            })
            .collect()
    };
    let ours_bars = bars(&ours);
    let mut compared = 0;
    for (c, t, bar) in bars(&theirs) {
        if let Some((_, _, mine)) = ours_bars.iter().find(|(a, b, _)| (*a, *b) == (c, t)) {
            assert_eq!(mine, &bar);
            compared += 1;
        }
    }
    assert!(
        compared > 0,
        "no common progress line:\n{}\n{}",
        ours.body,
        theirs.body
    );
    // Up to date, both.
    let theirs = api_at(
        &dockerd.sock,
        "POST",
        &format!("/images/create?fromImage={name}&tag=v1"),
        None,
        None,
    );
    let ours = pull(&env, &name, "v1", None);
    assert_eq!(
        top(&ours),
        top(&theirs),
        "pier:\n{}\ndockerd:\n{}",
        ours.body,
        theirs.body
    );
    // And an unknown tag: the same status code.
    let theirs = api_at(
        &dockerd.sock,
        "POST",
        &format!("/images/create?fromImage={name}&tag=nope"),
        None,
        None,
    );
    let ours = pull(&env, &name, "nope", None);
    assert_eq!(
        ours.status, theirs.status,
        "pier: {}\ndockerd: {}",
        ours.body, theirs.body
    );
}

#[test]
fn all_tags_are_pulled_and_pushed_without_a_tag() {
    let Some(()) = peers() else { return };
    let reg = DockerRegistry::start().unwrap();
    let a = push_test_image(&reg, "many/bb", "one", "1\n");
    let b = push_test_image(&reg, "many/bb", "two", "2\n");
    let name = format!("{}/many/bb", reg.addr);
    let env = new_env();
    let r = pull(&env, &name, "", None);
    r.assert_ok("all-tags pull");
    let st = r.statuses();
    assert!(
        st.contains(&format!("Digest: {}", a.manifest_digest)),
        "{}",
        r.body
    );
    assert!(
        st.contains(&format!("Digest: {}", b.manifest_digest)),
        "{}",
        r.body
    );
    assert_eq!(
        st.last().unwrap(),
        &format!("Status: Downloaded newer image for {name}")
    );
    for (t, msg) in [("one", "1\n"), ("two", "2\n")] {
        let out = env.ok(&[
            "run",
            "--rm",
            &format!("{name}:{t}"),
            "sh",
            "-c",
            "cat /etc/msg",
        ]);
        assert_eq!(out, msg);
    }
    // Push every local tag of another repository.
    let other = format!("{}/many/copy", reg.addr);
    env.ok(&["tag", &format!("{name}:one"), &format!("{other}:one")]);
    env.ok(&["tag", &format!("{name}:two"), &format!("{other}:two")]);
    let r = api(&env, "POST", &format!("/images/{other}/push"), None, None);
    r.assert_ok("all-tags push");
    let st = r.statuses();
    assert_eq!(
        st.iter()
            .filter(|s| s.starts_with("The push refers to"))
            .count(),
        1
    );
    assert!(
        st.iter().any(|s| s.starts_with("one: digest: ")),
        "{}",
        r.body
    );
    assert!(
        st.iter().any(|s| s.starts_with("two: digest: ")),
        "{}",
        r.body
    );
}

/// pierd reads daemon.json's registry settings (`PIER_CONFIG_FILE`, else
/// /etc/pier/daemon.json) and reports them in /info as dockerd does; a
/// file it cannot use stops it with a message naming the file.
#[test]
fn pierd_takes_insecure_registries_from_its_config_file() {
    let Some(()) = peers() else { return };
    let env = new_env();
    let file = env.dir.path().join("daemon.json");
    std::fs::write(
        &file,
        r#"{"insecure-registries": ["reg.pier-test.invalid:5000", "10.99.0.0/16"],
            "max-concurrent-downloads": 2}"#,
    )
    .unwrap();
    env.pier()
        .env("PIER_CONFIG_FILE", &file)
        .arg("images")
        .output()
        .unwrap();
    let info = api(&env, "GET", "/info", None, None);
    assert_eq!(info.status, 200, "{}", info.body);
    let v: serde_json::Value = serde_json::from_str(&info.body).unwrap();
    let reg = &v["RegistryConfig"];
    assert_eq!(
        reg["IndexConfigs"]["reg.pier-test.invalid:5000"]["Secure"], false,
        "{reg}"
    );
    assert_eq!(reg["IndexConfigs"]["docker.io"]["Secure"], true, "{reg}");
    assert!(
        reg["InsecureRegistryCIDRs"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("10.99.0.0/16")),
        "{reg}"
    );

    // An unknown key: pierd refuses to start and says why.
    let bad_env = new_env();
    let bad = bad_env.dir.path().join("daemon.json");
    std::fs::write(&bad, r#"{"insecure-registry": ["x"]}"#).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pierd"))
        .env("PIER_DATA_ROOT", &bad_env.data_root)
        .env("PIER_BRIDGE", "none")
        .env("PIER_EXEC_ROOT", &bad_env.exec_root)
        .env("PIER_CONFIG_FILE", &bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field `insecure-registry`"), "{err}");
    assert!(err.contains(&bad.display().to_string()), "{err}");
}
