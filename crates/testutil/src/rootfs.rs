//! Busybox root filesystems for tests, built from the host's static busybox.

use std::fs;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Path of a static busybox binary. Panics with what to install when absent,
/// because every container test depends on it.
pub fn busybox() -> PathBuf {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        let p = Path::new(p);
        if p.exists() {
            return p.to_path_buf();
        }
    }
    panic!("busybox not found: install Debian's busybox-static (apt-get install busybox-static)");
}

fn applets(busybox: &Path) -> io::Result<Vec<String>> {
    let out = Command::new(busybox).arg("--list").output()?;
    if !out.status.success() {
        return Err(io::Error::other("busybox --list failed"));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
        .map(str::to_owned)
        .collect())
}

/// Writes a minimal busybox root filesystem into `dir`: /bin/busybox with a
/// symlink per applet, /etc/passwd and /etc/group (root, nobody), and the
/// usual empty mount points.
pub fn write_busybox_rootfs(dir: &Path) -> io::Result<()> {
    let bb = busybox();
    for d in [
        "bin", "etc", "dev", "proc", "sys", "tmp", "root", "home", "var", "usr",
    ] {
        fs::create_dir_all(dir.join(d))?;
    }
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    fs::set_permissions(dir.join("root"), fs::Permissions::from_mode(0o700))?;
    fs::copy(&bb, dir.join("bin/busybox"))?;
    fs::set_permissions(dir.join("bin/busybox"), fs::Permissions::from_mode(0o755))?;
    for applet in applets(&bb)? {
        let link = dir.join("bin").join(&applet);
        if !link.exists() {
            symlink("busybox", link)?;
        }
    }
    symlink("../bin", dir.join("usr/bin"))?;
    fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
    )?;
    fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    Ok(())
}

/// Writes a busybox rootfs as an uncompressed tar at `path` (what `docker
/// export` or `pier image import` take), with root ownership on every entry.
pub fn write_busybox_tar(path: &Path) -> io::Result<()> {
    let tmp = tempfile::tempdir()?;
    write_busybox_rootfs(tmp.path())?;
    let file = fs::File::create(path)?;
    let mut builder = tar::Builder::new(file);
    builder.mode(tar::HeaderMode::Deterministic);
    builder.follow_symlinks(false);
    builder.append_dir_all(".", tmp.path())?;
    builder.into_inner()?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootfs_has_a_shell_and_users() {
        let dir = tempfile::tempdir().unwrap();
        write_busybox_rootfs(dir.path()).unwrap();
        assert!(dir
            .path()
            .join("bin/sh")
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_symlink());
        let passwd = fs::read_to_string(dir.path().join("etc/passwd")).unwrap();
        assert!(passwd.starts_with("root:x:0:0:"));
    }

    #[test]
    fn tarball_lists_busybox() {
        let dir = tempfile::tempdir().unwrap();
        let tar_path = dir.path().join("rootfs.tar");
        write_busybox_tar(&tar_path).unwrap();
        let mut archive = tar::Archive::new(fs::File::open(&tar_path).unwrap());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().any(|n| n.ends_with("bin/busybox")),
            "{names:?}"
        );
        assert!(names.iter().any(|n| n.ends_with("etc/passwd")));
    }
}
