//! The spec's mounts get exactly their options: per-mount flags,
//! filesystem options and propagation, on the new mount itself whatever
//! rootfsPropagation says (as with runc), and the same where the kernel
//! lacks the new mount API (open_tree, mount_setattr, fsopen, ...: the
//! runtime then falls back to mount(2)), simulated with a seccomp filter
//! that makes those calls fail with ENOSYS.

mod common;

use std::fs;
use std::io::{Read, Seek};
use std::os::unix::process::CommandExt;
use std::process::Stdio;

use common::Bundle;
use libseccomp::{ScmpAction, ScmpFilterContext, ScmpSyscall};
use serde_json::json;

/// (rootfsPropagation, the propagation option of both mounts)
const CASES: [(Option<&str>, &str); 5] = [
    (None, "rshared"),
    (Some("rprivate"), "rshared"),
    (Some("rslave"), "rshared"),
    (Some("rshared"), "rprivate"),
    (None, "runbindable"),
];

/// A bundle with a bind at /mnt/b and a tmpfs at /mnt/t, both `ro`,
/// `nosuid`, `nodev` and `propagation`, whose container prints, per
/// mount: mount point, per-mount options, the optional fields (shared:N,
/// ...) and the superblock options; then its Seccomp_filters line.
fn bundle(root: Option<&str>, propagation: &str) -> Bundle {
    let mut b = Bundle::new(&[]);
    fs::create_dir(b.path().join("src")).unwrap();
    b.config["mounts"].as_array_mut().unwrap().extend([
        json!({"destination": "/mnt/b", "type": "bind", "source": "src",
               "options": ["rbind", "ro", "nosuid", "nodev", propagation]}),
        json!({"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs",
               "options": ["ro", "nosuid", "nodev", "size=64k", propagation]}),
    ]);
    if let Some(root) = root {
        b.config["linux"]["rootfsPropagation"] = json!(root);
    }
    b.sh("awk '$5 ~ /^\\/mnt\\/[bt]$/ { s = $5 \" \" $6; \
         for (i = 7; $i != \"-\"; i++) s = s \" \" $i; print s \" \" $NF }' \
         /proc/self/mountinfo; grep Seccomp_filters /proc/self/status");
    b
}

/// Checks what a container of [`bundle`] printed.
fn check(out: &str, root: Option<&str>, propagation: &str) {
    let what = format!("rootfsPropagation {root:?}, {propagation}: {out}");
    let mut seen = 0;
    for line in out.lines().filter(|l| l.starts_with("/mnt/")) {
        let mut fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(sb), true) = (fields.pop(), fields.len() >= 2) else {
            panic!("{what}");
        };
        let opts: Vec<&str> = fields[1].split(',').collect();
        for want in ["ro", "nosuid", "nodev"] {
            assert!(opts.contains(&want), "{what}");
        }
        if fields[0] == "/mnt/t" {
            assert!(sb.contains("size=64k"), "{what}");
        }
        let has = |p: &str| fields[2..].iter().any(|f| f.starts_with(p));
        match propagation {
            "rshared" => assert!(has("shared:"), "{what}"),
            "runbindable" => assert!(has("unbindable"), "{what}"),
            _ => assert!(fields.len() == 2, "{what}"),
        }
        seen += 1;
    }
    assert_eq!(seen, 2, "{what}");
}

#[test]
fn mount_flags_and_propagation_apply_to_the_new_mount() {
    for (n, (root, propagation)) in CASES.into_iter().enumerate() {
        let mut b = bundle(root, propagation);
        let out = b.run_ok(&format!("mountprop{n}"));
        check(&out, root, propagation);
    }
}

/// Classic BPF making the new mount API calls fail with ENOSYS.
fn without_new_mount_api() -> Vec<libc::sock_filter> {
    let mut ctx = ScmpFilterContext::new(ScmpAction::Allow).unwrap();
    for name in [
        "open_tree",
        "move_mount",
        "mount_setattr",
        "fsopen",
        "fsconfig",
        "fsmount",
    ] {
        let call = ScmpSyscall::from_name(name).unwrap();
        ctx.add_rule(ScmpAction::Errno(libc::ENOSYS), call).unwrap();
    }
    let mut f = tempfile::tempfile().unwrap();
    ctx.export_bpf(&f).unwrap();
    f.rewind().unwrap();
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).unwrap();
    bytes
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

#[test]
fn without_the_new_mount_api_the_mounts_are_the_same() {
    for (n, (root, propagation)) in CASES.into_iter().enumerate() {
        let mut b = bundle(root, propagation);
        b.write_config();
        let id = format!("mountold{n}");
        b.ids.push(id.clone());
        let mut c = b.cmd(&["run", "--bundle"]);
        c.arg(b.path()).arg(&id).stdin(Stdio::null());
        let mut program = without_new_mount_api();
        // SAFETY: only prctl between fork and exec; the program lives in
        // the closure.
        unsafe {
            c.pre_exec(move || {
                let prog = libc::sock_fprog {
                    len: program.len() as u16,
                    filter: program.as_mut_ptr(),
                };
                if libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = common::check(&c.output().unwrap());
        check(&out, root, propagation);
        // The runtime ran under the filter (so did the container).
        let filters = (out.lines())
            .find_map(|l| l.strip_prefix("Seccomp_filters:"))
            .and_then(|n| n.trim().parse::<u32>().ok());
        assert!(filters.is_some_and(|n| n >= 1), "{out}");
    }
}
