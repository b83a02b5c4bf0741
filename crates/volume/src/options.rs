//! The `local` driver's options (`type`, `device`, `o`), as docker's: what
//! is checked at create, and the mount(2) they turn into.

use crate::fsutil::is_mount_point;
use crate::{Error, Result};
use rustix::mount::{MountFlags, UnmountFlags};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::Path;

/// The option keys docker's local driver knows (`size` is a quota, which
/// needs xfs project quotas: refused, as docker without quota support).
const VALID: [&str; 4] = ["device", "o", "size", "type"];

/// Option -> options it needs, in a fixed order for a stable message.
const MANDATORY: [(&str, &[&str]); 3] = [
    ("device", &["type"]),
    ("o", &["device", "type"]),
    ("type", &["device"]),
];

/// Docker's create-time checks of the local driver's options; `name` is
/// the volume's, for the `create NAME: ` prefix.
pub(crate) fn validate(name: &str, opts: &BTreeMap<String, String>) -> Result<()> {
    let bad = |msg: String| Err(Error::InvalidOptions(format!("create {name}: {msg}")));
    for k in opts.keys() {
        if !VALID.contains(&k.as_str()) {
            return bad(format!("invalid option: {k:?}"));
        }
    }
    if let Some(size) = opts.get("size") {
        match ram_in_bytes(size) {
            None => return bad(format!("invalid size: '{size}'")),
            Some(n) if n > 0.0 => {
                return bad("quota size requested but no quota support".into());
            }
            Some(_) => {}
        }
    }
    for (opt, needs) in MANDATORY {
        if opts.contains_key(opt) {
            for n in needs {
                if !opts.contains_key(*n) {
                    return bad(format!("missing required option: {n:?}"));
                }
            }
        }
    }
    Ok(())
}

/// A size as docker reads `size=` (`10`, `1.5m`, `2 GiB`: binary units).
fn ram_in_bytes(s: &str) -> Option<f64> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(end);
    if num.split('.').any(|part| part.is_empty()) {
        return None;
    }
    let value: f64 = num.parse().ok()?;
    let mut unit = unit.strip_prefix(' ').unwrap_or(unit).chars().peekable();
    let power = match unit.peek().map(char::to_ascii_lowercase) {
        Some(c) if "kmgtp".contains(c) => {
            unit.next();
            "kmgtp".find(c)? as i32 + 1
        }
        _ => 0,
    };
    if unit.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'i')) {
        unit.next();
    }
    if unit.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'b')) {
        unit.next();
    }
    if unit.next().is_some() {
        return None;
    }
    Some(value * 1024f64.powi(power))
}

/// Whether a volume's options call for a mount on `_data` (as docker: a
/// non-empty `device` or `type`).
pub(crate) fn needs_mount(opts: &BTreeMap<String, String>) -> bool {
    ["type", "device"]
        .iter()
        .any(|k| opts.get(*k).is_some_and(|v| !v.is_empty()))
}

const PTYPES: u32 =
    (libc::MS_SHARED | libc::MS_PRIVATE | libc::MS_SLAVE | libc::MS_UNBINDABLE) as u32;
const PFLAGS: u32 = PTYPES | libc::MS_REC as u32 | libc::MS_SILENT as u32;

/// mount(8)-style flag words in `o`: (word, clears the flag, flag).
const FLAGS: [(&str, bool, libc::c_ulong); 33] = [
    ("defaults", false, 0),
    ("ro", false, libc::MS_RDONLY),
    ("rw", true, libc::MS_RDONLY),
    ("suid", true, libc::MS_NOSUID),
    ("nosuid", false, libc::MS_NOSUID),
    ("dev", true, libc::MS_NODEV),
    ("nodev", false, libc::MS_NODEV),
    ("exec", true, libc::MS_NOEXEC),
    ("noexec", false, libc::MS_NOEXEC),
    ("sync", false, libc::MS_SYNCHRONOUS),
    ("async", true, libc::MS_SYNCHRONOUS),
    ("dirsync", false, libc::MS_DIRSYNC),
    ("remount", false, libc::MS_REMOUNT),
    ("mand", false, libc::MS_MANDLOCK),
    ("nomand", true, libc::MS_MANDLOCK),
    ("atime", true, libc::MS_NOATIME),
    ("noatime", false, libc::MS_NOATIME),
    ("diratime", true, libc::MS_NODIRATIME),
    ("nodiratime", false, libc::MS_NODIRATIME),
    ("bind", false, libc::MS_BIND),
    ("rbind", false, libc::MS_BIND | libc::MS_REC),
    ("unbindable", false, libc::MS_UNBINDABLE),
    ("runbindable", false, libc::MS_UNBINDABLE | libc::MS_REC),
    ("private", false, libc::MS_PRIVATE),
    ("rprivate", false, libc::MS_PRIVATE | libc::MS_REC),
    ("shared", false, libc::MS_SHARED),
    ("rshared", false, libc::MS_SHARED | libc::MS_REC),
    ("slave", false, libc::MS_SLAVE),
    ("rslave", false, libc::MS_SLAVE | libc::MS_REC),
    ("relatime", false, libc::MS_RELATIME),
    ("norelatime", true, libc::MS_RELATIME),
    ("strictatime", false, libc::MS_STRICTATIME),
    ("nostrictatime", true, libc::MS_STRICTATIME),
];

