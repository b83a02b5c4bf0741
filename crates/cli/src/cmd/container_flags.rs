//! The flags `pier run` and `pier create` share, spelled and parsed as the
//! Docker CLI does, and the `POST /containers/create` body they make.
//!
//! Values are taken as strings and parsed here rather than by clap, so a
//! bad value fails with Docker's own message (`invalid argument "xyz" for
//! "-m, --memory" flag: invalid size: 'xyz'`) and exit code 125, before
//! anything is sent to the daemon.

use crate::error::CliError;
use serde_json::{json, Map, Value};

/// The commands that flatten these flags disable clap's `-h` (Docker's
/// `-h` is `--hostname`) and get `--help` from here.
#[derive(Debug, Default, clap::Args)]
pub struct ContainerFlags {
    /// Print usage
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    pub rm: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables (KEY=VALUE, or KEY to pass the local value)
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Set meta data on a container
    #[arg(short, long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Restart policy to apply when a container exits (no, on-failure[:max-retries], always, unless-stopped)
    #[arg(long, value_name = "POLICY")]
    pub restart: Option<String>,
    /// Memory limit (e.g. 512m, 1g)
    #[arg(short, long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long, value_name = "DECIMAL", allow_hyphen_values = true)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(
        short = 'c',
        long = "cpu-shares",
        value_name = "INT",
        allow_hyphen_values = true
    )]
    pub cpu_shares: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "CPUS")]
    pub cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "INT", allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
    /// Ulimit options (NAME=SOFT[:HARD])
    #[arg(long, value_name = "ULIMIT")]
    pub ulimit: Vec<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Security Options
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Networking: --network, -p, --dns, --add-host... (net_flags.rs)
    #[command(flatten)]
    pub net: super::net_flags::NetFlags,
    /// Signal to stop the container
    #[arg(long = "stop-signal", value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", value_name = "INT", allow_hyphen_values = true)]
    pub stop_timeout: Option<String>,
    /// Bind mount a volume (SRC:DST[:OPTS], or DST for an anonymous volume)
    #[arg(short = 'v', long, value_name = "VOLUME")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container (type=bind|volume|tmpfs,src=,dst=,...)
    #[arg(long, value_name = "MOUNT")]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory (DST[:OPTS])
    #[arg(long, value_name = "DST")]
    pub tmpfs: Vec<String>,
    /// Mount volumes from the specified container(s) (CONTAINER[:ro|rw])
    #[arg(long = "volumes-from", value_name = "CONTAINER")]
    pub volumes_from: Vec<String>,
}

/// Docker's message for a flag value it cannot parse.
fn bad(value: &str, flag: &str, why: impl std::fmt::Display) -> CliError {
    CliError::engine(format!(
        "invalid argument \"{value}\" for \"{flag}\" flag: {why}"
    ))
}

/// Go's strconv.ParseInt, with its error text.
fn parse_int(s: &str) -> Result<i64, String> {
    s.parse::<i64>().map_err(|e| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!("strconv.ParseInt: parsing \"{s}\": {why}")
    })
}

/// A size with an optional binary unit (b, k, m, g, t, p; optional `i`
/// and `b` after it), as Docker's `RAMInBytes`.
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, rest) = s.split_at(num_end);
    let size: f64 = match num.parse() {
        Ok(n) if !num.is_empty() && !num.starts_with('.') => n,
        _ => return Err(format!("invalid size: '{s}'")),
    };
    let unit = rest.strip_prefix(' ').unwrap_or(rest).to_ascii_lowercase();
    let mul: i64 = match unit.as_bytes() {
        [] | [b'b'] => 1,
        [u] | [u, b'b'] | [u, b'i'] | [u, b'i', b'b'] => match u {
            b'k' => 1 << 10,
            b'm' => 1 << 20,
            b'g' => 1 << 30,
            b't' => 1 << 40,
            b'p' => 1 << 50,
            _ => return Err(format!("invalid suffix: '{rest}'")),
        },
        _ => return Err(format!("invalid suffix: '{rest}'")),
    };
    Ok((size * mul as f64) as i64)
}

/// `--cpus` as nano CPUs (a decimal, as Docker's NanoCPUs flag).
pub fn nano_cpus(s: &str) -> Result<i64, String> {
    let err = || format!("failed to parse {s} as a rational number");
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(err());
    }
    let int: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| err())?
    };
    let mut nanos: i64 = 0;
    for (i, d) in frac.bytes().take(9).enumerate() {
        nanos += i64::from(d - b'0') * 10i64.pow(8 - i as u32);
    }
    if frac.bytes().skip(9).any(|b| b != b'0') {
        return Err("value is too precise".to_string());
    }
    let v = int
        .checked_mul(1_000_000_000)
        .and_then(|v| v.checked_add(nanos))
        .ok_or_else(err)?;
    Ok(if neg { -v } else { v })
}

