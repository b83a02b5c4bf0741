//! `GET /containers/{id}/top?ps_args=`: the host's `ps`, filtered to the
//! container's processes (its cgroup's pids), as Docker does.

use super::{Query, State};
use crate::error::{Error, Result};
use axum::extract::Path;
use axum::Json;
use serde_json::{json, Value};

/// Docker's parse of `ps` output: titles from the first line, rows whose
/// PID belongs to the container (and their thread lines, PID `-`), the
/// last column keeping its spaces.
pub fn parse_ps(output: &str, pids: &[i32]) -> std::result::Result<Value, String> {
    let mut lines = output.lines();
    let titles: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let pid_index = titles
        .iter()
        .position(|t| *t == "PID")
        .ok_or("Couldn't find PID field in ps output")?;
    let mut processes: Vec<Vec<String>> = Vec::new();
    let mut in_container = false;
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let Some(pid) = fields.get(pid_index) else {
            continue;
        };
        let keep = if *pid == "-" {
            in_container
        } else {
            let p: i32 = pid
                .parse()
                .map_err(|e| format!("Unexpected pid '{pid}': {e}"))?;
            in_container = pids.contains(&p);
            in_container
        };
        if keep {
            let n = titles.len().max(1);
            let mut row: Vec<String> = fields.iter().take(n - 1).map(|s| s.to_string()).collect();
            row.push(fields.get(n - 1..).map(|r| r.join(" ")).unwrap_or_default());
            processes.push(row);
        }
    }
    Ok(json!({"Titles": titles, "Processes": processes}))
}

/// `GET /containers/{id}/top`.
pub async fn top(engine: State, Path(id): Path<String>, q: Query) -> Result<Json<Value>> {
    let h = engine.find(&id)?;
    let rec = h.record();
    if !rec.state.running() {
        return Err(Error::conflict(format!(
            "Container {} is not running",
            rec.id
        )));
    }
    if rec.state.restarting {
        return Err(Error::conflict(format!(
            "Container {} is restarting, wait until the container is running",
            rec.id
        )));
    }
    let ps_args = q
        .get("ps_args")
        .filter(|a| !a.is_empty())
        .cloned()
        .unwrap_or_else(|| "-ef".into());
    let root = engine.config.runtime_root();
    let cid = rec.id.clone();
    let v = tokio::task::spawn_blocking(move || -> Result<Value> {
        let pids = pier_runtime::Runtime::new(root)
            .load(&cid)
            .and_then(|c| c.pids())
            .map_err(|e| Error::internal(format!("listing the processes of {cid}: {e}")))?;
        let args: Vec<&str> = ps_args.split(' ').filter(|a| !a.is_empty()).collect();
        let pid_list = pids
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let run = |extra: Option<String>| {
            let mut cmd = std::process::Command::new("ps");
            cmd.args(&args).args(extra).env("LC_ALL", "C");
            cmd.output()
        };
        // `-q PIDS` asks ps for just these; some options (f) refuse it,
        // then all processes are listed and filtered here.
        let first = run(Some(format!("-q{pid_list}")));
        // No ps on the host: docker's default columns from /proc.
        if matches!(first, Err(ref e) if e.kind() == std::io::ErrorKind::NotFound) {
            if args != ["-ef"] {
                return Err(Error::internal(
                    "ps is not installed on the host: install procps to use ps options with top",
                ));
            }
            return Ok(proc_ps(&pids));
        }
        let out = match first {
            Ok(o) if o.status.success() && !pids.is_empty() => o,
            _ => {
                let o = run(None).map_err(|e| Error::internal(format!("running ps: {e}")))?;
                if !o.status.success() {
                    let err = String::from_utf8_lossy(&o.stderr);
                    let first = err.lines().next().unwrap_or("ps failed");
                    return Err(Error::internal(format!("ps: {first}")));
                }
                o
            }
        };
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids).map_err(Error::internal)
    })
    .await??;
    Ok(Json(v))
}

