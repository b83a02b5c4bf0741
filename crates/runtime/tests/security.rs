//! Escapes a container must not manage: overwriting the runtime binary
//! through /proc/PID/exe (CVE-2019-5736), host descriptors leaking in, a
//! cwd or mount destination outside the rootfs (CVE-2024-21626 class),
//! masked/readonly paths that do not block. Every escape target is a
//! directory in the test's own temp dir.

mod common;

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{check, Bundle};

use serde_json::json;

/// Makes `files` appear in the spawned command as the given descriptors,
/// inheritable (no FD_CLOEXEC), as a careless caller would leave them.
fn leak_fds(cmd: &mut Command, files: Vec<(File, RawFd)>) {
    // SAFETY: only async-signal-safe dup2/fcntl between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            for (f, n) in &files {
                if libc::dup2(f.as_raw_fd(), *n) < 0 || libc::fcntl(*n, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// The shell's own descriptors, listed by a forked ls (no pipeline: the
/// shell would hold pipe ends while it runs).
const LIST_FDS: &str = "ls /proc/$$/fd; true";

fn open_dir(p: &Path) -> File {
    File::open(p).unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `run` in the foreground with inheritable descriptors 7..9 (a host
/// directory and files) in the caller.
fn run_leaking(b: &mut Bundle, id: &str, extra: &[&str], leak: Vec<(File, RawFd)>) -> Output {
    b.write_config();
    b.ids.push(id.to_owned());
    let mut c = b.cmd(&["run", "--bundle"]);
    c.arg(b.path()).args(extra).arg(id).stdin(Stdio::null());
    leak_fds(&mut c, leak);
    c.output().unwrap()
}

fn host_fds(b: &Bundle) -> Vec<(File, RawFd)> {
    let secret = b.path().join("host-secret");
    fs::write(&secret, "host").unwrap();
    vec![
        (open_dir(b.path()), 7),
        (File::open(&secret).unwrap(), 8),
        (
            fs::OpenOptions::new().append(true).open(&secret).unwrap(),
            9,
        ),
    ]
}

/// The attacker: scans every /proc/N/exe that is not the container's
/// busybox, logs what it could see, tries to open it for writing and holds
/// a read descriptor to retry writing through /proc/self/fd after the
/// runtime process is gone (the CVE-2019-5736 sequence).
const EXE_ATTACK: &str = r#"
while :; do
  for p in /proc/[0-9]*; do
    l=$(readlink $p/exe 2>/dev/null) || continue
    case "$l" in /bin/busybox|"") continue;; esac
    echo "seen $p $l" >> /out/log
    (echo pwned >> $p/exe) 2>/dev/null && echo "wrote $p" >> /out/log
    ( exec 9<$p/exe || exit; echo "held $p" >> /out/log; i=0
      while [ $i -lt 100 ]; do
        (echo pwned >> /proc/self/fd/9) 2>/dev/null && { echo "wrote-held $p" >> /out/log; exit; }
        i=$((i+1)); usleep 20000
      done ) 2>/dev/null &
  done
done
"#;

#[test]
fn container_cannot_overwrite_the_runtime_through_proc_exe() {
    let mut b = Bundle::new(&["sleep", "1000"]);
    // A private copy: a failure must not break the binary other tests use.
    let bin = b.path().join("pier-runtime-copy");
    fs::copy(common::BIN, &bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    let before = fs::read(&bin).unwrap();
    let out = b.path().join("out");
    fs::create_dir(&out).unwrap();
    fs::write(out.join("log"), "").unwrap();
    fs::set_permissions(&out, fs::Permissions::from_mode(0o777)).unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/out", "type": "bind", "source": out.to_str().unwrap(), "options": ["rbind", "rw"]}),
    );
    b.write_config();
    b.ids.push("exe".into());
    // stderr goes through a file: a pipe would stay open in the container.
    let err_path = b.path().join("runtime.err");
    let run = |args: &[&str]| {
        let err = File::create(&err_path).unwrap();
        let status = Command::new(&bin)
            .arg("--root")
            .arg(b.state_root())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .status()
            .unwrap();
        Output {
            status,
            stdout: Vec::new(),
            stderr: fs::read(&err_path).unwrap(),
        }
    };
    // Created, not started: the init waits on the exec fifo still running
    // the runtime binary, as pid 1 of the container.
    let st = run(&["create", "--bundle", b.path().to_str().unwrap(), "exe"]);
    assert!(st.status.success(), "{st:?}");
    let st = run(&["exec", "--detach", "exe", "sh", "-c", EXE_ATTACK]);
    assert!(st.status.success(), "{st:?}");
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..10 {
        let st = run(&["exec", "exe", "true"]);
        assert!(st.status.success(), "{st:?}");
    }
    // The init execs the user's program: the runtime binary is not busy
    // any more, a held descriptor could now write to it.
    let st = run(&["start", "exe"]);
    assert!(st.status.success(), "{st:?}");
    for _ in 0..5 {
        let st = run(&["exec", "exe", "true"]);
        assert!(st.status.success(), "{st:?}");
    }
    std::thread::sleep(Duration::from_millis(2500));
    let _ = run(&["delete", "--force", "exe"]);
    let log = fs::read_to_string(out.join("log")).unwrap();
    assert!(!log.contains("wrote"), "a write succeeded:\n{log}");
    assert!(
        !log.contains("seen") && !log.contains("held"),
        "the runtime's /proc/PID/exe was reachable:\n{log}"
    );
    assert!(
        fs::read(&bin).unwrap() == before,
        "the runtime binary changed"
    );
}

#[test]
fn no_host_descriptor_leaks_into_run() {
    let mut b = Bundle::new(&[]);
    b.sh(LIST_FDS);
    let leak = host_fds(&b);
    let out = run_leaking(&mut b, "fds", &[], leak);
    assert_eq!(check(&out), "0\n1\n2\n");

    // --preserve-fds 1 passes 3 (and only 3) on.
    let mut leak = host_fds(&b);
    leak.push((File::open(b.path().join("host-secret")).unwrap(), 3));
    let out = run_leaking(&mut b, "fds-preserve", &["--preserve-fds", "1"], leak);
    assert_eq!(check(&out), "0\n1\n2\n3\n");
}

#[test]
fn no_host_descriptor_leaks_into_exec() {
    let mut b = Bundle::new(&["sleep", "1000"]);
    b.run_detached("fdx");
    let mut c = b.cmd(&["exec", "fdx", "sh", "-c", LIST_FDS]);
    c.stdin(Stdio::null());
    leak_fds(&mut c, host_fds(&b));
    assert_eq!(check(&c.output().unwrap()), "0\n1\n2\n");
}

/// A host directory (in the test's temp dir) the container aims its cwd
/// at; its absolute path without the leading '/'.
fn target(b: &Bundle) -> (std::path::PathBuf, String) {
    let t = b.path().join("outside");
    fs::create_dir(&t).unwrap();
    let rel = t.to_str().unwrap().trim_start_matches('/').to_owned();
    (t, rel)
}

#[test]
fn cwd_through_symlinks_and_dotdot_stays_inside_the_rootfs() {
    for (i, how) in ["abs-symlink", "rel-symlink", "dotdot"].iter().enumerate() {
        let mut b = Bundle::new(&[]);
        let (host, rel) = target(&b);
        let rootfs = b.rootfs();
        let cwd = match *how {
            "abs-symlink" => {
                symlink(format!("/../../../../../{rel}"), rootfs.join("esc")).unwrap();
                "/esc/sub".to_owned()
            }
            "rel-symlink" => {
                symlink(format!("../../../../../../{rel}"), rootfs.join("esc")).unwrap();
                "/esc/sub".to_owned()
            }
            _ => format!("/../../../../../{rel}/../outside/sub"),
        };
        b.config["root"]["readonly"] = json!(false);
        b.config["process"]["cwd"] = json!(cwd);
        b.sh("touch marker && pwd -P");
        let out = b.run(&format!("cwd{i}"));
        let pwd = check(&out);
        assert_eq!(pwd, format!("/{rel}/sub\n"), "{how}");
        assert!(
            rootfs.join(&rel).join("sub/marker").is_file(),
            "{how}: not inside"
        );
        assert_eq!(
            fs::read_dir(&host).unwrap().count(),
            0,
            "{how}: the host dir was touched"
        );
    }
}

#[test]
fn cwd_through_a_leaked_proc_self_fd_is_refused() {
    // run: the caller leaks a host directory as fd 7.
    let mut b = Bundle::new(&[]);
    let (host, _) = target(&b);
    b.config["root"]["readonly"] = json!(false);
    b.config["process"]["cwd"] = json!("/proc/self/fd/7");
    b.sh("touch marker; pwd -P");
    let out = run_leaking(&mut b, "fdcwd", &[], vec![(open_dir(&host), 7)]);
    if out.status.success() {
        let pwd = stdout(&out);
        assert!(pwd.starts_with('/'), "cwd outside the root: {pwd}");
    }
    assert_eq!(fs::read_dir(&host).unwrap().count(), 0, "host dir touched");

    // exec --cwd /proc/self/fd/7 with the same leak.
    let mut b = Bundle::new(&["sleep", "1000"]);
    let (host, _) = target(&b);
    b.run_detached("fdcwdx");
    let mut c = b.cmd(&[
        "exec",
        "--cwd",
        "/proc/self/fd/7",
        "fdcwdx",
        "sh",
        "-c",
        "touch marker; pwd -P",
    ]);
    c.stdin(Stdio::null());
    leak_fds(&mut c, vec![(open_dir(&host), 7)]);
    let out = c.output().unwrap();
    assert!(
        !out.status.success(),
        "exec with a cwd outside the root ran: {}",
        stdout(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("outside"),
        "{out:?}"
    );
    assert_eq!(fs::read_dir(&host).unwrap().count(), 0, "host dir touched");
}

#[test]
fn mount_destination_with_dotdot_or_proc_self_fd_stays_inside() {
    // `..` components: resolved inside the rootfs.
    let mut b = Bundle::new(&[]);
    let (host, rel) = target(&b);
    let src = b.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("hello"), "bound").unwrap();
    let dest = format!("/../../../../../{rel}/../outside/dd");
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": dest, "type": "bind", "source": "src", "options": ["rbind", "ro"]}),
    );
    b.sh(&format!("cat /{rel}/dd/hello"));
    assert_eq!(b.run_ok("mdotdot"), "bound");
    assert!(b.rootfs().join(&rel).join("dd").is_dir());
    assert_eq!(fs::read_dir(&host).unwrap().count(), 0, "host dir touched");

    // /proc/self/fd/N of a leaked host directory: refused, or inside.
    let mut b = Bundle::new(&[]);
    let (host, _) = target(&b);
    let src = b.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("hello"), "bound").unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/proc/self/fd/7", "type": "bind", "source": "src", "options": ["rbind"]}),
    );
    b.sh("grep -c /outside /proc/self/mountinfo; true");
    let out = run_leaking(&mut b, "mfd", &[], vec![(open_dir(&host), 7)]);
    if out.status.success() {
        assert_eq!(stdout(&out), "0\n", "{out:?}");
    }
    assert_eq!(fs::read_dir(&host).unwrap().count(), 0, "host dir touched");
}

