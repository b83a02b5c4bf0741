//! The shim's wire protocol and files. A client connects to `shim.sock`,
//! writes one JSON [`Request`] line and reads one JSON [`Response`] line.
//! After a successful `attach`, the connection carries the container's
//! output in Docker's multiplexed stream format (see [`frame_header`]) and
//! whatever the client writes goes to the container's stdin.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What pierd tells a shim in `shim.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShimConfig {
    pub id: String,
    /// OCI bundle directory (config.json, rootfs).
    pub bundle: PathBuf,
    /// pier-runtime state root.
    pub runtime_root: PathBuf,
    /// json-file log the container's output is appended to.
    pub log_path: PathBuf,
    /// Mounts to detach once the container has exited (its rootfs).
    #[serde(default)]
    pub unmount: Vec<PathBuf>,
    /// Keep a stdin pipe open for attach clients (`-i`).
    #[serde(default)]
    pub open_stdin: bool,
    /// Close the container's stdin when the first attached client detaches.
    #[serde(default)]
    pub stdin_once: bool,
    /// The container's process has a terminal (`-t`): the shim receives
    /// the pty master over a console socket, logs its output as "stdout"
    /// and relays it raw (not multiplexed) to attach clients.
    #[serde(default)]
    pub tty: bool,
}

/// The one line a shim prints once the container is created (or not).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ready {
    pub ok: bool,
    #[serde(default)]
    pub pid: i32,
    #[serde(default)]
    pub shim_pid: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Docker's exit code for the failure: 127 not found, 126 not executable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Let the created container run its program.
    Start,
    Kill {
        signal: i32,
        #[serde(default)]
        all: bool,
    },
    /// Current pid, status and exit record.
    State,
    /// Answered when the container has exited.
    Wait,
    Attach {
        #[serde(default)]
        stdin: bool,
        #[serde(default)]
        stdout: bool,
        #[serde(default)]
        stderr: bool,
    },
    /// Sets the window size of the container's terminal, or of exec
    /// `exec`'s.
    Resize {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exec: Option<String>,
        height: u16,
        width: u16,
    },
    /// Runs another process in the container. After the response (with its
    /// pid) the connection carries its output as multiplexed frames (stdout
    /// 1, stderr 2; a terminal's output as 1) and ends with one
    /// [`EXIT_STREAM`] frame holding an [`ExecExit`] JSON; what the client
    /// writes is the process's stdin (when `stdin`).
    Exec {
        id: String,
        /// The OCI process (`oci_spec::runtime::Process` JSON), parsed by
        /// the short-lived helper that starts it, not by the shim.
        process: serde_json::Value,
        #[serde(default)]
        stdin: bool,
    },
}

/// The last frame of an exec stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecExit {
    pub exit_code: i32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub pid: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitInfo>,
    /// Docker's exit code for a failed exec: 127 not found, 126 not
    /// executable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

impl Response {
    pub fn ok() -> Self {
        Response {
            ok: true,
            ..Default::default()
        }
    }
    pub fn error(msg: impl Into<String>) -> Self {
        Response {
            ok: false,
            error: Some(msg.into()),
            ..Default::default()
        }
    }
}

/// How a container's init ended (`exit.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// The exit code, or 128 + signal number when killed by a signal.
    pub exit_code: i32,
    #[serde(default)]
    pub oom_killed: bool,
    /// RFC 3339 time of the exit.
    pub finished_at: String,
}

/// Stream ids of Docker's multiplexed attach format.
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
/// Stream id of the frame that ends an exec stream (not Docker's).
pub const EXIT_STREAM: u8 = 255;

/// The 8-byte header Docker puts before each chunk of a multiplexed stream:
/// stream id, three zero bytes, big-endian length.
pub fn frame_header(stream: u8, len: usize) -> [u8; 8] {
    let n = (len as u32).to_be_bytes();
    [stream, 0, 0, 0, n[0], n[1], n[2], n[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_tagged_by_op() {
        let r: Request = serde_json::from_str(r#"{"op":"kill","signal":9}"#).unwrap();
        assert!(matches!(
            r,
            Request::Kill {
                signal: 9,
                all: false
            }
        ));
        let line = serde_json::to_string(&Request::Attach {
            stdin: false,
            stdout: true,
            stderr: true,
        })
        .unwrap();
        assert_eq!(
            line,
            r#"{"op":"attach","stdin":false,"stdout":true,"stderr":true}"#
        );
    }

    #[test]
    fn frame_header_is_docker_format() {
        assert_eq!(frame_header(STDERR, 258), [2, 0, 0, 0, 0, 0, 1, 2]);
    }
}
