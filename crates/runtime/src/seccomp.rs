//! seccomp: `linux.seccomp` (or an exec'd process's profile) is compiled to
//! a BPF program with libseccomp in the parent, before clone3; the init
//! (or the exec'd process) only installs it with seccomp(2), as late as
//! possible. With `SCMP_ACT_NOTIFY` the kernel returns a listener fd, which
//! is sent with the container state to the agent at `listenerPath`, as runc
//! does.

use std::io::{self, Read, Seek};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

use crate::{Error, Result};

const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
pub const FLAG_TSYNC: u32 = 1;
pub const FLAG_LOG: u32 = 2;
pub const FLAG_SPEC_ALLOW: u32 = 4;
pub const FLAG_NEW_LISTENER: u32 = 8;
pub const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

/// A compiled filter, ready for seccomp(2).
#[derive(Debug, Clone)]
pub struct SeccompPlan {
    pub program: Vec<libc::sock_filter>,
    pub flags: u32,
    /// The agent socket and its opaque metadata, when NOTIFY is used.
    pub listener: Option<(PathBuf, String)>,
}

impl SeccompPlan {
    pub fn notify(&self) -> bool {
        self.flags & FLAG_NEW_LISTENER != 0
    }
}

fn err(what: impl std::fmt::Display) -> Error {
    Error::InvalidConfig(format!("seccomp: {what}"))
}

fn action(a: LinuxSeccompAction, errno_ret: Option<u32>) -> Result<ScmpAction> {
    use LinuxSeccompAction as A;
    Ok(match a {
        A::ScmpActKill | A::ScmpActKillThread => ScmpAction::KillThread,
        A::ScmpActKillProcess => ScmpAction::KillProcess,
        A::ScmpActTrap => ScmpAction::Trap,
        A::ScmpActErrno => ScmpAction::Errno(errno_ret.unwrap_or(libc::EPERM as u32) as i32),
        A::ScmpActTrace => ScmpAction::Trace(
            u16::try_from(errno_ret.unwrap_or(libc::EPERM as u32))
                .map_err(|_| err("SCMP_ACT_TRACE value out of range"))?,
        ),
        A::ScmpActNotify => ScmpAction::Notify,
        A::ScmpActLog => ScmpAction::Log,
        A::ScmpActAllow => ScmpAction::Allow,
    })
}

fn arch(a: Arch) -> Result<ScmpArch> {
    let name = serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    // oci-spec spells the mips n32 variants with a lower-case n.
    name.to_ascii_uppercase()
        .parse()
        .map_err(|_| err(format!("unknown architecture {name}")))
}

fn compare(op: LinuxSeccompOperator, value: u64, value_two: Option<u64>) -> (ScmpCompareOp, u64) {
    use LinuxSeccompOperator as O;
    match op {
        O::ScmpCmpNe => (ScmpCompareOp::NotEqual, value),
        O::ScmpCmpLt => (ScmpCompareOp::Less, value),
        O::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, value),
        O::ScmpCmpEq => (ScmpCompareOp::Equal, value),
        O::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, value),
        O::ScmpCmpGt => (ScmpCompareOp::Greater, value),
        // OCI (as runc): value is the mask, valueTwo the expected value.
        O::ScmpCmpMaskedEq => (ScmpCompareOp::MaskedEqual(value), value_two.unwrap_or(0)),
    }
}

/// Compiles an OCI seccomp object. Unknown syscall names are skipped (as
/// runc does); rules whose action is the default action are skipped too.
#[cfg(test)]
pub fn compile(s: &LinuxSeccomp) -> Result<SeccompPlan> {
    compile_cached(s, None)
}

/// As [`compile`]; with `cache`, a program this runtime and libseccomp
/// compiled before for the same profile is read from that directory
/// instead (libseccomp takes about 20 ms for Docker's default profile,
/// which every container of an engine carries).
pub fn compile_cached(s: &LinuxSeccomp, cache: Option<&Path>) -> Result<SeccompPlan> {
    let (flags, listener) = flags_and_listener(s)?;
    let program = match cache.and_then(|dir| crate::seccomp_cache::lookup(dir, s)) {
        Some(p) => p,
        None => {
            let p = program(s)?;
            if let Some(dir) = cache {
                crate::seccomp_cache::store(dir, s, &p);
            }
            p
        }
    };
    Ok(SeccompPlan {
        program,
        flags,
        listener,
    })
}

