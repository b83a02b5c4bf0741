//! pier's `--init`: a tiny pid 1 (see init.rs) that forwards signals to
//! the container's command, reaps zombies and exits with the command's
//! code. The build script compiles it as a static executable; pierd
//! carries it in [`BINARY`] and installs it where containers bind-mount it
//! from, so no C library is needed in the image and no separate file has
//! to be shipped next to pierd.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The static pier-init executable.
pub const BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pier-init"));

/// Writes [`BINARY`] to `path` (mode 0755) unless it is already there,
/// atomically (a temporary file renamed), so that concurrent installs and
/// running containers never see a partial file.
pub fn install(path: &Path) -> std::io::Result<()> {
    if std::fs::read(path).is_ok_and(|d| d == BINARY) {
        return Ok(());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile_in(dir)?;
    tmp.1.write_all(BINARY)?;
    tmp.1
        .set_permissions(std::fs::Permissions::from_mode(0o755))?;
    tmp.1.sync_all()?;
    std::fs::rename(&tmp.0, path)
}

fn tempfile_in(dir: &Path) -> std::io::Result<(std::path::PathBuf, std::fs::File)> {
    for n in 0..100u32 {
        let p = dir.join(format!(".pier-init.{}.{n}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(f) => return Ok((p, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(
        "no free temporary name for pier-init",
    ))
}

#[cfg(test)]
#[path = "init.rs"]
mod init;

#[cfg(test)]
mod tests {
    use super::init::{exit_code, parse_args};
    use std::ffi::OsString;
    use std::process::Command;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn arguments_after_the_separator_are_the_command() {
        let a = os(&["--", "sh", "-c", "x"]);
        assert_eq!(parse_args(&a).unwrap(), &a[1..]);
        let a = os(&["-s", "--", "sh"]);
        assert_eq!(parse_args(&a).unwrap(), &a[2..]);
        let a = os(&["sh", "--", "x"]);
        assert_eq!(parse_args(&a).unwrap(), &a[..]);
        assert!(parse_args(&os(&["--"])).is_none());
        assert!(parse_args(&os(&[])).is_none());
    }

    #[test]
    fn exit_codes_as_a_shell_reports_them() {
        assert_eq!(exit_code(3 << 8), 3);
        assert_eq!(exit_code(libc::SIGKILL), 137);
    }

    #[test]
    fn installed_binary_is_static_and_runs_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("init");
        super::install(&path).unwrap();
        super::install(&path).unwrap();
        let data = std::fs::read(&path).unwrap();
        // No PT_INTERP program header: no dynamic loader needed.
        assert!(
            !data
                .windows(16)
                .any(|w| w.starts_with(b"/lib64/ld-linux") || w.starts_with(b"/lib/ld-linux")),
            "pier-init names a dynamic loader"
        );
        let st = Command::new(&path)
            .args(["--", "sh", "-c", "exit 7"])
            .status()
            .unwrap();
        assert_eq!(st.code(), Some(7));
        let st = Command::new(&path)
            .args(["--", "sh", "-c", "kill -TERM $$"])
            .status()
            .unwrap();
        assert_eq!(st.code(), Some(128 + libc::SIGTERM));
        let out = Command::new(&path)
            .args(["--", "/nonexistent-program"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(127));
        assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent-program"));
    }
}
