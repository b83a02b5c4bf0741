//! An isolated pier installation for one test: its own data and exec
//! roots in a temporary directory, and a guard that kills its daemon,
//! shims and containers and unmounts everything under it, even when the
//! test fails.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct PierEnv {
    pub dir: tempfile::TempDir,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pier: PathBuf,
    /// The default bridge and address pool of a [`PierEnv::networked`]
    /// environment; None: pierd runs with `--bridge none`.
    pub net: Option<crate::net::TestNet>,
}

impl PierEnv {
    /// `pier` is the CLI binary; pierd and pier-shim must be next to it.
    pub fn new(pier: &Path) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("pier-test-")
            .tempdir()
            .expect("creating a temporary directory for the test");
        let data_root = dir.path().join("data");
        let exec_root = dir.path().join("run");
        PierEnv {
            dir,
            data_root,
            exec_root,
            pier: pier.to_path_buf(),
            net: None,
        }
    }

    /// An environment whose pierd has a default bridge network of its own
    /// (a unique device name and subnet) and a unique pool for the
    /// networks it creates, so networked tests can run side by side. Its
    /// drop deletes the bridges and nftables tables pier made.
    pub fn networked(pier: &Path) -> Self {
        let mut env = PierEnv::new(pier);
        env.net = Some(crate::net::TestNet::pick());
        env
    }

    /// A `pier` command bound to this environment.
    pub fn pier(&self) -> Command {
        let mut cmd = Command::new(&self.pier);
        cmd.env("PIER_DATA_ROOT", &self.data_root)
            .env("PIER_EXEC_ROOT", &self.exec_root)
            .env_remove("PIER_HOST");
        match &self.net {
            None => cmd.env("PIER_BRIDGE", "none"),
            Some(n) => cmd
                .env("PIER_BRIDGE", &n.bridge)
                .env("PIER_BIP", &n.bip)
                .env("PIER_DEFAULT_ADDRESS_POOL", &n.pool),
        };
        cmd
    }

    /// Runs `pier ARGS` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.pier().args(args).output().expect("running pier")
    }

    /// Runs `pier ARGS`, panics with its output unless it exits 0, and
    /// returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "pier {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Imports a busybox rootfs as image `name`.
    pub fn import_busybox(&self, name: &str) -> String {
        let tar = self.dir.path().join("busybox.tar");
        if !tar.exists() {
            crate::write_busybox_tar(&tar).expect("writing the busybox tarball");
        }
        self.ok(&["image", "import", tar.to_str().unwrap(), name])
            .trim()
            .to_string()
    }

    /// SIGKILLs this environment's pierd and waits until it is reaped, so
    /// that the next command starts a new one. A zombie is not enough: the
    /// zombie leader of a multi-threaded process may still have threads
    /// holding the API socket, which would accept a connection and drop it.
    pub fn kill_daemon(&self) -> i32 {
        let pid = self.daemon_pid().expect("pierd runs");
        // SAFETY: signalling the pierd this environment started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let t = std::time::Instant::now();
        while Path::new(&format!("/proc/{pid}")).exists() {
            assert!(
                t.elapsed() < std::time::Duration::from_secs(30),
                "pierd {pid} still there 30 s after SIGKILL"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        pid
    }

    /// pid of this environment's pierd, if it runs.
    pub fn daemon_pid(&self) -> Option<i32> {
        let pid: i32 = fs::read_to_string(self.exec_root.join("pierd.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    }
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return pids;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) {
            if String::from_utf8_lossy(&cmdline).contains(needle) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Direct children of `parent`.
fn children(parent: i32) -> Vec<i32> {
    let mut pids = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return pids;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The fields after the command's closing parenthesis: state, ppid.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(parent) {
            pids.push(pid);
        }
    }
    pids
}

/// Unmounts every mount at or under `root`, deepest first.
pub fn unmount_under(root: &Path) {
    let root = root.to_string_lossy().into_owned();
    for _ in 0..3 {
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<String> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(|p| p.replace("\\040", " "))
            .filter(|p| p == &root || p.starts_with(&format!("{root}/")))
            .collect();
        if points.is_empty() {
            return;
        }
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            if let Ok(c) = std::ffi::CString::new(p) {
                // SAFETY: umount2 on a path string we own.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

/// The cgroup directories pier gives a container (`/pier/ID` in every
/// hierarchy: each v1 controller and the unified one on a hybrid host, the
/// root on a pure v2 host) that exist now.
fn container_cgroups(id: &str) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut dirs: Vec<PathBuf> = fs::read_dir(base)
        .into_iter()
        .flatten()
        .flatten()
        .map(|h| h.path().join("pier").join(id))
        .collect();
    dirs.push(base.join("pier").join(id));
    dirs.retain(|d| d.is_dir());
    dirs
}

/// Thaws a paused container, so that the SIGKILLs below are delivered.
fn thaw(cgroups: &[PathBuf]) {
    for d in cgroups {
        let _ = fs::write(d.join("freezer.state"), "THAWED");
        let _ = fs::write(d.join("cgroup.freeze"), "0");
    }
}

/// Removes the cgroups once the killed processes in them are gone.
fn remove_cgroups(cgroups: &[PathBuf]) {
    for d in cgroups {
        for _ in 0..50 {
            if fs::remove_dir(d).is_ok() || !d.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for PierEnv {
    fn drop(&mut self) {
        let root = self.dir.path().to_string_lossy().into_owned();
        // Killed shims cannot delete their containers' cgroups: that is
        // done here, after the kills.
        let cgroups: Vec<PathBuf> = fs::read_dir(self.data_root.join("containers"))
            .into_iter()
            .flatten()
            .flatten()
            .flat_map(|e| container_cgroups(&e.file_name().to_string_lossy()))
            .collect();
        thaw(&cgroups);
        if let Some(pid) = self.daemon_pid() {
            // SAFETY: signalling a process this test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        // Shims are started as `pier-shim EXEC_ROOT/containers/ID`; killing a
        // container's init (the shim's child) ends its pid namespace.
        for shim in processes_mentioning(&root) {
            for child in children(shim) {
                // SAFETY: as above.
                unsafe { libc::kill(child, libc::SIGKILL) };
            }
            // SAFETY: as above.
            unsafe { libc::kill(shim, libc::SIGKILL) };
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        remove_cgroups(&cgroups);
        unmount_under(self.dir.path());
        if let Some(net) = &self.net {
            net.remove(&self.data_root);
        }
    }
}
