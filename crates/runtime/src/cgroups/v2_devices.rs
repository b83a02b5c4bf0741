//! Device rules on cgroup v2: an eBPF program (BPF_CGROUP_DEVICE) on the
//! container's cgroup directory.
//!
//! libcgroups' v2 manager builds and attaches that program itself when
//! `linux.resources` is applied. Before loading it, though, it insists on
//! raising RLIMIT_MEMLOCK to 128 MiB and fails when it cannot: where the
//! hard limit is lower and the caller lacks CAP_SYS_RESOURCE (nested
//! containers, this project's machines), every `create` would fail,
//! although kernels since 5.11 charge BPF memory to the memory cgroup and
//! need no memlock at all; runc ignores that setrlimit error. So on that
//! one error we load the same program here, with libcgroups' public
//! emulator, program builder and bpf calls, and finish what its manager
//! left undone (the `unified` keys, applied after the devices).

use std::collections::HashMap;
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use libcgroups::common::AnyManagerError;
use libcgroups::v2::devices::bpf::{prog, BpfError};
use libcgroups::v2::devices::controller::DevicesControllerError;
use libcgroups::v2::devices::emulator::Emulator;
use libcgroups::v2::devices::program::Program;
use libcgroups::v2::manager::V2ManagerError;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::{Error, Result};

/// The program's license string, NUL-terminated (the kernel reads a C
/// string; libcgroups' own call passes an unterminated "Apache").
const LICENSE: &str = "Apache\0";

/// Whether libcgroups' v2 apply failed only because it could not raise
/// RLIMIT_MEMLOCK before loading the device program.
pub fn is_memlock_error(e: &AnyManagerError) -> bool {
    matches!(
        e,
        AnyManagerError::V2(V2ManagerError::DevicesController(
            DevicesControllerError::Bpf(BpfError::FailedToIncreaseRLimit)
        ))
    )
}

/// A device rule (`allow`, type, major, minor, access).
fn rule(typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(true);
    r.set_typ(Some(typ));
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some("rwm".into()));
    r
}

/// The devices every container may use, appended after the spec's rules
/// (so they win over them, as in runc): mknod of any node, and
/// null, zero, full, tty, urandom, random, console, ptmx, the pts and
/// tun. The same list libcgroups' manager appends, so both paths load the
/// same program.
pub fn default_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{B, C};
    let mut mknod_c = rule(C, None, None);
    mknod_c.set_access(Some("m".into()));
    let mut mknod_b = rule(B, None, None);
    mknod_b.set_access(Some("m".into()));
    let mut out = vec![mknod_c, mknod_b];
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (5, 0),
        (1, 9),
        (1, 8),
        (5, 1),
        (5, 2),
    ] {
        out.push(rule(C, Some(major), Some(minor)));
    }
    out.push(rule(C, Some(136), None));
    out.push(rule(C, Some(10), Some(200)));
    out
}

/// The program for the spec's rules: deny everything, then the spec's
/// rules in order (an `a` rule switches to allow or deny all), then the
/// default devices; the last matching rule decides.
pub fn program(spec_rules: &[LinuxDeviceCgroup]) -> Result<Program> {
    let mut emulator = Emulator::with_default_allow(false);
    emulator.add_rules(spec_rules);
    emulator.add_rules(&default_rules());
    Program::from_rules(&emulator.rules, emulator.default_allow)
        .map_err(|e| Error::InvalidConfig(format!("linux.resources.devices: {e}")))
}

/// Loads the program for `spec_rules` and attaches it to the cgroup
/// directory `dir`, replacing the device programs attached before.
pub fn attach(dir: &Path, spec_rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let prog = program(spec_rules)?;
    let bpf_err = |what: &str, e: BpfError| {
        Error::Cgroup(format!(
            "{what} the device eBPF program for {}: {e} (needs CAP_BPF or CAP_SYS_ADMIN)",
            dir.display()
        ))
    };
    let raw = prog::load(LICENSE, prog.bytecodes()).map_err(|e| bpf_err("loading", e))?;
    // SAFETY: a new descriptor that bpf(2) returned and nothing else owns.
    let prog_fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let cgroup =
        fs::File::open(dir).map_err(Error::io(format!("opening cgroup {}", dir.display())))?;
    let old = prog::query(cgroup.as_raw_fd()).map_err(|e| bpf_err("listing", e))?;
    // SAFETY: the descriptors query() opened for us, owned from here on.
    let old: Vec<OwnedFd> = old
        .into_iter()
        .map(|p| unsafe { OwnedFd::from_raw_fd(p.fd) })
        .collect();
    prog::attach(prog_fd.as_raw_fd(), cgroup.as_raw_fd()).map_err(|e| bpf_err("attaching", e))?;
    for o in &old {
        prog::detach2(o.as_raw_fd(), cgroup.as_raw_fd())
            .map_err(|e| bpf_err("detaching the previous", e))?;
    }
    Ok(())
}

