//! OCI hooks. Each hook runs with its args (args[0] is argv[0]) and env
//! only, the container state JSON on stdin, and an optional timeout in
//! seconds (killed with SIGKILL when it expires).
//!
//! Where each stage runs (as runc does):
//! - prestart, createRuntime: in the parent (runtime namespace), after the
//!   init has made its namespaces and mounts, before pivot_root;
//! - createContainer: in the init, after the mounts, before pivot_root;
//! - startContainer: in the init after `start`, before execve;
//! - poststart: in `start`, after the program runs (a failure is a warning);
//! - poststop: in `delete`, after the container stopped (failure: warning).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks};

use crate::{Error, Result};

/// Runs `hooks` in order; the first failure is returned.
pub fn run(stage: &str, hooks: &[Hook], state_json: &[u8]) -> Result<()> {
    run_all(stage, hooks, state_json).map_err(Error::Init)
}

fn run_all(stage: &str, hooks: &[Hook], state_json: &[u8]) -> std::result::Result<(), String> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, state_json)
            .map_err(|e| format!("{stage} hook #{i} ({}): {e}", h.path().display()))?;
    }
    Ok(())
}

fn run_one(h: &Hook, state_json: &[u8]) -> std::result::Result<(), String> {
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some((argv0, rest)) = args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        match kv.split_once('=') {
            Some((k, v)) => cmd.env(k, v),
            None => cmd.env(kv, ""),
        };
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot run it: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine (EPIPE ignored).
        let _ = stdin.write_all(state_json);
    }
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => return Err(format!("failed: {st}")),
            Ok(None) => {}
            Err(e) => return Err(format!("waiting for it: {e}")),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {}s", h.timeout().unwrap_or(0)));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The hooks of a stage from a spec (empty when absent).
pub fn stage(hooks: Option<&Hooks>, f: impl Fn(&Hooks) -> &Option<Vec<Hook>>) -> Vec<Hook> {
    hooks.and_then(|h| f(h).clone()).unwrap_or_default()
}

const LATE_HOOKS: &str = "hooks.json";

/// Saves the poststart and poststop hooks in the state dir at create time
/// (nothing when there are none: start and delete then only stat a file).
pub fn save_late(dir: &std::path::Path, hooks: Option<&Hooks>) {
    let post_start = stage(hooks, |h| h.poststart());
    let post_stop = stage(hooks, |h| h.poststop());
    if post_start.is_empty() && post_stop.is_empty() {
        return;
    }
    let v = serde_json::json!({"poststart": post_start, "poststop": post_stop});
    let _ = crate::state::write_atomic(dir, LATE_HOOKS, v.to_string().as_bytes());
}

/// The hooks saved by [`save_late`].
fn load_late(dir: &std::path::Path) -> Option<Hooks> {
    let data = std::fs::read(dir.join(LATE_HOOKS)).ok()?;
    serde_json::from_slice(&data).ok()
}

/// Runs hooks whose failure is only a warning (poststart, poststop): as
/// the spec says, the remaining hooks still run after one fails.
pub fn run_warn(stage: &str, hooks: &[Hook], state: &oci_spec::runtime::State) {
    if hooks.is_empty() {
        return;
    }
    let json = serde_json::to_vec(state).unwrap_or_default();
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run_one(h, &json) {
            eprintln!("warning: {stage} hook #{i} ({}): {e}", h.path().display());
        }
    }
}

/// poststart hooks of a container that has just started.
pub fn poststart(c: &crate::Container) {
    let h = load_late(c.state_dir());
    run_warn(
        "poststart",
        &stage(h.as_ref(), |h| h.poststart()),
        &c.state(),
    );
}

/// poststop hooks of a container being deleted.
pub fn poststop(c: &crate::Container) {
    let h = load_late(c.state_dir());
    run_warn("poststop", &stage(h.as_ref(), |h| h.poststop()), &c.state());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(v: serde_json::Value) -> Hook {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn hooks_get_state_args_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let h = hook(serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("echo \"$0 $1 $X\" > {0}; cat >> {0}", out.display()), "zero", "one"],
            "env": ["X=y"]
        }));
        run("test", &[h], b"{\"id\":\"c\"}").unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "zero one y\n{\"id\":\"c\"}"
        );
    }

    #[test]
    fn failures_and_timeouts() {
        let fail = hook(serde_json::json!({"path": "/bin/false"}));
        let e = run("prestart", &[fail], b"{}").unwrap_err().to_string();
        assert!(e.contains("prestart hook #0 (/bin/false): failed"), "{e}");
        let slow =
            hook(serde_json::json!({"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}));
        let t = Instant::now();
        let e = run("x", &[slow], b"{}").unwrap_err().to_string();
        assert!(e.contains("timed out"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(3));
        let missing = hook(serde_json::json!({"path": "/no/such/hook"}));
        assert!(run("x", &[missing], b"{}").is_err());
    }
}
