//! Running a command on a terminal of its own: `script` gives it a pty as
//! stdin and stdout, and what it prints comes back in chunks.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;

/// `cmd` (its program, arguments and environment) under `script -qec`,
/// with stdin piped in; the chunks it prints arrive on the receiver.
/// Returns the child, the receiver and the shell line run.
pub fn spawn(cmd: &Command) -> (Child, Receiver<Vec<u8>>, String) {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let mut line = quote(&cmd.get_program().to_string_lossy());
    for a in cmd.get_args() {
        line = line + " " + &quote(&a.to_string_lossy());
    }
    let mut script = Command::new("script");
    script.args(["-qec", &line, "/dev/null"]);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    let mut child = script
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running script");
    let mut out = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    (child, rx, line)
}
