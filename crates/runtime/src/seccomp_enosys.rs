//! The ENOSYS stub: a few BPF instructions put in front of libseccomp's
//! program so that a syscall newer than every syscall the profile names
//! fails with ENOSYS instead of the profile's default action. A profile
//! written before a syscall existed cannot mean to deny it, and programs
//! (glibc's clone3 and faccessat2 fallbacks among them) only fall back to
//! an older call on ENOSYS; EPERM makes them fail.
//!
//! For each architecture of the filter (native plus the profile's), the
//! stub compares the syscall number with the highest number any rule
//! names on that architecture; anything else falls through to the
//! profile's own program, unchanged (BPF jumps are relative, so the
//! prepended program needs no patching).

use libseccomp::{ScmpArch, ScmpSyscall};

const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const BPF_JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const BPF_JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
/// Offsets in struct seccomp_data.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
/// x32 syscalls arrive on AUDIT_ARCH_X86_64 with this bit set; they are
/// left to the profile's program.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;

/// AUDIT_ARCH_* of the architectures the stub knows.
fn audit_arch(a: ScmpArch) -> Option<u32> {
    Some(match a {
        ScmpArch::X8664 => AUDIT_ARCH_X86_64,
        ScmpArch::X86 => 0x4000_0003,
        ScmpArch::Aarch64 => 0xC000_00B7,
        ScmpArch::Arm => 0x4000_0028,
        ScmpArch::Ppc64Le => 0xC000_0015,
        ScmpArch::S390X => 0x8000_0016,
        ScmpArch::Riscv64 => 0xC000_00F3,
        _ => return None,
    })
}

/// (AUDIT_ARCH, highest syscall number named) for each architecture the
/// stub knows and on which at least one name resolves.
pub fn newest_per_arch<'a>(
    names: impl Iterator<Item = &'a str> + Clone,
    arches: &[ScmpArch],
) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &a in arches {
        let Some(audit) = audit_arch(a) else { continue };
        if out.iter().any(|(seen, _)| *seen == audit) {
            continue;
        }
        let newest = names
            .clone()
            .filter_map(|n| ScmpSyscall::from_name_by_arch(n, a).ok())
            .filter_map(|s| u32::try_from(s.as_raw_syscall()).ok())
            .filter(|nr| nr & X32_SYSCALL_BIT == 0 || audit != AUDIT_ARCH_X86_64)
            .max();
        if let Some(newest) = newest {
            out.push((audit, newest));
        }
    }
    out
}

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: usize, jf: usize) -> Option<libc::sock_filter> {
    Some(libc::sock_filter {
        code,
        jt: u8::try_from(jt).ok()?,
        jf: u8::try_from(jf).ok()?,
        k,
    })
}