/// Writes `linux.resources.unified` (file name to value) into `dir`.
pub fn write_unified(dir: &Path, unified: &HashMap<String, String>) -> Result<()> {
    for (file, value) in unified {
        if file.contains('/') || file.starts_with('.') || file.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "linux.resources.unified: {file:?} is not a cgroup file name"
            )));
        }
        let path = dir.join(file);
        fs::write(&path, value).map_err(Error::io(format!(
            "writing {value:?} to {} (is its controller enabled?)",
            path.display()
        )))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_rules(json: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(json).unwrap()
    }

    /// Runs the program built from `rules` (run in libcgroups' eBPF
    /// interpreter, as the kernel would) on each (type, major, minor,
    /// access) and checks its verdict: true allows, false denies.
    fn check(rules: &str, cases: &[(LinuxDeviceType, u32, u32, &str, bool)]) {
        let p = program(&spec_rules(rules)).unwrap();
        for &(typ, major, minor, access, allowed) in cases {
            let got = p.execute(typ, major, minor, access.into()).unwrap();
            assert_eq!(
                got,
                u64::from(allowed),
                "{rules}: {typ:?} {major}:{minor} {access}"
            );
        }
    }

    #[test]
    fn deny_all_keeps_only_the_default_devices() {
        use LinuxDeviceType::{B, C};
        let defaults = [
            (1, 3),
            (1, 5),
            (1, 7),
            (5, 0),
            (1, 8),
            (1, 9),
            (5, 2),
            (136, 4),
        ];
        let mut cases: Vec<_> = (defaults.iter())
            .map(|&(major, minor)| (C, major, minor, "rw", true))
            .collect();
        // mknod of anything, but no reads or writes of other nodes.
        cases.extend([
            (C, 1, 11, "m", true),
            (B, 8, 0, "m", true),
            (C, 1, 11, "r", false),
            (C, 1, 1, "w", false),
            (B, 8, 0, "r", false),
            (C, 4, 1, "rw", false),
        ]);
        check(r#"[{"allow": false, "access": "rwm"}]"#, &cases);
    }

    #[test]
    fn spec_rules_allow_by_access_and_wildcard() {
        use LinuxDeviceType::{B, C};
        check(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"},
                {"allow": true, "type": "b", "major": 8, "access": "rw"}]"#,
            &[
                (C, 1, 11, "r", true),
                (C, 1, 11, "w", false),
                (B, 8, 0, "r", true),
                (B, 8, 17, "w", true),
                (B, 9, 0, "r", false),
                // A rule for char 1:11 says nothing about block 1:11.
                (B, 1, 11, "r", false),
            ],
        );
    }

    #[test]
    fn allow_all_with_denials_keeps_the_defaults_allowed() {
        use LinuxDeviceType::C;
        // The defaults come last: /dev/null stays usable, as with runc.
        check(
            r#"[{"allow": true, "access": "rwm"},
                {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "w"}]"#,
            &[
                (C, 1, 3, "rw", true),
                (C, 1, 11, "r", true),
                (C, 1, 11, "w", false),
                (C, 4, 1, "rw", true),
            ],
        );
        // No rules at all: deny all plus the defaults.
        check("[]", &[(C, 1, 3, "rw", true), (C, 4, 1, "r", false)]);
    }

    #[test]
    fn bad_rules_are_reported() {
        let err = program(&spec_rules(
            r#"[{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rx"}]"#,
        ))
        .err()
        .unwrap();
        assert!(err.to_string().contains("devices"), "{err}");
    }

    #[test]
    fn unified_keys_must_be_plain_file_names() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["../x", "a/b", "", ".hidden"] {
            let m = HashMap::from([(bad.to_owned(), "1".to_owned())]);
            assert!(write_unified(dir.path(), &m).is_err(), "{bad}");
        }
        let m = HashMap::from([("memory.high".to_owned(), "1000".to_owned())]);
        write_unified(dir.path(), &m).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("memory.high")).unwrap(),
            "1000"
        );
    }

    #[test]
    fn only_the_memlock_error_falls_back() {
        let memlock = AnyManagerError::V2(V2ManagerError::DevicesController(
            DevicesControllerError::Bpf(BpfError::FailedToIncreaseRLimit),
        ));
        assert!(is_memlock_error(&memlock));
        let other = AnyManagerError::V2(V2ManagerError::DevicesController(
            DevicesControllerError::Nix(nix::Error::EPERM),
        ));
        assert!(!is_memlock_error(&other));
    }
}
