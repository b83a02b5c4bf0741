//! How the CLI fails: a message and Docker's exit code (125 for engine
//! errors, 126 for a command that cannot be invoked, 127 for one not found).

#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub code: i32,
    /// HTTP status when the daemon refused.
    pub status: Option<u16>,
}

impl CliError {
    /// An error of pier itself (exit 125).
    pub fn engine(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code: 125,
            status: None,
        }
    }

    /// A refusal from the daemon, shown as Docker shows it.
    pub fn daemon(status: u16, message: String) -> Self {
        CliError {
            message: format!("Error response from daemon: {message}"),
            code: 125,
            status: Some(status),
        }
    }

    /// Docker's exit code for a container that failed to start: 127 when
    /// the command was not found, 126 when it could not be invoked.
    pub fn with_start_code(mut self) -> Self {
        let m = self.message.as_str();
        if m.contains("executable file not found") || m.contains("no such file or directory") {
            self.code = 127;
        } else if m.contains("permission denied") {
            self.code = 126;
        }
        self
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_failures_map_to_docker_codes() {
        let e = CliError::daemon(
            400,
            "exec: \"nope\": executable file not found in $PATH".into(),
        );
        assert_eq!(e.with_start_code().code, 127);
        let e = CliError::daemon(400, "exec: \"/etc\": permission denied".into());
        assert_eq!(e.with_start_code().code, 126);
        assert_eq!(
            CliError::daemon(500, "disk full".into())
                .with_start_code()
                .code,
            125
        );
    }
}
