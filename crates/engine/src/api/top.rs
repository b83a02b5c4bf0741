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
        let out = match run(Some(format!("-q{pid_list}"))) {
            Ok(o) if o.status.success() && !pids.is_empty() => o,
            _ => {
                let o = run(None).map_err(|e| {
                    Error::internal(format!("running ps: {e}: install procps on the host"))
                })?;
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

#[cfg(test)]
mod tests {
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