#[test]
fn masked_and_readonly_paths_block_writes_from_inside() {
    // Reads of masked paths are in containers.rs; here the writes.
    let mut b = Bundle::new(&[]);
    let rootfs = b.rootfs();
    fs::write(rootfs.join("etc/secret"), "s3cret").unwrap();
    fs::create_dir_all(rootfs.join("etc/secretdir")).unwrap();
    fs::write(rootfs.join("etc/secretdir/key"), "k").unwrap();
    fs::create_dir_all(rootfs.join("data/ro")).unwrap();
    fs::write(rootfs.join("data/ro/file"), "ro-content").unwrap();
    b.config["root"]["readonly"] = json!(false);
    b.config["linux"]["maskedPaths"] = json!(["/etc/secret", "/etc/secretdir"]);
    b.config["linux"]["readonlyPaths"] = json!(["/data/ro"]);
    b.sh(
        "echo leaked > /etc/secret; cat /etc/secret; echo .; \
         touch /etc/secretdir/new 2>/dev/null && echo masked-dir-writable || echo masked-dir-refused; \
         cat /etc/secretdir/key 2>/dev/null || echo key-hidden; \
         cat /data/ro/file; echo; \
         echo x > /data/ro/file 2>/dev/null && echo ro-file-writable || echo ro-file-refused; \
         rm /data/ro/file 2>/dev/null && echo ro-rm || echo ro-rm-refused; \
         mount -o remount,rw /data/ro 2>/dev/null && echo remounted || echo remount-refused; \
         umount /etc/secret 2>/dev/null && echo unmasked || echo umount-refused",
    );
    assert_eq!(
        b.run_ok("maskw"),
        ".\nmasked-dir-refused\nkey-hidden\nro-content\nro-file-refused\nro-rm-refused\nremount-refused\numount-refused\n"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/secret")).unwrap(),
        "s3cret"
    );
    assert!(!rootfs.join("etc/secretdir/new").exists());
    assert_eq!(
        fs::read_to_string(rootfs.join("data/ro/file")).unwrap(),
        "ro-content"
    );
}