/// `ps -ef` for `pids`, read from /proc: UID PID PPID C STIME TTY TIME CMD.
pub fn proc_ps(pids: &[i32]) -> Value {
    let hz = 100u64; // USER_HZ
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|u| u.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let (now, _) = pier_common::time::unix_now();
    let boot = now - uptime as i64;
    let mut rows = Vec::new();
    for pid in pids {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map_or("", |(_, c)| c);
        // Fields after the command: state(0) ppid(1) ... tty_nr(4) ...
        // utime(11) stime(12) ... starttime(19).
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or("0")
            .to_string();
        let user = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|e| e.len() > 2 && e[2] == uid)
            .map_or(uid.clone(), |e| e[0].to_string());
        let cpu_secs = (num(11) + num(12)) / hz;
        let start = boot + (num(19) / hz) as i64;
        let elapsed = (now - start).max(1) as u64;
        let c = cpu_secs * 100 / elapsed;
        let stime = {
            let sod = start.rem_euclid(86_400);
            if now - start < 86_400 {
                format!("{:02}:{:02}", sod / 3600, sod / 60 % 60)
            } else {
                let (_, m, d) = pier_common::time::civil_from_days(start.div_euclid(86_400));
                let months = [
                    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                    "Dec",
                ];
                format!("{}{d:02}", months[(m as usize).clamp(1, 12) - 1])
            }
        };
        let tty_nr = num(4);
        let tty = match (tty_nr >> 8) & 0xfff {
            0 => "?".to_string(),
            136..=143 => format!("pts/{}", (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00)),
            _ => "?".to_string(),
        };
        let time = format!(
            "{:02}:{:02}:{:02}",
            cpu_secs / 3600,
            cpu_secs / 60 % 60,
            cpu_secs % 60
        );
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmdline)
            .split('\0')
            .filter(|a| !a.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let cmd = if cmd.is_empty() {
            format!("[{comm}]")
        } else {
            cmd
        };
        rows.push(vec![
            user,
            pid.to_string(),
            num(1).to_string(),
            c.to_string(),
            stime,
            tty,
            time,
            cmd,
        ]);
    }
    json!({
        "Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        "Processes": rows,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn proc_fallback_reads_our_own_process() {
        let me = std::process::id() as i32;
        let v = super::proc_ps(&[me]);
        let row = &v["Processes"][0];
        assert_eq!(row[1], me.to_string());
        assert_eq!(row[2], std::os::unix::process::parent_id().to_string());
        assert!(row[7].as_str().unwrap().contains("pier_engine"), "{row}");
        assert_eq!(v["Titles"][7], "CMD");
    }

    use super::*;

    #[test]
    fn rows_are_filtered_by_pid_and_keep_the_command() {
        let out = "UID PID PPID C STIME TTY TIME CMD\n\
                   root 1 0 0 10:00 ? 00:00:01 /sbin/init splash\n\
                   root 42 1 0 10:01 ? 00:00:00 sleep 100\n\
                   root 43 42 0 10:01 ? 00:00:00 sh -c echo hi\n";
        let v = parse_ps(out, &[42, 43]).unwrap();
        assert_eq!(v["Titles"][7], "CMD");
        assert_eq!(v["Processes"].as_array().unwrap().len(), 2);
        assert_eq!(v["Processes"][0][1], "42");
        assert_eq!(v["Processes"][1][7], "sh -c echo hi");
        assert!(parse_ps("USER COMMAND\nroot x\n", &[1]).is_err());
    }

    #[test]
    fn thread_lines_follow_their_process() {
        let out = "USER PID TID CMD\nroot 42 - sleep\nroot - 42 -\nroot 7 - other\nroot - 7 -\n";
        let v = parse_ps(out, &[42]).unwrap();
        assert_eq!(v["Processes"].as_array().unwrap().len(), 2);
    }
}
