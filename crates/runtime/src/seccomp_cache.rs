//! Compiled seccomp programs kept under the runtime root
//! (`ROOT/.seccomp-cache/`, a name no container id can take), so that an
//! engine starting many containers with one profile pays libseccomp's
//! compilation once.
//!
//! A file holds its own key: the profile's JSON together with this
//! runtime's version, libseccomp's version and the native architecture. A
//! lookup reads the key back and compares it byte for byte, so a hash
//! collision or a file of another version is a miss, never a wrong filter.
//! Files are written to a temporary name and renamed; anything malformed
//! is a miss and gets rewritten.
//!
//! Layout: `MAGIC`, key length (u64 LE), key, instruction count (u64 LE),
//! instructions (8 bytes each, native order as seccomp(2) takes them).

use oci_spec::runtime::LinuxSeccomp;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

const DIR: &str = ".seccomp-cache";
const MAGIC: &[u8] = b"PIERBPF1\n";
const INSN: usize = std::mem::size_of::<libc::sock_filter>();

/// Everything the compiled program depends on.
fn key(s: &LinuxSeccomp) -> Option<Vec<u8>> {
    let lib = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    let arch = libseccomp::ScmpArch::native();
    let mut key = format!(
        "pier-runtime {} libseccomp {lib} arch {arch:?}\n",
        env!("CARGO_PKG_VERSION")
    )
    .into_bytes();
    key.extend(serde_json::to_vec(s).ok()?);
    Some(key)
}

fn file_for(root: &Path, key: &[u8]) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    root.join(DIR).join(format!("{:016x}.bpf", h.finish()))
}

/// The program stored for `s`, if there is a valid one.
pub fn lookup(root: &Path, s: &LinuxSeccomp) -> Option<Vec<libc::sock_filter>> {
    let key = key(s)?;
    let data = std::fs::read(file_for(root, &key)).ok()?;
    decode(&data, &key)
}

/// Stores the program for `s`; failures only cost a later recompilation.
pub fn store(root: &Path, s: &LinuxSeccomp, program: &[libc::sock_filter]) {
    let Some(key) = key(s) else { return };
    let path = file_for(root, &key);
    let Some(dir) = path.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let tmp = dir.join(format!(".tmp-{}", std::process::id()));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(&encode(&key, program)))
        .and_then(|_| std::fs::rename(&tmp, &path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

fn encode(key: &[u8], program: &[libc::sock_filter]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + 16 + key.len() + program.len() * INSN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(key.len() as u64).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&(program.len() as u64).to_le_bytes());
    for i in program {
        out.extend_from_slice(&i.code.to_ne_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_ne_bytes());
    }
    out
}

fn decode(data: &[u8], want_key: &[u8]) -> Option<Vec<libc::sock_filter>> {
    fn take<'a>(data: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if data.len() < n {
            return None;
        }
        let (head, rest) = data.split_at(n);
        *data = rest;
        Some(head)
    }
    fn len(data: &mut &[u8]) -> Option<usize> {
        let b: [u8; 8] = take(data, 8)?.try_into().ok()?;
        usize::try_from(u64::from_le_bytes(b)).ok()
    }
    let mut rest = data;
    if take(&mut rest, MAGIC.len())? != MAGIC {
        return None;
    }
    let key_len = len(&mut rest)?;
    if take(&mut rest, key_len)? != want_key {
        return None;
    }
    let count = len(&mut rest)?;
    // A seccomp program holds at most BPF_MAXINSNS (4096) instructions.
    if count == 0 || count > 4096 || rest.len() != count.checked_mul(INSN)? {
        return None;
    }
    Some(
        rest.chunks_exact(INSN)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(errno: u32) -> LinuxSeccomp {
        serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno}]
        }))
        .unwrap()
    }

    fn insns(p: &[libc::sock_filter]) -> Vec<(u16, u8, u8, u32)> {
        p.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect()
    }

    #[test]
    fn a_stored_program_comes_back_for_the_same_profile_only() {
        let root = tempfile::tempdir().unwrap();
        let s = profile(1);
        assert!(lookup(root.path(), &s).is_none());
        let compiled = crate::seccomp::compile(&s).unwrap().program;
        store(root.path(), &s, &compiled);
        let cached = lookup(root.path(), &s).expect("a hit after store");
        assert_eq!(insns(&cached), insns(&compiled));
        assert!(lookup(root.path(), &profile(2)).is_none());

        let via = crate::seccomp::compile_cached(&s, Some(root.path())).unwrap();
        assert_eq!(insns(&via.program), insns(&compiled));
        let other = crate::seccomp::compile_cached(&profile(2), Some(root.path())).unwrap();
        assert_ne!(insns(&other.program), insns(&compiled));
        assert_eq!(
            std::fs::read_dir(root.path().join(DIR)).unwrap().count(),
            2,
            "one file per profile, no temporary left"
        );
    }

    #[test]
    fn damaged_or_foreign_files_are_misses() {
        let key = b"k".to_vec();
        let prog = [libc::sock_filter {
            code: 6,
            jt: 0,
            jf: 0,
            k: 0x7fff_0000,
        }];
        let good = encode(&key, &prog);
        assert_eq!(insns(&decode(&good, &key).unwrap()), insns(&prog));
        assert!(decode(&good, b"other").is_none(), "another key");
        for cut in 0..good.len() {
            assert!(decode(&good[..cut], &key).is_none(), "truncated at {cut}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(decode(&longer, &key).is_none());
        let mut bad_magic = good;
        bad_magic[0] ^= 1;
        assert!(decode(&bad_magic, &key).is_none());
    }
}
