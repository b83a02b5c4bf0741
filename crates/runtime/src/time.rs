//! Time namespaces (`linux.timeOffsets`). clone3(CLONE_NEWTIME) would put
//! the init in the namespace at once, after which the offsets can no longer
//! be set; so the init unshares it, writes /proc/self/timens_offsets (the
//! offsets of its "for children" namespace) and enters it at execve.

use crate::init::{InitError, InitResult};
use crate::{Error, Result};

/// The timens_offsets contents for a new time namespace, None without one.
pub fn offsets(new_ns: bool, linux: Option<&oci_spec::runtime::Linux>) -> Result<Option<Vec<u8>>> {
    let offsets = linux
        .and_then(|l| l.time_offsets().clone())
        .unwrap_or_default();
    if !new_ns {
        if !offsets.is_empty() {
            return Err(Error::InvalidConfig(
                "linux.timeOffsets needs a new time namespace".into(),
            ));
        }
        return Ok(None);
    }
    let mut out = String::new();
    let mut clocks: Vec<_> = offsets.into_iter().collect();
    clocks.sort_by(|a, b| a.0.cmp(&b.0));
    for (clock, off) in clocks {
        if clock != "monotonic" && clock != "boottime" {
            return Err(Error::InvalidConfig(format!(
                "timeOffsets: unknown clock {clock:?} (monotonic or boottime)"
            )));
        }
        out.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    Ok(Some(out.into_bytes()))
}

/// Child side: unshare the time namespace and set its offsets.
pub fn unshare(offsets: &[u8]) -> InitResult<()> {
    // SAFETY: unshare with a flag; open/write/close on a valid path/buffer.
    unsafe {
        if libc::unshare(libc::CLONE_NEWTIME) != 0 {
            return Err(InitError::io(
                "unsharing the time namespace",
                std::io::Error::last_os_error(),
            ));
        }
        if offsets.is_empty() {
            return Ok(());
        }
        let fd = libc::open(
            c"/proc/self/timens_offsets".as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return Err(InitError::io(
                "opening timens_offsets",
                std::io::Error::last_os_error(),
            ));
        }
        let n = libc::write(fd, offsets.as_ptr().cast(), offsets.len());
        let e = std::io::Error::last_os_error();
        libc::close(fd);
        if n < 0 {
            return Err(InitError::io("writing timens_offsets", e));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_text() {
        let l: oci_spec::runtime::Linux = serde_json::from_value(serde_json::json!({
            "timeOffsets": {"monotonic": {"secs": 10}, "boottime": {"secs": 5, "nanosecs": 7}}
        }))
        .unwrap();
        assert_eq!(
            offsets(true, Some(&l)).unwrap().unwrap(),
            b"boottime 5 7\nmonotonic 10 0\n"
        );
        assert!(offsets(false, Some(&l)).is_err());
        assert_eq!(offsets(false, None).unwrap(), None);
    }
}
