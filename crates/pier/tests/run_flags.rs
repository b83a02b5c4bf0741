//! `pier run` / `pier create` flags through the CLI, checked from inside
//! real containers: resource limits in the container's cgroup, ulimits,
//! environment, user, `--init`, `--network host`, exit codes, and bad
//! values refused with docker's text, exit 125 and nothing created.

use pier_testutil::PierEnv;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

fn env() -> PierEnv {
    let env = PierEnv::new(Path::new(env!("CARGO_BIN_EXE_pier")));
    env.import_busybox("busybox");
    env
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `pier run --rm ARGS... busybox sh -c SCRIPT`, which must succeed.
fn sh(env: &PierEnv, flags: &[&str], script: &str) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "sh", "-c", script]);
    env.ok(&args)
}

fn cgroup_v1() -> bool {
    Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists()
}

/// Every container `ps -a -q` lists.
fn all_containers(env: &PierEnv) -> Vec<String> {
    env.ok(&["ps", "-a", "-q"])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn resource_limits_reach_the_container_cgroup() {
    if !cgroup_v1() {
        pier_testutil::skip("this test reads cgroup v1 files; the host runs cgroup v2");
        return;
    }
    let env = env();
    let out = sh(
        &env,
        &[
            "-m",
            "64m",
            "--cpus",
            "0.5",
            "--cpu-shares",
            "512",
            "--cpuset-cpus",
            "0",
            "--pids-limit",
            "20",
        ],
        "cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes \
         cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us cpu/cpu.shares pids/pids.max cpuset/cpuset.cpus",
    );
    let v: Vec<&str> = out.lines().collect();
    assert_eq!(
        v,
        [
            "67108864",  // -m 64m
            "134217728", // swap unset: twice the memory, as docker
            "50000",     // --cpus 0.5: half of the period
            "100000",
            "512",
            "20",
            "0"
        ],
        "{out}"
    );
}

#[test]
fn cgroup_is_pier_slash_id_on_the_host() {
    if !cgroup_v1() {
        pier_testutil::skip("this test reads cgroup v1 files; the host runs cgroup v2");
        return;
    }
    let env = env();
    let id = env
        .ok(&["run", "-d", "-m", "32m", "busybox", "sleep", "60"])
        .trim()
        .to_string();
    let host = format!("/sys/fs/cgroup/memory/pier/{id}/memory.limit_in_bytes");
    let limit = std::fs::read_to_string(&host);
    env.ok(&["rm", "-f", &id]);
    assert_eq!(
        limit.map_err(|e| format!("{host}: {e}")).unwrap().trim(),
        (32u64 << 20).to_string()
    );
}

#[test]
fn pids_limit_stops_forks() {
    let env = env();
    let out = env.run(&[
        "run",
        "--rm",
        "--pids-limit",
        "5",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 10 ]; do sleep 3 & i=$((i+1)); done; wait; echo done",
    ]);
    let err = stderr(&out);
    assert!(
        err.contains("can't fork") || err.contains("Resource temporarily unavailable"),
        "ten children under --pids-limit 5 all started: {err}"
    );
}

#[test]
fn ulimits_as_given_and_inherited_by_default() {
    let env = env();
    assert_eq!(
        sh(
            &env,
            &["--ulimit", "nofile=100:200"],
            "ulimit -n; ulimit -H -n"
        ),
        "100\n200\n"
    );
    // As docker: -1 is unlimited.
    assert_eq!(
        sh(&env, &["--ulimit", "core=-1"], "ulimit -c"),
        "unlimited\n"
    );
    // As docker: no rlimits of its own by default; the container has what
    // the engine has (pierd inherits ours here).
    let mut own = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit into a local.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut own) };
    assert_eq!(sh(&env, &[], "ulimit -n").trim(), own.rlim_cur.to_string());
}