/// seccomp(2) flags, and the agent to send a notify listener to.
fn flags_and_listener(s: &LinuxSeccomp) -> Result<(u32, Option<(PathBuf, String)>)> {
    let mut flags = 0;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => FLAG_WAIT_KILLABLE_RECV,
        };
    }
    let notify = s.default_action() == LinuxSeccompAction::ScmpActNotify
        || s.syscalls()
            .iter()
            .flatten()
            .any(|r| r.action() == LinuxSeccompAction::ScmpActNotify);
    if !notify {
        return Ok((flags, None));
    }
    let path = s
        .listener_path()
        .clone()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| err("SCMP_ACT_NOTIFY needs listenerPath"))?;
    flags |= FLAG_NEW_LISTENER;
    // The kernel refuses TSYNC with a listener; the init is
    // single-threaded, so TSYNC has nothing to do anyway.
    flags &= !FLAG_TSYNC;
    Ok((
        flags,
        Some((path, s.listener_metadata().clone().unwrap_or_default())),
    ))
}

/// libseccomp's BPF program for the profile, behind the ENOSYS stub.
fn program(s: &LinuxSeccomp) -> Result<Vec<libc::sock_filter>> {
    fn sc(what: &str) -> impl FnOnce(libseccomp::error::SeccompError) -> Error + '_ {
        move |e| err(format!("{what}: {e}"))
    }
    let default = action(s.default_action(), s.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default).map_err(sc("creating the filter"))?;
    for a in s.architectures().iter().flatten() {
        let a = arch(*a)?;
        if !ctx.is_arch_present(a).unwrap_or(false) {
            ctx.add_arch(a).map_err(sc("adding an architecture"))?;
        }
    }
    for rule in s.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret())?;
        if act == default {
            continue;
        }
        let args = rule.args().clone().unwrap_or_default();
        let mut cmps = Vec::with_capacity(args.len());
        for a in &args {
            if a.index() > 5 {
                return Err(err(format!("argument index {} out of range", a.index())));
            }
            let (op, datum) = compare(a.op(), a.value(), a.value_two());
            cmps.push(ScmpArgCompare::new(a.index() as u32, op, datum));
        }
        // libseccomp refuses two comparisons of the same argument in one
        // rule: then each comparison becomes a rule of its own (runc too).
        let mut idx: Vec<usize> = args.iter().map(|a| a.index()).collect();
        idx.sort_unstable();
        let repeated = idx.windows(2).any(|w| w[0] == w[1]);
        for name in rule.names() {
            let Ok(call) = ScmpSyscall::from_name(name) else {
                continue;
            };
            let what = format!("adding a rule for {name}");
            if repeated {
                for c in &cmps {
                    ctx.add_rule_conditional(act, call, std::slice::from_ref(c))
                        .map_err(sc(&what))?;
                }
            } else {
                ctx.add_rule_conditional(act, call, &cmps)
                    .map_err(sc(&what))?;
            }
        }
    }
    let mut program = export(&ctx)?;
    if let Some(mut stub) = enosys_stub(s)? {
        stub.append(&mut program);
        program = stub;
    }
    Ok(program)
}

/// The ENOSYS stub (seccomp_enosys.rs) for a profile that denies by
/// default; an allowing default needs none.
fn enosys_stub(s: &LinuxSeccomp) -> Result<Option<Vec<libc::sock_filter>>> {
    use LinuxSeccompAction as A;
    let denies = matches!(
        s.default_action(),
        A::ScmpActErrno
            | A::ScmpActKill
            | A::ScmpActKillThread
            | A::ScmpActKillProcess
            | A::ScmpActTrap
    );
    if !denies {
        return Ok(None);
    }
    let mut arches = vec![ScmpArch::native()];
    for a in s.architectures().iter().flatten() {
        arches.push(arch(*a)?);
    }
    let rules = s.syscalls().as_deref().unwrap_or_default();
    let names = rules
        .iter()
        .flat_map(|r| r.names().iter().map(String::as_str));
    Ok(crate::seccomp_enosys::stub(
        &crate::seccomp_enosys::newest_per_arch(names, &arches),
    ))
}

fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>> {
    // SAFETY: memfd_create with a valid C string; the fd is owned below.
    let fd = unsafe { libc::memfd_create(c"pier-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(Error::io("memfd_create")(io::Error::last_os_error()));
    }
    // SAFETY: fresh descriptor.
    let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    ctx.export_bpf(&f)
        .map_err(|e| err(format!("exporting the filter: {e}")))?;
    let mut bytes = Vec::new();
    f.rewind()
        .and_then(|_| f.read_to_end(&mut bytes))
        .map_err(Error::io("reading the seccomp program"))?;
    let size = std::mem::size_of::<libc::sock_filter>();
    if bytes.is_empty() || bytes.len() % size != 0 {
        return Err(err("libseccomp exported a malformed program"));
    }
    Ok(bytes
        .chunks_exact(size)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

/// Installs the filter in the calling process (child side: no allocation).
/// Returns the notify listener when the plan asks for one.
pub fn load(plan: &SeccompPlan) -> io::Result<Option<OwnedFd>> {
    let prog = libc::sock_fprog {
        len: plan.program.len() as libc::c_ushort,
        filter: plan.program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: seccomp(2) with a valid program that outlives the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            plan.flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    if plan.notify() {
        // SAFETY: with NEW_LISTENER the return value is a new descriptor.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as i32) }));
    }
    Ok(None)
}

/// Sends the notify fd to the agent at `path`, with the container process
/// state as runc does (`{"ociVersion", "fds": ["seccompFd"], "pid",
/// "metadata", "state"}`).
pub fn send_to_listener(
    path: &std::path::Path,
    metadata: &str,
    pid: i32,
    state: &oci_spec::runtime::State,
    fd: &OwnedFd,
) -> Result<()> {
    let msg = serde_json::json!({
        "ociVersion": crate::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": metadata,
        "state": state,
    });
    let sock = std::os::unix::net::UnixStream::connect(path).map_err(Error::io(format!(
        "connecting to the seccomp agent at {}",
        path.display()
    )))?;
    crate::sync::send_fds(
        sock.as_raw_fd(),
        msg.to_string().as_bytes(),
        &[fd.as_raw_fd()],
    )
    .map_err(Error::io("sending the seccomp fd to the agent"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn compiles_rules_and_skips_unknown_names() {
        let p = compile(&parse(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [
                {"names": ["mkdir", "no_such_syscall"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                          {"index": 0, "value": 255, "valueTwo": 3, "op": "SCMP_CMP_MASKED_EQ"}]}
            ]
        })))
        .unwrap();
        assert!(!p.program.is_empty());
        assert_eq!(p.flags, FLAG_LOG);
        assert!(p.listener.is_none());
    }

    #[test]
    fn notify_needs_a_listener() {
        let s = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        });
        assert!(compile(&parse(s.clone())).is_err());
        let mut s = s;
        s["listenerPath"] = "/run/agent.sock".into();
        s["listenerMetadata"] = "meta".into();
        s["flags"] = serde_json::json!(["SECCOMP_FILTER_FLAG_TSYNC"]);
        let p = compile(&parse(s)).unwrap();
        assert_eq!(p.flags, FLAG_NEW_LISTENER);
        assert_eq!(
            p.listener,
            Some((PathBuf::from("/run/agent.sock"), "meta".to_owned()))
        );
    }

    #[test]
    fn docker_default_profile_compiles() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/docker-default-seccomp.json"
        );
        let oci = crate::seccomp_profile::docker_to_oci(
            &serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap(),
            &[],
        );
        let p = compile(&parse(oci)).unwrap();
        assert!(p.program.len() > 100);
    }
}