const ULIMITS: &[&str] = pier_common::ULIMIT_NAMES;

/// `NAME=SOFT[:HARD]` as Docker's `units.ParseUlimit`.
pub fn ulimit(s: &str) -> Result<Value, String> {
    let Some((name, limits)) = s.split_once('=') else {
        return Err(format!("invalid ulimit argument: {s}"));
    };
    if !ULIMITS.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let (soft, hard) = match limits.split_once(':') {
        Some((s, h)) => (parse_int(s)?, parse_int(h)?),
        None => {
            let v = parse_int(limits)?;
            (v, v)
        }
    };
    if soft > hard {
        return Err(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(json!({"Name": name, "Soft": soft, "Hard": hard}))
}

/// `--restart` as Docker's RestartPolicy (the name is checked by the daemon).
pub fn restart_policy(s: &str) -> Result<Value, String> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => {
            let c: i64 = c.parse().map_err(|_| {
                "invalid restart policy format: maximum retry count must be an integer".to_string()
            })?;
            (n, c)
        }
        None => (s, 0),
    };
    Ok(json!({"Name": name, "MaximumRetryCount": count}))
}

/// `--security-opt`: checked and, for a seccomp profile file, replaced by
/// the profile's JSON, as the Docker CLI does.
pub fn security_opt(opt: &str) -> Result<String, CliError> {
    let (k, v, ok) = match opt.split_once('=') {
        Some((k, v)) => (k, v, true),
        None if opt == "no-new-privileges" => (opt, "", true),
        None => match opt.split_once(':') {
            Some((k, v)) => (k, v, true),
            None => (opt, "", false),
        },
    };
    if (!ok || v.is_empty()) && k != "no-new-privileges" {
        return Err(CliError::engine(format!("Invalid --security-opt: {opt:?}")));
    }
    if k == "seccomp" && v != "unconfined" && v != "builtin" {
        let data = std::fs::read(v)
            .map_err(|e| CliError::engine(format!("opening seccomp profile ({v}) failed: {e}")))?;
        let json: Value = serde_json::from_slice(&data).map_err(|e| {
            CliError::engine(format!(
                "compacting json for seccomp profile ({v}) failed: {e}"
            ))
        })?;
        return Ok(format!("seccomp={json}"));
    }
    Ok(opt.to_string())
}

/// `-e KEY` takes KEY's value from the local environment, as Docker does;
/// without one, the variable is left out.
fn env_item(e: &str) -> Option<String> {
    if e.contains('=') {
        Some(e.to_string())
    } else {
        std::env::var(e).ok().map(|v| format!("{e}={v}"))
    }
}

/// The variables of an `--env-file`: one per line, blank lines and `#`
/// comments skipped, as Docker's ParseEnvFile.
pub fn env_file(path: &str) -> Result<Vec<String>, CliError> {
    let data = std::fs::read_to_string(path).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
            _ => e.to_string(),
        };
        CliError::engine(format!("open {path}: {why}"))
    })?;
    let mut out = Vec::new();
    for line in data.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.split('=').next().unwrap_or("");
        if key.is_empty() {
            return Err(CliError::engine(format!(
                "invalid environment variable: {line}"
            )));
        }
        if key.contains(char::is_whitespace) {
            return Err(CliError::engine(format!(
                "variable '{key}' contains whitespaces"
            )));
        }
        out.extend(env_item(line));
    }
    Ok(out)
}