/// What one container of the race saw: where its bind mount (the mount
/// whose root is the race source) and its tmpfs are, and its cwd.
fn race_script(id: &str) -> String {
    format!(
        "touch cwd-marker-{id} 2>/dev/null; echo \"cwd $(pwd -P)\"; \
         awk '$4 ~ /\\/race-src$/ {{print \"bind \" $5}} \
              $(NF-1) == \"pier-race-tmpfs\" {{print \"tmpfs \" $5}}' /proc/self/mountinfo; \
         echo {id} > /mnt/target/mount-marker-{id} 2>/dev/null; \
         echo {id} > /mnt/tmp/mount-marker-{id} 2>/dev/null; true"
    )
}

/// The symlink-exchange mount race (the runc CVE-2021-30465 class): while
/// containers are created, a host thread swaps the destinations of a bind
/// mount (`/mnt/target`) and a tmpfs (`/mnt/tmp`) and the cwd (`/mnt/cwd`),
/// directories of the rootfs, with symlinks to a host directory outside
/// it. Each container must either run with its mounts and cwd inside its
/// root or fail cleanly; nothing may be mounted on, or written into, the
/// host directory. Half the runs use rshared root propagation, which would
/// carry an escaped mount back to the host's mountinfo; in the others it
/// would be missing inside.
#[test]
fn symlink_exchange_races_keep_mounts_and_cwd_inside_the_rootfs() {
    let decoy_dir = tempfile::Builder::new()
        .prefix("pier-test-decoy-")
        .tempdir()
        .unwrap();
    let decoy = decoy_dir.path().to_owned();
    let shared = common::host_mount::HostMount::bind_self(&decoy).unwrap();
    shared.make_shared().unwrap();
    let mut b = Bundle::new(&[]);
    let src = b.path().join("race-src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("seed"), "source").unwrap();
    let mnt = b.rootfs().join("mnt");
    // (what the container reports, the directory, its symlink twin)
    let swapped = [
        ("bind", "target", "link"),
        ("tmpfs", "tmp", "tmplink"),
        ("cwd", "cwd", "cwdlink"),
    ];
    for (_, dir, link) in swapped {
        fs::create_dir_all(mnt.join(dir)).unwrap();
        symlink(&decoy, mnt.join(link)).unwrap();
    }
    b.config["root"]["readonly"] = json!(false);
    b.config["process"]["cwd"] = json!("/mnt/cwd");
    b.config["mounts"].as_array_mut().unwrap().extend([
        json!({"destination": "/mnt/target", "type": "bind",
               "source": "race-src", "options": ["rbind", "nosuid"]}),
        json!({"destination": "/mnt/tmp", "type": "tmpfs",
               "source": "pier-race-tmpfs", "options": ["nodev", "rprivate"]}),
    ]);
    // Inside the root, the symlinks lead here.
    let decoy_inside = decoy.to_str().unwrap().to_owned();

    let pairs: Vec<(&str, &str)> = swapped.iter().map(|(_, d, l)| (*d, *l)).collect();
    let swapper = common::race::Exchanger::start(&mnt, &pairs);
    let (mut ran, mut failed, mut through_link) = (0, 0, 0);
    for i in 0..40 {
        let id = format!("race{i}");
        b.config["linux"]["rootfsPropagation"] =
            json!(if i % 2 == 0 { "rshared" } else { "rprivate" });
        b.sh(&race_script(&id));
        let out = b.run(&id);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{id}: {stderr}");
        let host = common::host_mounts_at_or_below(&decoy);
        assert_eq!(host, [decoy_inside.as_str()], "{id}: mounted on the decoy");
        if !out.status.success() {
            // A clean failure says what failed.
            assert!(stderr.starts_with("run: "), "{id}: {out:?}");
            eprintln!("{id}: {}", stderr.trim());
            failed += 1;
            continue;
        }
        ran += 1;
        let text = stdout(&out);
        for (what, dir, link) in swapped {
            let seen: Vec<&str> = (text.lines())
                .filter_map(|l| l.strip_prefix(what)?.strip_prefix(' '))
                .collect();
            let inside = [
                format!("/mnt/{dir}"),
                format!("/mnt/{link}"),
                decoy_inside.clone(),
            ];
            assert!(
                seen.len() == 1 && inside.iter().any(|p| p == seen[0]),
                "{id}: the {what} is not inside the root: {text}"
            );
            through_link += usize::from(seen[0] == decoy_inside);
        }
    }
    let swaps = swapper.finish().unwrap();
    let host = common::host_mounts_at_or_below(&decoy);
    assert_eq!(host, [decoy_inside.as_str()], "mounted on the decoy");
    let written: Vec<_> = fs::read_dir(&decoy).unwrap().collect();
    assert!(written.is_empty(), "written into the decoy: {written:?}");
    eprintln!(
        "race: {ran} ran, {failed} failed cleanly, {through_link} mounts or cwds \
         through a symlink, {swaps} swaps"
    );
    assert!(ran > 0, "no container ran");
    // The race was real: some destinations resolved through the symlink.
    assert!(through_link > 0, "the swap never hit a mount or cwd");
}
