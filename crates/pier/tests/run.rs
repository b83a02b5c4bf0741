//! End to end: `pier` -> pierd -> pier-shim -> runtime -> a real container,
//! checked from inside the container. Each test gets its own pierd with its
//! own data and exec roots (started on demand by the CLI, as on a fresh
//! machine) and cleans up through PierEnv's Drop.

use pier_testutil::PierEnv;
use std::collections::BTreeSet;
use std::path::Path;

fn env() -> PierEnv {
    let env = PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")));
    env.import_busybox("busybox");
    env
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Interface names listed in a /proc/net/dev text.
fn interfaces(net_dev: &str) -> BTreeSet<String> {
    net_dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect()
}

#[test]
fn container_has_its_own_hostname_pid_mounts_and_network() {
    let env = env();
    let script = "hostname; echo $$; cat /proc/1/cmdline | tr '\\0' ' '; echo; \
                  echo ==mounts; cat /proc/self/mountinfo; echo ==net; cat /proc/net/dev";
    let out = env.ok(&[
        "run",
        "--rm",
        "--hostname",
        "box-under-test",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    let mut lines = out.lines();
    let hostname = lines.next().unwrap();
    let pid = lines.next().unwrap();
    let cmdline = lines.next().unwrap();
    let host_hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(hostname, "box-under-test");
    assert_ne!(
        hostname,
        host_hostname.trim(),
        "the container shares the host's hostname"
    );
    assert_eq!(
        pid, "1",
        "the container's shell is not pid 1 of its own pid namespace"
    );
    assert!(
        cmdline.starts_with("sh -c"),
        "pid 1 is not the container's command: {cmdline}"
    );

    let (mounts, net) = out.split_once("==net\n").unwrap();
    let mounts = mounts.split_once("==mounts\n").unwrap().1;
    let root = mounts
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .expect("a mount at / in the container");
    assert!(
        root.contains(" - overlay "),
        "the root is not the image's overlay: {root}"
    );
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let host_points: BTreeSet<&str> = host_mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .collect();
    let ctr_points: BTreeSet<&str> = mounts.lines().filter_map(|l| l.split(' ').nth(4)).collect();
    assert_ne!(
        host_points, ctr_points,
        "the container sees the host's mount table"
    );
    // Every mount point is a path of the container's own tree (the mount
    // sources name host paths, as under Docker; the points must not).
    let test_dir = env.dir.path().to_string_lossy().into_owned();
    for point in &ctr_points {
        assert!(
            !point.starts_with(&test_dir),
            "host mount point {point} in the container"
        );
        let allowed = ["/", "/proc", "/dev", "/sys", "/etc/hostname", "/etc/hosts"];
        assert!(
            allowed
                .iter()
                .any(|a| *point == *a || point.starts_with(&format!("{a}/"))),
            "unexpected mount point {point} in the container:\n{mounts}"
        );
    }
    for want in ["/proc", "/dev", "/dev/pts", "/sys", "/etc/hostname"] {
        assert!(
            ctr_points.contains(want),
            "{want} is not mounted in the container"
        );
    }

    let ctr_ifaces = interfaces(net);
    let host_ifaces = interfaces(&std::fs::read_to_string("/proc/net/dev").unwrap());
    assert_eq!(
        ctr_ifaces,
        BTreeSet::from(["lo".to_string()]),
        "container interfaces"
    );
    assert_ne!(
        ctr_ifaces, host_ifaces,
        "the container shares the host's network namespace"
    );
}

#[test]
fn exit_code_of_the_command_is_the_exit_code_of_pier_run() {
    let env = env();
    for (cmd, code) in [
        ("exit 0", 0),
        ("exit 3", 3),
        ("exit 42", 42),
        ("sh -c 'kill -9 $$'; exit $?", 137),
    ] {
        let out = env.run(&["run", "--rm", "busybox", "sh", "-c", cmd]);
        assert_eq!(out.status.code(), Some(code), "{cmd}: {}", stderr(&out));
    }
}

#[test]
fn stdout_and_stderr_stay_apart() {
    let env = env();
    let out = env.run(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo to-out; echo to-err >&2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "to-out\n");
    assert_eq!(stderr(&out), "to-err\n");
}

#[test]
fn env_workdir_and_user_apply() {
    let env = env();
    let out = env.ok(&[
        "run",
        "--rm",
        "-e",
        "GREETING=hello world",
        "-w",
        "/srv/app",
        "-u",
        "65534:65534",
        "busybox",
        "sh",
        "-c",
        "echo \"$GREETING\"; pwd; id -u; id -g; echo $PATH",
    ]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "hello world",
            "/srv/app",
            "65534",
            "65534",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        ]
    );
}

#[test]
fn docker_exit_codes_for_engine_errors() {
    let env = env();
    let out = env.run(&["run", "--rm", "busybox", "no-such-command"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("executable file not found"),
        "{}",
        stderr(&out)
    );

    let out = env.run(&["run", "--rm", "busybox", "/etc/passwd"]);
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));

    let out = env.run(&["run", "--rm", "no-such-image", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("No such image: no-such-image"),
        "{}",
        stderr(&out)
    );

    let out = env.run(&["run", "--rm", "--bogus-flag", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));

    // None of the failures left a container behind.
    assert_eq!(env.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn containers_without_rm_stay_until_removed() {
    let env = env();
    env.ok(&["run", "--name", "keeper", "busybox", "true"]);
    let ps = env.ok(&["ps", "-a"]);
    assert!(ps.contains("keeper") && ps.contains("Exited (0)"), "{ps}");
    assert_eq!(
        env.ok(&["ps", "-q"]),
        "",
        "an exited container is listed as running"
    );
    let out = env.run(&["run", "--name", "keeper", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("already in use"), "{}", stderr(&out));
    assert_eq!(env.ok(&["rm", "keeper"]), "keeper\n");
    assert_eq!(env.ok(&["ps", "-a", "-q"]), "");
    let left = std::fs::read_dir(env.data_root.join("containers"))
        .unwrap()
        .count();
    assert_eq!(left, 0, "rm left the container's directory behind");
}

#[test]
fn rm_flag_leaves_nothing_behind() {
    let env = env();
    env.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo data > /tmp/file",
    ]);
    assert_eq!(env.ok(&["ps", "-a", "-q"]), "");
    let root = env.dir.path().to_string_lossy().into_owned();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&root),
        "mounts left under {root}:\n{mounts}"
    );
    assert_eq!(
        std::fs::read_dir(env.data_root.join("containers"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(env.exec_root.join("containers"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn changes_stay_in_the_container_not_the_image() {
    let env = env();
    env.ok(&[
        "run",
        "--name",
        "writer",
        "busybox",
        "sh",
        "-c",
        "echo changed > /etc/motd",
    ]);
    let out = env.run(&["run", "--rm", "busybox", "cat", "/etc/motd"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a second container saw the first one's write"
    );
}

#[test]
fn detached_run_prints_the_id_and_the_container_runs() {
    let env = env();
    let id = env.ok(&["run", "-d", "--name", "sleeper", "busybox", "sleep", "30"]);
    assert_eq!(id.trim().len(), 64, "{id}");
    let ps = env.ok(&["ps"]);
    assert!(ps.contains("sleeper") && ps.contains("Up "), "{ps}");
    let out = env.run(&["rm", "sleeper"]);
    assert_eq!(out.status.code(), Some(1));
    // dockerd's words (20.10 and 28 alike).
    assert!(
        stderr(&out).contains("You cannot remove a running container")
            && stderr(&out).contains("Stop the container before attempting removal"),
        "{}",
        stderr(&out)
    );
    env.ok(&["rm", "-f", "sleeper"]);
    assert_eq!(env.ok(&["ps", "-a", "-q"]), "");
}