impl ContainerFlags {
    /// The `POST /containers/create` body for `image` running `cmd`, with
    /// Docker's create defaults (not attached; `run` sets the attach fields).
    pub fn create_body(&self, image: &str, cmd: &[String]) -> Result<Value, CliError> {
        let mut env = Vec::new();
        for f in &self.env_file {
            env.extend(env_file(f)?);
        }
        env.extend(self.env.iter().filter_map(|e| env_item(e)));

        let mut labels = Map::new();
        for l in &self.label {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            labels.insert(k.to_string(), json!(v));
        }

        let mut hc = Map::new();
        hc.insert("AutoRemove".into(), json!(self.rm));
        // NetworkMode, ports, DNS, hosts; and the body's parts for them.
        let mut net_body = json!({});
        self.net.apply(&mut hc, &mut net_body)?;
        hc.insert("Privileged".into(), json!(self.privileged));
        hc.insert("ReadonlyRootfs".into(), json!(self.read_only));
        if self.init {
            hc.insert("Init".into(), json!(true));
        }
        if let Some(r) = &self.restart {
            let policy = restart_policy(r).map_err(CliError::engine)?;
            if self.rm && policy["Name"] != "no" && policy["Name"] != "" {
                return Err(CliError::engine("Conflicting options: --restart and --rm"));
            }
            hc.insert("RestartPolicy".into(), policy);
        }
        if let Some(m) = &self.memory {
            let v = ram_in_bytes(m).map_err(|e| bad(m, "-m, --memory", e))?;
            hc.insert("Memory".into(), json!(v));
        }
        if let Some(m) = &self.memory_swap {
            let v = if m == "-1" {
                -1
            } else {
                ram_in_bytes(m).map_err(|e| bad(m, "--memory-swap", e))?
            };
            hc.insert("MemorySwap".into(), json!(v));
        }
        if let Some(c) = &self.cpus {
            let v = nano_cpus(c).map_err(|e| bad(c, "--cpus", e))?;
            hc.insert("NanoCpus".into(), json!(v));
        }
        if let Some(c) = &self.cpu_shares {
            let v = parse_int(c).map_err(|e| bad(c, "-c, --cpu-shares", e))?;
            hc.insert("CpuShares".into(), json!(v));
        }
        if let Some(c) = &self.cpuset_cpus {
            hc.insert("CpusetCpus".into(), json!(c));
        }
        if let Some(p) = &self.pids_limit {
            let v = parse_int(p).map_err(|e| bad(p, "--pids-limit", e))?;
            hc.insert("PidsLimit".into(), json!(v));
        }
        if !self.ulimit.is_empty() {
            let mut list: Vec<Value> = Vec::new();
            for u in &self.ulimit {
                let v = ulimit(u).map_err(|e| bad(u, "--ulimit", e))?;
                // A later --ulimit of the same name replaces the earlier one.
                list.retain(|x| x["Name"] != v["Name"]);
                list.push(v);
            }
            hc.insert("Ulimits".into(), json!(list));
        }
        if !self.cap_add.is_empty() {
            hc.insert("CapAdd".into(), json!(self.cap_add));
        }
        if !self.cap_drop.is_empty() {
            hc.insert("CapDrop".into(), json!(self.cap_drop));
        }
        if !self.security_opt.is_empty() {
            let opts = self
                .security_opt
                .iter()
                .map(|o| security_opt(o))
                .collect::<Result<Vec<_>, _>>()?;
            hc.insert("SecurityOpt".into(), json!(opts));
        }

        let volumes = super::mount_flags::MountFlags {
            volume: &self.volume,
            mount: &self.mount,
            tmpfs: &self.tmpfs,
            volumes_from: &self.volumes_from,
        }
        .apply(&mut hc)?;

        let stop_timeout = match &self.stop_timeout {
            Some(t) => Some(parse_int(t).map_err(|e| bad(t, "--stop-timeout", e))?),
            None => None,
        };
        let mut body = json!({
            "Image": image,
            "Env": env,
            "WorkingDir": self.workdir.clone().unwrap_or_default(),
            "User": self.user.clone().unwrap_or_default(),
            "Hostname": self.hostname.clone().unwrap_or_default(),
            "Labels": labels,
            "AttachStdin": false,
            "AttachStdout": false,
            "AttachStderr": false,
            "OpenStdin": self.interactive,
            "StdinOnce": false,
            "Tty": self.tty,
            "HostConfig": hc,
        });
        for (k, v) in net_body.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        if !cmd.is_empty() {
            body["Cmd"] = json!(cmd);
        }
        if let Some(e) = &self.entrypoint {
            body["Entrypoint"] = if e.is_empty() { json!([]) } else { json!([e]) };
        }
        if let Some(v) = volumes {
            body["Volumes"] = v;
        }
        if let Some(s) = &self.stop_signal {
            body["StopSignal"] = json!(s);
        }
        if let Some(t) = stop_timeout {
            body["StopTimeout"] = json!(t);
        }
        Ok(body)
    }