#[test]
fn env_env_file_workdir_user_entrypoint_hostname() {
    let env = env();
    let file = env.dir.path().join("env.list");
    std::fs::write(
        &file,
        "# a comment\n\nFROM_FILE=one\nOVERRIDDEN=file\n  INDENTED=yes\n",
    )
    .unwrap();
    let out = env
        .pier()
        .env("PIER_TEST_LOCAL", "from-local")
        .args([
            "run",
            "--rm",
            "--env-file",
            file.to_str().unwrap(),
            "-e",
            "OVERRIDDEN=flag",
            "-e",
            "PIER_TEST_LOCAL",
            "-e",
            "PIER_TEST_UNSET_VARIABLE",
            "-w",
            "/tmp/work",
            "-u",
            "12:34",
            "-h", // as docker: -h is --hostname
            "flags-box",
            "busybox",
            "sh",
            "-c",
            "echo $FROM_FILE $OVERRIDDEN $PIER_TEST_LOCAL $INDENTED ${PIER_TEST_UNSET_VARIABLE-unset}; \
             pwd; id -u; id -g; hostname",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "one flag from-local yes unset\n/tmp/work\n12\n34\nflags-box\n"
    );
    let out = env.ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "echo",
        "busybox",
        "via",
        "entrypoint",
    ]);
    assert_eq!(out, "via entrypoint\n");
}

