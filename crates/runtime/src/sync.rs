//! Descriptor passing over unix sockets (SCM_RIGHTS): the seccomp listener
//! fd and the pty master travel this way, between init and parent and to
//! outside agents (console socket, seccomp agent).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

const MAX_FDS: usize = 4;

/// Sends `data` with `fds` attached in one message. Does not allocate.
pub fn send_fds(sock: RawFd, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // u64 alignment is enough for cmsghdr on every Linux target.
    let mut cbuf = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: msghdr/cmsghdr built in local buffers large enough for
    // MAX_FDS descriptors; CMSG_* macros compute offsets within them.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !fds.is_empty() {
            let len = std::mem::size_of_val(fds) as u32;
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(len) as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(len) as _;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr(),
                libc::CMSG_DATA(cmsg).cast::<RawFd>(),
                fds.len(),
            );
        }
        loop {
            let n = libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL);
            if n >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
        }
    }
}

/// Receives one message into `buf`; returns its length (0 at EOF) and the
/// descriptors attached to it (close-on-exec).
pub fn recv_fds(sock: RawFd, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut cbuf = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: as in send_fds; received descriptors become owned.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
        let n = loop {
            let n = libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC);
            if n >= 0 {
                break n as usize;
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
        };
        let mut fds = Vec::new();
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        Ok((n, fds))
    }
}

/// A close-on-exec SOCK_SEQPACKET socketpair.
pub fn socketpair() -> crate::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: socketpair fills two descriptors we then own.
    let ret = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if ret != 0 {
        return Err(crate::Error::io("socketpair")(io::Error::last_os_error()));
    }
    // SAFETY: fresh descriptors from socketpair.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Duplicates `fd` to a number >= `min` (close-on-exec), so it cannot
/// collide with descriptors a child must keep (0..min).
pub fn dup_above(fd: OwnedFd, min: RawFd) -> crate::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    if fd.as_raw_fd() >= min {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor we own.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    if n < 0 {
        return Err(crate::Error::io("dup")(io::Error::last_os_error()));
    }
    // SAFETY: fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// exec.fifo: the init writes this byte once `start` has opened the fifo
/// and every startContainer hook succeeded, then execs.
pub const FIFO_GO: &[u8; 1] = b"0";
/// Or this byte followed by the error, and exits.
const FIFO_ERROR: u8 = b'E';
/// One write of at most PIPE_BUF bytes reaches the reader whole.
pub const FIFO_MESSAGE_MAX: usize = libc::PIPE_BUF;

/// The fifo message for a failure, cut to fit one atomic pipe write.
pub fn fifo_error_message(err: &str) -> Vec<u8> {
    let mut end = err.len().min(FIFO_MESSAGE_MAX - 1);
    while !err.is_char_boundary(end) {
        end -= 1;
    }
    let mut msg = Vec::with_capacity(end + 1);
    msg.push(FIFO_ERROR);
    msg.extend_from_slice(&err.as_bytes()[..end]);
    msg
}

/// What `start` read from the fifo: Ok to go on, or the init's error.
pub fn parse_fifo_message(msg: &[u8]) -> Result<(), String> {
    match msg.split_first() {
        Some((b'0', _)) => Ok(()),
        Some((&FIFO_ERROR, err)) => Err(String::from_utf8_lossy(err).into_owned()),
        Some((b, _)) => Err(format!(
            "init wrote {b:#04x} on exec.fifo instead of its go byte"
        )),
        None => Err("init closed exec.fifo without a byte".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn passes_a_descriptor() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut r, mut w) = UnixStream::pair().unwrap();
        send_fds(a.as_raw_fd(), b"hello", &[w.as_raw_fd()]).unwrap();
        let mut buf = [0u8; 16];
        let (n, fds) = recv_fds(b.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(fds.len(), 1);
        let mut got = UnixStream::from(fds.into_iter().next().unwrap());
        got.write_all(b"x").unwrap();
        drop(got);
        w.write_all(b"y").unwrap();
        drop(w);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "xy");
    }

    #[test]
    fn fifo_messages() {
        assert_eq!(parse_fifo_message(FIFO_GO), Ok(()));
        let m = fifo_error_message("startContainer hook #0 (/bin/false): failed");
        assert_eq!(
            parse_fifo_message(&m),
            Err("startContainer hook #0 (/bin/false): failed".into())
        );
        assert!(parse_fifo_message(b"").is_err());
        assert!(parse_fifo_message(b"x").unwrap_err().contains("0x78"));
        let long = "é".repeat(FIFO_MESSAGE_MAX);
        let m = fifo_error_message(&long);
        assert!(m.len() <= FIFO_MESSAGE_MAX);
        assert!(parse_fifo_message(&m)
            .unwrap_err()
            .chars()
            .all(|c| c == 'é'));
    }

    proptest::proptest! {
        #[test]
        fn any_error_round_trips_or_is_cut_at_a_char_boundary(err in "\\PC{0,3000}") {
            let got = parse_fifo_message(&fifo_error_message(&err)).unwrap_err();
            proptest::prop_assert!(err.starts_with(&got));
            proptest::prop_assert!(got.len() == err.len() || got.len() + 4 > FIFO_MESSAGE_MAX - 1);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = parse_fifo_message(&bytes);
        }
    }
}
