//! The init's messages to the parent over its SOCK_SEQPACKET socket: a
//! kind byte, an errno as 4 little-endian bytes, and UTF-8 text. Errors
//! become [`crate::Error`]s on the parent's side.

use std::io;

/// Kinds of messages from init to the parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Ready = 0,
    Io = 1,
    Init = 2,
    ExecNotFound = 3,
    ExecPermission = 4,
    InvalidConfig = 5,
    /// The seccomp notify fd is attached (SCM_RIGHTS).
    SeccompFd = 6,
    /// Init asks the parent to run its hooks; the answer is the state JSON.
    Hooks = 7,
}

/// An error inside init: kind, errno (0 if none) and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitError {
    pub kind: Kind,
    pub errno: i32,
    pub msg: String,
}

pub type InitResult<T> = Result<T, InitError>;

impl InitError {
    pub fn io(context: &str, e: io::Error) -> Self {
        InitError {
            kind: Kind::Io,
            errno: e.raw_os_error().unwrap_or(0),
            msg: context.to_owned(),
        }
    }
    pub fn config(msg: &str) -> Self {
        InitError {
            kind: Kind::InvalidConfig,
            errno: 0,
            msg: msg.to_owned(),
        }
    }

    /// Wire format: kind byte, errno as 4 LE bytes, UTF-8 text.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        buf.push(self.kind as u8);
        buf.extend_from_slice(&self.errno.to_le_bytes());
        buf.extend_from_slice(self.msg.as_bytes());
    }

    /// Decodes a message; `Ok(None)` is "ready".
    pub fn decode(msg: &[u8]) -> Result<Option<InitError>, String> {
        if msg.len() < 5 {
            return Err(format!("short message from init ({} bytes)", msg.len()));
        }
        let kind = match msg[0] {
            0 => return Ok(None),
            1 => Kind::Io,
            2 => Kind::Init,
            3 => Kind::ExecNotFound,
            4 => Kind::ExecPermission,
            5 => Kind::InvalidConfig,
            6 => Kind::SeccompFd,
            7 => Kind::Hooks,
            k => return Err(format!("unknown message kind {k} from init")),
        };
        let errno = i32::from_le_bytes([msg[1], msg[2], msg[3], msg[4]]);
        Ok(Some(InitError {
            kind,
            errno,
            msg: String::from_utf8_lossy(&msg[5..]).into_owned(),
        }))
    }

    pub fn into_error(self) -> crate::Error {
        match self.kind {
            Kind::Io => crate::Error::Io {
                context: self.msg,
                source: io::Error::from_raw_os_error(self.errno),
            },
            Kind::ExecNotFound => crate::Error::ExecNotFound(self.msg),
            Kind::ExecPermission => crate::Error::ExecPermission { path: self.msg },
            Kind::InvalidConfig => crate::Error::InvalidConfig(self.msg),
            Kind::Init | Kind::Ready | Kind::SeccompFd | Kind::Hooks => {
                crate::Error::Init(self.msg)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let e = InitError {
            kind: Kind::ExecNotFound,
            errno: 0,
            msg: "nope".into(),
        };
        let mut buf = Vec::new();
        e.encode(&mut buf);
        assert_eq!(InitError::decode(&buf).unwrap(), Some(e));
        assert_eq!(InitError::decode(&[0, 0, 0, 0, 0]).unwrap(), None);
        assert!(InitError::decode(&[1]).is_err());
        let io = InitError::io("x", io::Error::from_raw_os_error(libc::EPERM));
        let mut buf = Vec::new();
        io.encode(&mut buf);
        let back = InitError::decode(&buf).unwrap().unwrap().into_error();
        assert!(
            matches!(back, crate::Error::Io { ref source, .. } if source.raw_os_error() == Some(libc::EPERM))
        );
    }
}