#[test]
fn init_is_pid_1_forwards_the_exit_code_and_reaps() {
    let env = env();
    let cmdline = sh(&env, &["--init"], "tr '\\0' ' ' < /proc/1/cmdline");
    assert!(
        cmdline.starts_with("/dev/init -- sh -c"),
        "pid 1 is not pier's init: {cmdline}"
    );
    // An orphan: the inner shell exits at once and its sleep is re-parented
    // to pid 1. The command then execs `cat`, which reaps nothing, so only
    // an init reaps the orphan once it exits. An observer waits until the
    // orphan is either gone or a zombie that stays one (an init may take a
    // moment to reap it on a busy machine), and tells cat through a fifo.
    let script = "mkfifo /tmp/f; sh -c 'sleep 0.1 & echo $! > /tmp/orphan'; p=$(cat /tmp/orphan); \
        z() { grep -q '^State:.*Z' /proc/$p/status 2>/dev/null; }; \
        (i=0; while [ $i -lt 600 ]; do \
           if [ ! -e /proc/$p ]; then echo reaped; break; fi; \
           if z; then sleep 2; if z; then echo zombie; else echo reaped; fi; break; fi; \
           sleep 0.1; i=$((i+1)); done) > /tmp/f & exec cat /tmp/f";
    assert_eq!(
        sh(&env, &[], script),
        "zombie\n",
        "the probe sees no zombie without --init"
    );
    assert_eq!(
        sh(&env, &["--init"], script),
        "reaped\n",
        "--init left a zombie"
    );
    let out = env.run(&["run", "--rm", "--init", "busybox", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    // As docker (tini): a command the init cannot find exits 127.
    let out = env.run(&["run", "--rm", "--init", "busybox", "no-such-command"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
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
fn network_host_shares_the_hosts_interfaces_name_and_hosts_file() {
    let env = env();
    let out = sh(
        &env,
        &["--network", "host"],
        "hostname; echo ==; cat /etc/hosts; echo ==; cat /proc/net/dev",
    );
    let mut parts = out.split("==\n");
    let hostname = parts.next().unwrap().trim();
    let hosts = parts.next().unwrap();
    let net = parts.next().unwrap();
    // As docker: the host's name, /etc/hosts and interfaces.
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(hostname, host_name.trim());
    assert_eq!(hosts, std::fs::read_to_string("/etc/hosts").unwrap());
    let host_net = std::fs::read_to_string("/proc/net/dev").unwrap();
    assert_eq!(interfaces(net), interfaces(&host_net));

    let none = sh(&env, &["--network", "none"], "cat /proc/net/dev");
    assert_eq!(interfaces(&none), BTreeSet::from(["lo".to_string()]));
}

#[test]
fn exit_codes_126_127_and_the_containers_own() {
    let env = env();
    let out = env.run(&["run", "--rm", "busybox", "no-such-command"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    let out = env.run(&["run", "--rm", "busybox", "/etc"]);
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    let out = env.run(&["run", "--rm", "busybox", "sh", "-c", "exit 42"]);
    assert_eq!(out.status.code(), Some(42));
}

#[test]
fn bad_flag_values_exit_125_with_dockers_text_and_create_nothing() {
    let env = env();
    let cases: &[(&[&str], &str)] = &[
        (
            &["-m", "xyz"],
            "invalid argument \"xyz\" for \"-m, --memory\" flag: invalid size: 'xyz'",
        ),
        (&["--memory", "10z"], "invalid suffix: 'z'"),
        (
            &["--cpus", "abc"],
            "invalid argument \"abc\" for \"--cpus\" flag: failed to parse abc as a rational number",
        ),
        (
            &["--ulimit", "nofile"],
            "invalid argument \"nofile\" for \"--ulimit\" flag: invalid ulimit argument: nofile",
        ),
        (&["--ulimit", "foo=1"], "invalid ulimit type: foo"),
        (
            &["--ulimit", "nofile=10:5"],
            "ulimit soft limit must be less than or equal to hard limit: 10 > 5",
        ),
        (
            &["--pids-limit", "x"],
            "strconv.ParseInt: parsing \"x\": invalid syntax",
        ),
        (
            &["--restart", "on-failure:x"],
            "invalid restart policy format: maximum retry count must be an integer",
        ),
        (&["--security-opt", "foo"], "Invalid --security-opt: \"foo\""),
        (
            &["--security-opt", "no-new-privileges=maybe"],
            "invalid --security-opt 2: \"no-new-privileges=maybe\"",
        ),
        (&["--env-file", "/nonexistent/env"], "open /nonexistent/env"),
        // Refused by the daemon, with dockerd's text.
        (&["-m", "1k"], "Minimum memory limit allowed is 6MB"),
        (&["--cpus", "-1"], "Range of CPUs is from 0.01 to"),
        (&["--cpuset-cpus", "abc"], "Invalid value abc for cpuset cpus"),
        (&["--cap-add", "FOO"], "unknown capability: \"CAP_FOO\""),
        (&["--stop-signal", "FOO"], "Invalid signal: FOO"),
        // This env's pierd runs with --bridge none: as dockerd's, no
        // `bridge` network then.
        (&["--network", "bridge"], "network bridge not found"),
        (&["--network", "nosuchnet"], "network nosuchnet not found"),
        (&["--no-such-flag"], "--no-such-flag"),
    ];
    for (flags, want) in cases {
        for cmd in ["run", "create"] {
            let mut args = vec![cmd, "--rm"];
            if cmd == "create" {
                args.pop();
            }
            args.extend_from_slice(flags);
            args.extend_from_slice(&["busybox", "true"]);
            let out = env.run(&args);
            assert_eq!(out.status.code(), Some(125), "{args:?}: {}", stderr(&out));
            assert!(
                stderr(&out).contains(want),
                "{args:?}: stderr lacks {want:?}: {}",
                stderr(&out)
            );
        }
    }
    assert_eq!(all_containers(&env), Vec::<String>::new());
}

#[test]
fn create_makes_a_container_that_start_runs() {
    let env = env();
    let id = env
        .ok(&[
            "create",
            "--name",
            "made-by-create",
            "-e",
            "GREETING=hi",
            "-l",
            "team=pier",
            "busybox",
            "sh",
            "-c",
            "echo $GREETING > /greeting",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "create prints the full id: {id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(all_containers(&env), [id[..12].to_string()]);
    let labels = env.ok(&[
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        "made-by-create",
    ]);
    assert_eq!(labels.trim(), r#"{"team":"pier"}"#);
    env.ok(&["start", "made-by-create"]);
    let code = env.ok(&["wait", "made-by-create"]);
    assert_eq!(code.trim(), "0");
    env.ok(&["rm", "made-by-create"]);
    // `container create` and `container run` are the same commands.
    let id = env.ok(&["container", "create", "busybox", "true"]);
    env.ok(&["rm", id.trim()]);
    let out = env.ok(&["container", "run", "--rm", "busybox", "echo", "ran"]);
    assert_eq!(out, "ran\n");
    assert_eq!(all_containers(&env), Vec::<String>::new());
}