/// Splits `o` into mount flags and the filesystem's data string (the
/// words that are not flags, e.g. tmpfs's `size=64m,uid=1000`).
pub(crate) fn parse_o(o: &str) -> (u32, String) {
    let mut flags: u32 = 0;
    let mut data = Vec::new();
    for word in o.split(',').filter(|w| !w.is_empty()) {
        match FLAGS.iter().find(|(w, _, _)| *w == word) {
            Some((_, true, f)) => flags &= !(*f as u32),
            Some((_, false, f)) => flags |= *f as u32,
            None => data.push(word),
        }
    }
    (flags, data.join(","))
}

/// The value of `key=` in a comma-separated option string.
fn o_value<'a>(o: &'a str, key: &str) -> Option<&'a str> {
    o.split(',')
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

fn resolve(host: &str) -> std::io::Result<std::net::IpAddr> {
    use std::net::ToSocketAddrs;
    (host, 0u16)
        .to_socket_addrs()?
        .next()
        .map(|a| a.ip())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address found"))
}

fn cstring(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::InvalidOptions(format!("{what} {s:?} contains a NUL byte")))
}

/// Mounts the options' filesystem on `target` unless something is
/// mounted there already.
pub(crate) fn mount(opts: &BTreeMap<String, String>, target: &Path) -> Result<()> {
    let io = |what: String| move |source: std::io::Error| Error::Io { what, source };
    if is_mount_point(target).map_err(io(format!("checking {}", target.display())))? {
        return Ok(());
    }
    let device = opts.get("device").map(String::as_str).unwrap_or("");
    if device.is_empty() {
        return Err(Error::InvalidOptions(
            "missing device in volume options".into(),
        ));
    }
    let fstype = opts.get("type").map(String::as_str).unwrap_or("");
    let mut o = opts.get("o").cloned().unwrap_or_default();
    // As docker: an nfs/cifs server given by name is resolved here (the
    // kernel wants an address).
    if matches!(fstype, "nfs" | "cifs") {
        if let Some(addr) = o_value(&o, "addr").map(str::to_string) {
            if addr.parse::<std::net::Ipv4Addr>().is_err() {
                let ip = resolve(&addr).map_err(io(format!(
                    "error resolving passed in network volume address {addr}"
                )))?;
                o = o.replacen(&format!("addr={addr}"), &format!("addr={ip}"), 1);
            }
        }
    }
    let (flags, data) = parse_o(&o);
    let data_c = cstring(&data, "mount data")?;
    // Never in an error message.
    let shown_data = match o_value(&data, "password") {
        Some(pw) if !pw.is_empty() => {
            data.replacen(&format!("password={pw}"), "password=********", 1)
        }
        _ => data.clone(),
    };
    let oflags = flags & !PTYPES;
    let describe = |f: u32, with_data: bool| {
        let mut s = format!(
            "failed to mount local volume: mount {device}:{}",
            target.display()
        );
        if f != 0 {
            s.push_str(&format!(", flags: 0x{f:x}"));
        }
        if with_data && !shown_data.is_empty() {
            s.push_str(&format!(", data: {shown_data}"));
        }
        s
    };
    rustix::mount::mount(
        device,
        target,
        fstype,
        MountFlags::from_bits_retain(oflags),
        (!data.is_empty()).then_some(data_c.as_c_str()),
    )
    .map_err(|e| io(describe(oflags, true))(e.into()))?;
    let rest = (|| {
        if flags & PTYPES != 0 {
            let f = flags & PFLAGS;
            rustix::mount::mount("", target, "", MountFlags::from_bits_retain(f), None)
                .map_err(|e| io(describe(f, false))(e.into()))?;
        }
        // The kernel ignores ro/nosuid/nodev/noexec on a new bind mount:
        // they take a remount of the bind.
        let per_mount = (libc::MS_RDONLY
            | libc::MS_NOSUID
            | libc::MS_NODEV
            | libc::MS_NOEXEC
            | libc::MS_NOATIME
            | libc::MS_NODIRATIME
            | libc::MS_RELATIME
            | libc::MS_STRICTATIME) as u32;
        if oflags & libc::MS_BIND as u32 != 0 && oflags & per_mount != 0 {
            let f = (oflags & !(libc::MS_REC as u32)) | libc::MS_REMOUNT as u32;
            rustix::mount::mount("", target, "", MountFlags::from_bits_retain(f), None)
                .map_err(|e| io(describe(f, false))(e.into()))?;
        }
        Ok(())
    })();
    if rest.is_err() {
        let _ = rustix::mount::unmount(target, UnmountFlags::DETACH);
    }
    rest
}