    /// The create path with the name, if any.
    pub fn create_path(&self) -> String {
        match &self.name {
            Some(n) => format!("/containers/create?name={}", crate::client::encode(n)),
            None => "/containers/create".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_docker_parses_them() {
        assert_eq!(ram_in_bytes("512m"), Ok(512 << 20));
        assert_eq!(ram_in_bytes("1g"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("64k"), Ok(64 << 10));
        assert_eq!(ram_in_bytes("100"), Ok(100));
        assert_eq!(ram_in_bytes("100b"), Ok(100));
        assert_eq!(ram_in_bytes("10.5m"), Ok(11010048));
        assert_eq!(ram_in_bytes("xyz"), Err("invalid size: 'xyz'".into()));
        assert_eq!(ram_in_bytes("10z"), Err("invalid suffix: 'z'".into()));
        assert_eq!(ram_in_bytes(""), Err("invalid size: ''".into()));
    }

    #[test]
    fn cpus_as_nano_cpus() {
        assert_eq!(nano_cpus("1.5"), Ok(1_500_000_000));
        assert_eq!(nano_cpus("0.25"), Ok(250_000_000));
        assert_eq!(nano_cpus("2"), Ok(2_000_000_000));
        assert_eq!(nano_cpus("-1"), Ok(-1_000_000_000));
        assert_eq!(
            nano_cpus("abc"),
            Err("failed to parse abc as a rational number".into())
        );
        assert!(nano_cpus("1.5x").is_err());
        assert!(nano_cpus(".").is_err());
    }

    #[test]
    fn ulimits_as_docker_parses_them() {
        assert_eq!(
            ulimit("nofile=1024:2048").unwrap(),
            json!({"Name": "nofile", "Soft": 1024, "Hard": 2048})
        );
        assert_eq!(ulimit("nproc=10").unwrap()["Hard"], 10);
        assert_eq!(
            ulimit("nofile"),
            Err("invalid ulimit argument: nofile".into())
        );
        assert_eq!(ulimit("foo=1"), Err("invalid ulimit type: foo".into()));
        assert_eq!(
            ulimit("nofile=abc"),
            Err("strconv.ParseInt: parsing \"abc\": invalid syntax".into())
        );
        assert_eq!(
            ulimit("nofile=10:5"),
            Err("ulimit soft limit must be less than or equal to hard limit: 10 > 5".into())
        );
    }

    #[test]
    fn security_opts_checked_as_the_docker_cli() {
        assert_eq!(
            security_opt("no-new-privileges").unwrap(),
            "no-new-privileges"
        );
        assert_eq!(
            security_opt("no-new-privileges:true").unwrap(),
            "no-new-privileges:true"
        );
        assert_eq!(
            security_opt("seccomp=unconfined").unwrap(),
            "seccomp=unconfined"
        );
        assert_eq!(
            security_opt("foo").unwrap_err().message,
            "Invalid --security-opt: \"foo\""
        );
        assert!(security_opt("seccomp=/nonexistent/profile.json")
            .unwrap_err()
            .message
            .starts_with("opening seccomp profile (/nonexistent/profile.json) failed"));
    }

    #[test]
    fn body_carries_the_host_config() {
        let f = ContainerFlags {
            memory: Some("64m".into()),
            cpus: Some("0.5".into()),
            pids_limit: Some("20".into()),
            ulimit: vec!["nofile=100:200".into()],
            cap_drop: vec!["CHOWN".into()],
            label: vec!["a=b".into(), "c".into()],
            restart: Some("on-failure:3".into()),
            stop_timeout: Some("5".into()),
            init: true,
            ..Default::default()
        };
        let b = f.create_body("busybox", &["true".into()]).unwrap();
        let hc = &b["HostConfig"];
        assert_eq!(hc["Memory"], 64 << 20);
        assert_eq!(hc["NanoCpus"], 500_000_000);
        assert_eq!(hc["PidsLimit"], 20);
        assert_eq!(hc["Ulimits"][0]["Soft"], 100);
        assert_eq!(hc["CapDrop"], json!(["CHOWN"]));
        assert_eq!(
            hc["RestartPolicy"],
            json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        assert_eq!(hc["Init"], true);
        // As the docker 28 CLI: no --network is "default".
        assert_eq!(hc["NetworkMode"], "default");
        assert_eq!(b["Labels"], json!({"a": "b", "c": ""}));
        assert_eq!(b["StopTimeout"], 5);
        assert_eq!(b["Cmd"], json!(["true"]));

        let f = ContainerFlags {
            memory: Some("xyz".into()),
            ..Default::default()
        };
        assert_eq!(
            f.create_body("busybox", &[]).unwrap_err().message,
            "invalid argument \"xyz\" for \"-m, --memory\" flag: invalid size: 'xyz'"
        );
        let f = ContainerFlags {
            rm: true,
            restart: Some("always".into()),
            ..Default::default()
        };
        assert!(f.create_body("busybox", &[]).is_err());
    }
}
