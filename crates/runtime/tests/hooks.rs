//! OCI hooks: every stage runs in order, with the state on stdin, args and
//! env; a failing prestart hook fails create; timeouts kill the hook.

mod common;

use std::fs;
use std::process::Stdio;

use common::Bundle;
use serde_json::json;

/// A hook appending "NAME STATUS ARG1 $X" to LOG.
fn hook(shell: &str, log: &str, name: &str) -> serde_json::Value {
    json!({
        "path": shell,
        "args": ["sh", "-c",
                 format!("s=$(cat | sed 's/.*\"status\":\"\\([a-z]*\\)\".*/\\1/'); echo \"{name} $s $1 $X\" >> {log}"),
                 "sh", "arg1"],
        "env": ["X=env-ok", "PATH=/bin:/usr/bin"]
    })
}

#[test]
fn every_stage_runs_in_order_with_the_state() {
    let mut b = Bundle::new(&["sleep", "1000"]);
    let shared = b.path().join("shared");
    fs::create_dir(&shared).unwrap();
    let host_log = shared.join("log");
    let h = host_log.to_str().unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/shared", "type": "bind", "source": shared, "options": ["rbind"]
    }));
    b.config["hooks"] = json!({
        "prestart": [hook("/bin/sh", h, "prestart")],
        "createRuntime": [hook("/bin/sh", h, "createRuntime")],
        "createContainer": [hook("/bin/sh", h, "createContainer")],
        // Resolved and run inside the container.
        "startContainer": [hook("/bin/sh", "/shared/log", "startContainer")],
        "poststart": [hook("/bin/sh", h, "poststart")],
        "poststop": [hook("/bin/sh", h, "poststop")]
    });
    let out = b.create("hooks", &[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        fs::read_to_string(&host_log).unwrap(),
        "prestart creating arg1 env-ok\ncreateRuntime creating arg1 env-ok\ncreateContainer creating arg1 env-ok\n"
    );
    assert!(b.cmd(&["start", "hooks"]).status().unwrap().success());
    let st = b
        .cmd(&["delete", "--force", "hooks"])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(st.status.success(), "{st:?}");
    assert_eq!(
        fs::read_to_string(&host_log).unwrap(),
        "prestart creating arg1 env-ok\ncreateRuntime creating arg1 env-ok\ncreateContainer creating arg1 env-ok\n\
         startContainer creating arg1 env-ok\npoststart running arg1 env-ok\npoststop stopped arg1 env-ok\n"
    );
}

#[test]
fn failing_prestart_fails_create_and_poststart_only_warns() {
    let mut b = Bundle::new(&["true"]);
    b.config["hooks"] = json!({"prestart": [{"path": "/bin/false"}]});
    let out = b.create("badhook", &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("prestart hook #0 (/bin/false): failed"),
        "{err}"
    );
    assert!(!b.state_root().join("badhook").exists());

    b.config["hooks"] = json!({
        "createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}]
    });
    let t = std::time::Instant::now();
    let out = b.create("slowhook", &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out"));
    assert!(t.elapsed() < std::time::Duration::from_secs(5));

    b.config["hooks"] = json!({"poststart": [{"path": "/bin/false"}]});
    b.config["process"]["args"] = json!(["sh", "-c", "exit 4"]);
    let out = b.run("warnhook");
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: poststart hook #0"));
}

#[test]
fn failing_start_container_hook_fails_start_with_its_error() {
    let mut b = Bundle::new(&["true"]);
    // Resolved inside the container: busybox's false.
    b.config["hooks"] = json!({"startContainer": [{"path": "/bin/false"}]});
    let out = b.create("badstart", &[]);
    assert!(out.status.success(), "{out:?}");
    let start = b.cmd(&["start", "badstart"]).output().unwrap();
    assert!(!start.status.success(), "{start:?}");
    let err = String::from_utf8_lossy(&start.stderr);
    assert!(
        err.contains("startContainer hook #0 (/bin/false): failed"),
        "{err}"
    );
    let state = b.cmd(&["state", "badstart"]).output().unwrap();
    let state: serde_json::Value = serde_json::from_slice(&state.stdout).unwrap();
    assert_eq!(state["status"], "stopped", "{state}");
}

#[test]
fn after_a_failing_poststart_or_poststop_hook_the_others_still_run() {
    let mut b = Bundle::new(&["sh", "-c", "exit 3"]);
    let log = b.path().join("late.log");
    let l = log.to_str().unwrap();
    b.config["hooks"] = json!({
        "poststart": [{"path": "/bin/false"}, hook("/bin/sh", l, "poststart")],
        "poststop": [{"path": "/bin/false"}, hook("/bin/sh", l, "poststop")]
    });
    let out = b.run("latehooks");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning: poststart hook #0"), "{err}");
    assert!(err.contains("warning: poststop hook #0"), "{err}");
    let got = fs::read_to_string(&log).unwrap();
    assert!(got.starts_with("poststart "), "{got}");
    assert!(got.contains("\npoststop stopped arg1 env-ok\n"), "{got}");
}
