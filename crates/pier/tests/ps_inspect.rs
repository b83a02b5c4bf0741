//! `pier ps`, `pier inspect` and `pier container prune` through the CLI:
//! docker's columns, filters, `--format` templates and sizes; docker's
//! inspect document (its keys compared with a private dockerd's when one
//! can run); prune removing only stopped containers.

use pier_testutil::dockerd::{ensure, Dockerd};
use pier_testutil::PierEnv;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

fn env() -> PierEnv {
    let env = PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")));
    env.import_busybox("busybox");
    env
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

/// One running container ("runner", label tier=web) and two finished ones
/// ("ok" exit 0, "bad" exit 3 with label tier=db), created in that order.
fn three(env: &PierEnv) -> (String, String, String) {
    let ok = env.ok(&["run", "--name", "ok", "busybox", "true"]);
    assert_eq!(ok, "");
    let bad = env.run(&[
        "run", "--name", "bad", "-l", "tier=db", "busybox", "sh", "-c", "exit 3",
    ]);
    assert_eq!(bad.status.code(), Some(3), "{}", text(&bad.stderr));
    let runner = env.ok(&[
        "run", "-d", "--name", "runner", "-l", "tier=web", "busybox", "sleep", "1000",
    ]);
    let id = |n: &str| env.ok(&["inspect", "-f", "{{.Id}}", n]).trim().to_string();
    (runner.trim().to_string(), id("ok"), id("bad"))
}

#[test]
fn ps_lists_running_containers_and_all_with_a() {
    let env = env();
    let (runner, ok, bad) = three(&env);
    let (runner, ok, bad) = (runner.as_str(), ok.as_str(), bad.as_str());
    let out = env.ok(&["ps"]);
    let rows = lines(&out);
    // As docker: the header, then one row per running container.
    assert_eq!(rows.len(), 2, "{out}");
    for col in [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ] {
        assert!(rows[0].contains(col), "no {col} column: {}", rows[0]);
    }
    assert!(rows[1].starts_with(&runner[..12]), "{}", rows[1]);
    assert!(rows[1].contains("\"sleep 1000\""), "{}", rows[1]);
    assert!(rows[1].contains("Up "), "{}", rows[1]);
    assert!(rows[1].ends_with("runner"), "{}", rows[1]);

    // Newest first.
    assert_eq!(
        lines(&env.ok(&["ps", "-a", "-q"])),
        [&runner[..12], &bad[..12], &ok[..12]]
    );
    assert_eq!(
        lines(&env.ok(&["ps", "-a", "-q", "--no-trunc"])),
        [runner, bad, ok]
    );
    assert_eq!(lines(&env.ok(&["ps", "-q"])), [&runner[..12]]);
    // -n and -l include stopped containers, as docker.
    assert_eq!(
        lines(&env.ok(&["ps", "-n", "2", "-q"])),
        [&runner[..12], &bad[..12]]
    );
    assert_eq!(lines(&env.ok(&["ps", "-l", "-q"])), [&runner[..12]]);
    let all = env.ok(&["ps", "-a"]);
    assert!(all.contains("Exited (3) "), "{all}");
    assert!(all.contains("Exited (0) "), "{all}");
    // `container ls` is the same command.
    assert_eq!(
        env.ok(&["container", "ls", "-a", "-q"]),
        env.ok(&["ps", "-aq"])
    );
}

#[test]
fn ps_filters_as_docker() {
    let env = env();
    let (runner, ok, bad) = three(&env);
    let (runner, ok, bad) = (runner.as_str(), ok.as_str(), bad.as_str());
    let q = |filters: &[&str]| {
        let mut args = vec!["ps", "-a", "-q", "--no-trunc"];
        for f in filters {
            args.push("--filter");
            args.push(f);
        }
        lines(&env.ok(&args))
    };
    assert_eq!(q(&["status=exited"]), [bad, ok]);
    assert_eq!(q(&["status=running"]), [runner]);
    assert_eq!(q(&["exited=3"]), [bad]);
    assert_eq!(q(&["exited=0"]), [ok]);
    assert_eq!(q(&["label=tier"]), [runner, bad]);
    assert_eq!(q(&["label=tier=db"]), [bad]);
    // Different keys must all match; values of one key are alternatives.
    assert_eq!(q(&["label=tier", "status=exited"]), [bad]);
    assert_eq!(q(&["name=ok", "name=bad"]), [bad, ok]);
    assert_eq!(q(&["name=^run"]), [runner]);
    assert_eq!(q(&[&format!("id={}", &ok[..8])]), [ok]);
    assert_eq!(q(&["ancestor=busybox"]), [runner, bad, ok]);
    assert!(q(&["ancestor=no-such-image"]).is_empty());
    assert_eq!(q(&["before=bad"]), [ok]);
    assert_eq!(q(&["since=ok"]), [runner, bad]);
    assert_eq!(q(&["health=none"]).len(), 3);
    assert!(q(&["health=healthy"]).is_empty());
    // pier containers are on docker's "none" network unless on the host's.
    assert_eq!(q(&["network=none"]).len(), 3);
    assert!(q(&["network=host"]).is_empty());
    // A status filter lists stopped containers without -a, as docker.
    assert_eq!(
        lines(&env.ok(&["ps", "-q", "--no-trunc", "--filter", "status=exited"])),
        [bad, ok]
    );
    for (filter, message) in [
        ("bogus=1", "Invalid filter 'bogus'"),
        ("status=sleepy", "Invalid filter 'status=sleepy'"),
        ("before=no-such-box", "no such container no-such-box"),
    ] {
        let out = env.run(&["ps", "--filter", filter]);
        assert_eq!(out.status.code(), Some(1), "{filter}");
        assert!(
            text(&out.stderr).contains(&format!("Error response from daemon: {message}")),
            "{filter}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn ps_format_templates_and_sizes() {
    let env = env();
    let (runner, _ok, _bad) = three(&env);
    let runner = runner.as_str();
    assert_eq!(
        lines(&env.ok(&["ps", "-a", "--format", "{{.Names}}:{{.State}}:{{.Labels}}"])),
        [
            "runner:running:tier=web",
            "bad:exited:tier=db",
            "ok:exited:"
        ]
    );
    // docker's `.Label "key"`.
    assert_eq!(
        lines(&env.ok(&["ps", "-a", "--format", "{{.Names}}={{.Label \"tier\"}}"])),
        ["runner=web", "bad=db", "ok="]
    );
    let table = env.ok(&["ps", "--format", "table {{.ID}}\t{{.Names}}\t{{.Command}}"]);
    let rows = lines(&table);
    assert_eq!(rows.len(), 2, "{table}");
    assert!(rows[0].starts_with("CONTAINER ID") && rows[0].contains("NAMES"));
    assert!(rows[0].contains("COMMAND"));
    assert!(rows[1].starts_with(&runner[..12]) && rows[1].contains("runner"));
    // As docker: the command quoted, cut at 20 characters with "…".
    env.ok(&[
        "run",
        "--name",
        "long",
        "busybox",
        "sh",
        "-c",
        "echo a rather long command line",
    ]);
    let f = [
        "ps",
        "-a",
        "--filter",
        "name=long",
        "--format",
        "{{.Command}}",
    ];
    assert_eq!(env.ok(&f).trim(), "\"sh -c 'echo a rathe…\"");
    let f = [
        "ps",
        "-a",
        "--no-trunc",
        "--filter",
        "name=long",
        "--format",
        "{{.Command}}",
    ];
    assert_eq!(
        env.ok(&f).trim(),
        "\"sh -c 'echo a rather long command line'\""
    );
    // -s: the writable layer's size and the image's with it.
    env.ok(&[
        "run",
        "--name",
        "writer",
        "busybox",
        "sh",
        "-c",
        "head -c 5000 /dev/zero > /data",
    ]);
    let sized = env.ok(&["ps", "-a", "-s", "--filter", "name=writer"]);
    let rows = lines(&sized);
    assert!(rows[0].trim_end().ends_with("SIZE"), "{sized}");
    assert!(rows[1].contains("5kB (virtual "), "{sized}");
    let json = env.ok(&["ps", "-a", "--filter", "name=writer", "--format", "json"]);
    let v: Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["Names"], "writer");
    assert!(
        v["Size"].as_str().unwrap().starts_with("5kB (virtual "),
        "{v}"
    );
}

#[test]
fn inspect_shows_docker_keys_and_formats_templates() {
    let env = env();
    let (runner, ok, bad) = three(&env);
    let (runner, ok, bad) = (runner.as_str(), ok.as_str(), bad.as_str());
    let v: Value = serde_json::from_str(&env.ok(&["inspect", "bad"])).unwrap();
    let c = &v[0];
    assert_eq!(c["Id"], bad);
    assert_eq!(c["Name"], "/bad");
    assert_eq!(c["Path"], "sh");
    assert_eq!(c["Args"], serde_json::json!(["-c", "exit 3"]));
    assert_eq!(c["State"]["Status"], "exited");
    assert_eq!(c["State"]["ExitCode"], 3);
    assert_eq!(c["State"]["Running"], false);
    assert_eq!(c["Config"]["Labels"]["tier"], "db");
    assert_eq!(c["Config"]["Hostname"], &bad[..12]);
    assert_eq!(c["HostConfig"]["LogConfig"]["Type"], "json-file");
    assert!(c["LogPath"]
        .as_str()
        .unwrap()
        .ends_with(&format!("{bad}-json.log")));
    assert!(Path::new(c["LogPath"].as_str().unwrap()).exists());
    for key in [
        "Id",
        "Created",
        "Path",
        "Args",
        "State",
        "Image",
        "ResolvConfPath",
        "HostnamePath",
        "HostsPath",
        "LogPath",
        "Name",
        "RestartCount",
        "Driver",
        "Platform",
        "MountLabel",
        "ProcessLabel",
        "AppArmorProfile",
        "ExecIDs",
        "HostConfig",
        "GraphDriver",
        "Mounts",
        "Config",
        "NetworkSettings",
    ] {
        assert!(c.get(key).is_some(), "inspect has no {key}: {c}");
    }
    for key in [
        "Status",
        "Running",
        "Paused",
        "Restarting",
        "OOMKilled",
        "Dead",
        "Pid",
        "ExitCode",
        "Error",
        "StartedAt",
        "FinishedAt",
    ] {
        assert!(c["State"].get(key).is_some(), "State has no {key}");
    }
    let running: Value =
        serde_json::from_str(&env.ok(&["container", "inspect", "runner"])).unwrap();
    assert_eq!(running[0]["State"]["Status"], "running");
    assert!(running[0]["State"]["Pid"].as_i64().unwrap() > 0);

    // Templates, several objects, containers and images.
    assert_eq!(
        lines(&env.ok(&[
            "inspect",
            "-f",
            "{{.Name}} {{.State.Status}} {{.State.ExitCode}} {{index .Config.Labels \"tier\"}}",
            "ok",
            "bad",
            "runner",
        ])),
        ["/ok exited 0 ", "/bad exited 3 db", "/runner running 0 web"]
    );
    assert_eq!(
        env.ok(&["inspect", "--format", "{{json .Args}}", &ok[..10]])
            .trim(),
        "[]"
    );
    let image_id = env.ok(&["image", "inspect", "-f", "{{.Id}}", "busybox"]);
    assert_eq!(env.ok(&["inspect", "-f", "{{.Id}}", "busybox"]), image_id);
    assert_eq!(env.ok(&["inspect", "-f", "{{.Image}}", runner]), image_id);
    // -s adds the sizes.
    let sized: Value = serde_json::from_str(&env.ok(&["inspect", "-s", "ok"])).unwrap();
    assert!(sized[0]["SizeRootFs"].as_i64().unwrap() > 0);
    assert!(sized[0].get("SizeRw").is_some());

    // As docker: what is found is printed, what is not is an error, exit 1.
    let out = env.run(&["inspect", "-f", "{{.Name}}", "ok", "nothing-here"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "/ok\n");
    assert!(
        text(&out.stderr).contains("Error: No such object: nothing-here"),
        "{}",
        text(&out.stderr)
    );
    let out = env.run(&["inspect", "nothing-here"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout).trim(), "[]");
    let out = env.run(&["container", "inspect", "busybox"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("Error response from daemon: No such container: busybox"),
        "{}",
        text(&out.stderr)
    );
}

/// The keys of a JSON object, and of its objects under `nested`.
fn key_set(v: &Value, nested: &[&str]) -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    for n in nested {
        if let Some(o) = v[*n].as_object() {
            keys.extend(o.keys().map(|k| format!("{n}.{k}")));
        }
    }
    keys
}

#[test]
fn inspect_has_every_key_docker_inspect_has() {
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
    let tar = env.dir.path().join("busybox.tar");
    dockerd.ok(&["import", tar.to_str().unwrap(), "busybox"]);
    let args = [
        "run", "--name", "same", "-l", "k=v", "busybox", "sh", "-c", "echo hi",
    ];
    dockerd.ok(&args);
    env.ok(&args);
    let theirs: Value = serde_json::from_str(&dockerd.ok(&["inspect", "same"])).unwrap();
    let ours: Value = serde_json::from_str(&env.ok(&["inspect", "same"])).unwrap();
    let nested = [
        "State",
        "Config",
        "HostConfig",
        "GraphDriver",
        "NetworkSettings",
    ];
    let theirs_keys = key_set(&theirs[0], &nested);
    let ours_keys = key_set(&ours[0], &nested);
    // dockerd runs here without a bridge, which it reports in the
    // config as NetworkDisabled; pier has no such daemon-wide switch.
    let missing: Vec<&String> = theirs_keys
        .difference(&ours_keys)
        .filter(|k| *k != "Config.NetworkDisabled")
        .collect();
    assert!(
        missing.is_empty(),
        "pier's inspect lacks docker's keys {missing:?}"
    );
    // Same values where both engines must agree.
    for path in [
        "/Path",
        "/Args",
        "/Name",
        "/State/Status",
        "/State/ExitCode",
        "/State/Running",
        "/Config/Cmd",
        "/Config/Labels",
        "/Config/Tty",
        "/HostConfig/RestartPolicy",
        "/HostConfig/LogConfig/Type",
        "/RestartCount",
        "/Platform",
    ] {
        assert_eq!(
            ours[0].pointer(path),
            theirs[0].pointer(path),
            "{path} differs from docker's"
        );
    }
}

#[test]
fn container_prune_removes_only_stopped_containers() {
    let env = env();
    let (runner, ok, bad) = three(&env);
    let (runner, ok, bad) = (runner.as_str(), ok.as_str(), bad.as_str());
    let out = env.ok(&["container", "prune", "-f"]);
    let rows = lines(&out);
    // As docker: the deleted ids, a blank line, the space reclaimed.
    assert_eq!(rows[0], "Deleted Containers:", "{out}");
    let deleted: BTreeSet<&str> = rows[1..3].iter().map(String::as_str).collect();
    assert_eq!(deleted, BTreeSet::from([ok, bad]), "{out}");
    assert_eq!(rows[3], "");
    assert!(rows[4].starts_with("Total reclaimed space: "), "{out}");
    assert_eq!(rows.len(), 5, "{out}");
    assert_eq!(lines(&env.ok(&["ps", "-a", "-q", "--no-trunc"])), [runner]);
    // Nothing left to prune.
    assert_eq!(
        env.ok(&["container", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
    // Label filters choose what goes.
    env.ok(&["run", "--name", "keep", "-l", "keep=1", "busybox", "true"]);
    env.ok(&["run", "--name", "drop", "busybox", "true"]);
    let out = env.ok(&["container", "prune", "-f", "--filter", "label!=keep"]);
    assert_eq!(out.lines().filter(|l| l.len() == 64).count(), 1, "{out}");
    let left = env.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(lines(&left), ["keep", "runner"]);
    let out = env.run(&["container", "prune", "-f", "--filter", "bogus=1"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn paused_containers_show_as_docker_shows_them() {
    let env = env();
    let id = env.ok(&["run", "-d", "--name", "frozen", "busybox", "sleep", "1000"]);
    let id = id.trim();
    env.ok(&["pause", "frozen"]);
    // As docker: State "paused", STATUS "Up ... (Paused)", still Running.
    let row = env.ok(&["ps", "--format", "{{.State}}|{{.Status}}"]);
    let (state, status) = row.trim().split_once('|').unwrap();
    assert_eq!(state, "paused");
    assert!(
        status.starts_with("Up ") && status.ends_with(" (Paused)"),
        "{status}"
    );
    assert_eq!(
        env.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Running}} {{.State.Paused}}",
            "frozen"
        ])
        .trim(),
        "paused true true"
    );
    let q = |f: &str| env.ok(&["ps", "-q", "--no-trunc", "--filter", f]);
    assert_eq!(q("status=paused").trim(), id);
    assert_eq!(q("status=running").trim(), "");
    env.ok(&["unpause", "frozen"]);
    assert_eq!(q("status=running").trim(), id);
}