/// Unmounts `target` if something is mounted there (lazily, as docker).
pub(crate) fn unmount(target: &Path) -> Result<()> {
    let io = |what: String| move |source: std::io::Error| Error::Io { what, source };
    if !is_mount_point(target).map_err(io(format!("checking {}", target.display())))? {
        return Ok(());
    }
    match rustix::mount::unmount(target, UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL) => Ok(()),
        Err(e) => Err(io(format!("unmounting {}", target.display()))(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn err(o: &[(&str, &str)]) -> String {
        validate("v1", &opts(o)).unwrap_err().to_string()
    }

    #[test]
    fn validate_as_docker() {
        validate("v1", &opts(&[])).unwrap();
        validate("v1", &opts(&[("type", "tmpfs"), ("device", "tmpfs")])).unwrap();
        validate(
            "v1",
            &opts(&[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=1m")]),
        )
        .unwrap();
        // Messages as docker's (`docker volume create -o ...`).
        assert_eq!(
            err(&[("foo", "bar")]),
            r#"create v1: invalid option: "foo""#
        );
        assert_eq!(
            err(&[("type", "tmpfs")]),
            r#"create v1: missing required option: "device""#
        );
        assert_eq!(
            err(&[("device", "/tmp")]),
            r#"create v1: missing required option: "type""#
        );
        assert_eq!(
            err(&[("o", "bind")]),
            r#"create v1: missing required option: "device""#
        );
        assert_eq!(
            err(&[("size", "1m")]),
            "create v1: quota size requested but no quota support"
        );
        assert_eq!(err(&[("size", "abc")]), "create v1: invalid size: 'abc'");
        assert_eq!(err(&[("size", "1x")]), "create v1: invalid size: '1x'");
        validate("v1", &opts(&[("size", "0")])).unwrap();
    }

    #[test]
    fn o_values() {
        assert_eq!(o_value("addr=1.2.3.4,rw", "addr"), Some("1.2.3.4"));
        assert_eq!(o_value("rw,password=a=b", "password"), Some("a=b"));
        assert_eq!(o_value("xaddr=1,addrs=2", "addr"), None);
        assert_eq!(resolve("127.0.0.1").unwrap().to_string(), "127.0.0.1");
    }

    #[test]
    fn failed_mount_hides_the_password() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        // No such filesystem type: the mount fails, with its data shown.
        let e = mount(
            &opts(&[
                ("type", "pier-nosuchfs"),
                ("device", "//server/share"),
                ("o", "username=u,password=secret,ro"),
            ]),
            dir.path(),
        )
        .unwrap_err()
        .to_string();
        assert!(!e.contains("secret"), "{e}");
        assert!(
            e.contains("flags: 0x1, data: username=u,password=********"),
            "{e}"
        );
    }

    #[test]
    fn sizes_as_docker() {
        assert_eq!(ram_in_bytes("10"), Some(10.0));
        assert_eq!(ram_in_bytes("1.5m"), Some(1.5 * 1024.0 * 1024.0));
        assert_eq!(ram_in_bytes("2 GiB"), Some(2.0 * 1024f64.powi(3)));
        assert_eq!(ram_in_bytes("3kb"), Some(3072.0));
        assert_eq!(ram_in_bytes("1P"), Some(1024f64.powi(5)));
        for bad in ["", "m", "1.2.3", "1.", ".5", "1mm", "1  m", "-1", "1x"] {
            assert_eq!(ram_in_bytes(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn empty_type_and_device_need_no_mount() {
        assert!(!needs_mount(&opts(&[])));
        assert!(!needs_mount(&opts(&[
            ("type", ""),
            ("device", ""),
            ("o", "")
        ])));
        assert!(needs_mount(&opts(&[
            ("type", "tmpfs"),
            ("device", "tmpfs")
        ])));
    }

    #[test]
    fn o_splits_flags_from_data() {
        assert_eq!(parse_o(""), (0, String::new()));
        assert_eq!(
            parse_o("size=1m,uid=1000"),
            (0, "size=1m,uid=1000".to_string())
        );
        let (f, d) = parse_o("ro,nosuid,size=2m,nodev,noexec,mode=755");
        assert_eq!(
            f,
            (libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as u32
        );
        assert_eq!(d, "size=2m,mode=755");
        assert_eq!(parse_o("bind").0, libc::MS_BIND as u32);
        assert_eq!(parse_o("rbind,rw").0, (libc::MS_BIND | libc::MS_REC) as u32);
        assert_eq!(parse_o("ro,rw").0, 0);
        assert_eq!(parse_o("rprivate").0 & PTYPES, libc::MS_PRIVATE as u32);
    }
}