/// The stub for `newest` ((AUDIT_ARCH, highest number) pairs); None when
/// there is nothing to guard or the jumps would not fit in BPF's 8 bits.
///
/// Layout: `ld arch`, then per architecture a block
/// `jeq ARCH ? next : skip-block; ld nr; [jset X32 -> profile;] jgt MAX -> enosys : profile`,
/// then `ja profile`, `ret ERRNO(ENOSYS)`, and the profile's program.
pub fn stub(newest: &[(u32, u32)]) -> Option<Vec<libc::sock_filter>> {
    if newest.is_empty() {
        return None;
    }
    let block_len = |audit: u32| if audit == AUDIT_ARCH_X86_64 { 4 } else { 3 };
    let blocks_len: usize = newest.iter().map(|(a, _)| block_len(*a)).sum();
    // Instruction indexes: 0 = ld arch, blocks from 1, then ja, ret, profile.
    let ja_at = 1 + blocks_len;
    let enosys_at = ja_at + 1;
    let profile_at = enosys_at + 1;
    let mut prog = Vec::with_capacity(profile_at);
    prog.push(stmt(BPF_LD_W_ABS, OFFSET_ARCH));
    for &(audit, max) in newest {
        let start = prog.len();
        let next_block = start + block_len(audit);
        // A conditional jump at index i lands at i + 1 + offset.
        let rel = |from: usize, to: usize| to - from - 1;
        prog.push(jump(BPF_JEQ_K, audit, 0, rel(start, next_block))?);
        prog.push(stmt(BPF_LD_W_ABS, OFFSET_NR));
        if audit == AUDIT_ARCH_X86_64 {
            let at = prog.len();
            prog.push(jump(BPF_JSET_K, X32_SYSCALL_BIT, rel(at, profile_at), 0)?);
        }
        let at = prog.len();
        prog.push(jump(
            BPF_JGT_K,
            max,
            rel(at, enosys_at),
            rel(at, profile_at),
        )?);
    }
    prog.push(stmt(BPF_JA, 1));
    prog.push(stmt(BPF_RET_K, SECCOMP_RET_ERRNO | libc::ENOSYS as u32));
    Some(prog)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a classic BPF program over (arch, nr) the way the kernel does,
    /// for the instructions the stub and a stand-in profile use.
    fn run(prog: &[libc::sock_filter], arch: u32, nr: u32) -> u32 {
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            pc += 1;
            match i.code {
                BPF_LD_W_ABS => acc = if i.k == OFFSET_ARCH { arch } else { nr },
                BPF_JEQ_K | BPF_JGT_K | BPF_JSET_K => {
                    let taken = match i.code {
                        BPF_JEQ_K => acc == i.k,
                        BPF_JGT_K => acc > i.k,
                        _ => acc & i.k != 0,
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                BPF_JA => pc += i.k as usize,
                BPF_RET_K => return i.k,
                c => panic!("unexpected instruction {c:#x}"),
            }
        }
    }

    const PROFILE_SAYS: u32 = 0x7fff_0001;

    fn with_profile(newest: &[(u32, u32)]) -> Vec<libc::sock_filter> {
        let mut p = stub(newest).unwrap();
        p.push(stmt(BPF_RET_K, PROFILE_SAYS));
        p
    }

    #[test]
    fn newer_syscalls_get_enosys_on_each_arch() {
        let p = with_profile(&[(AUDIT_ARCH_X86_64, 435), (0x4000_0003, 440)]);
        let enosys = SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, 436), enosys);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, 435), PROFILE_SAYS);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, 0), PROFILE_SAYS);
        assert_eq!(
            run(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 500),
            PROFILE_SAYS
        );
        assert_eq!(run(&p, 0x4000_0003, 441), enosys);
        assert_eq!(run(&p, 0x4000_0003, 436), PROFILE_SAYS);
        assert_eq!(run(&p, 0xC000_00B7, 9999), PROFILE_SAYS, "unknown arch");
    }

    #[test]
    fn nothing_to_guard_is_no_stub() {
        assert!(stub(&[]).is_none());
    }

    #[test]
    fn newest_resolves_names_per_arch_and_ignores_unknown_ones() {
        let names = ["read", "clone3", "no_such_syscall"];
        let got = newest_per_arch(names.iter().copied(), &[ScmpArch::X8664, ScmpArch::X86]);
        assert_eq!(got, vec![(AUDIT_ARCH_X86_64, 435), (0x4000_0003, 435)]);
        let got = newest_per_arch(["no_such_syscall"].iter().copied(), &[ScmpArch::X8664]);
        assert!(got.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn only_numbers_above_the_newest_are_stubbed(max in 0u32..1000, nr in 0u32..2000) {
            let p = with_profile(&[(AUDIT_ARCH_X86_64, max)]);
            let got = run(&p, AUDIT_ARCH_X86_64, nr);
            let want = if nr > max { SECCOMP_RET_ERRNO | libc::ENOSYS as u32 } else { PROFILE_SAYS };
            proptest::prop_assert_eq!(got, want);
        }
    }
}
