//! `docker commit --change`: Dockerfile instructions applied to the config
//! of the image being committed. As dockerd, only CMD, ENTRYPOINT, ENV,
//! EXPOSE, LABEL, ONBUILD, USER, VOLUME and WORKDIR are allowed.

use pier_builder::dockerfile::{self, expand, Command, Kind};
use serde_json::{json, Map, Value};

fn command(c: &Command) -> Value {
    match c {
        Command::Exec(args) => json!(args),
        Command::Shell(s) => json!(["/bin/sh", "-c", s]),
    }
}

fn object<'a>(config: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !config[key].is_object() {
        config[key] = json!({});
    }
    config[key].as_object_mut().expect("made an object above")
}

/// Applies each change (one instruction each) to `config` (docker's
/// container Config object). Errors name the change that is wrong.
pub fn apply(config: &mut Value, changes: &[String]) -> Result<(), String> {
    for change in changes {
        let parsed = dockerfile::parse(&format!("FROM scratch\n{change}\n"), "--change")
            .map_err(|e| format!("invalid change {change:?}: {}", e.message))?;
        let Some(stage) = parsed.stages.first() else {
            continue;
        };
        for ins in &stage.instructions {
            apply_one(config, &ins.kind, parsed.escape)
                .map_err(|e| format!("invalid change {change:?}: {e}"))?;
        }
    }
    Ok(())
}

fn apply_one(config: &mut Value, kind: &Kind, escape: char) -> Result<(), String> {
    let env: Vec<String> = config["Env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str().map(str::to_owned))
        .collect();
    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=').map(str::to_owned))
    };
    let word = |raw: &str| expand::word(raw, &lookup, escape);
    match kind {
        Kind::Cmd(c) => config["Cmd"] = command(c),
        Kind::Entrypoint(c) => config["Entrypoint"] = command(c),
        Kind::Env(pairs) => {
            let mut env = env.clone();
            for (k, v) in pairs {
                let (k, v) = (word(k)?, word(v)?);
                env.retain(|e| e.split('=').next() != Some(k.as_str()));
                env.push(format!("{k}={v}"));
            }
            config["Env"] = json!(env);
        }
        Kind::Expose(ports) => {
            for p in ports {
                for p in expand::words(p, &lookup, escape)? {
                    let p = if p.contains('/') {
                        p
                    } else {
                        format!("{p}/tcp")
                    };
                    object(config, "ExposedPorts").insert(p, json!({}));
                }
            }
        }
        Kind::Label(pairs) => {
            for (k, v) in pairs {
                let (k, v) = (word(k)?, word(v)?);
                object(config, "Labels").insert(k, json!(v));
            }
        }
        Kind::Onbuild(trigger) => {
            let list = config["OnBuild"].as_array().cloned().unwrap_or_default();
            let mut list = list;
            list.push(json!(trigger));
            config["OnBuild"] = json!(list);
        }
        Kind::User(u) => config["User"] = json!(word(u)?),
        Kind::Volume(paths) => {
            for p in paths {
                object(config, "Volumes").insert(word(p)?, json!({}));
            }
        }
        Kind::Workdir(w) => {
            let w = word(w)?;
            let base = config["WorkingDir"].as_str().unwrap_or("/").to_string();
            let dir = if w.starts_with('/') {
                w
            } else {
                format!("{}/{w}", base.trim_end_matches('/'))
            };
            config["WorkingDir"] = json!(super::mounts::clean(&dir));
        }
        other => {
            let name = format!("{other:?}");
            let name = name
                .split(['(', ' ', '{'])
                .next()
                .unwrap_or("")
                .to_uppercase();
            return Err(format!("{name} is not a valid change command"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_shape_the_config_as_docker_commit_does() {
        let mut c = json!({"Env": ["PATH=/bin"], "Cmd": ["sh"]});
        apply(
            &mut c,
            &[
                "VOLUME /data".into(),
                "VOLUME [\"/a\", \"/b\"]".into(),
                "ENV A=1 B=$PATH".into(),
                "CMD echo hi".into(),
                "ENTRYPOINT [\"/init\"]".into(),
                "EXPOSE 80 53/udp".into(),
                "LABEL k=v".into(),
                "USER nobody".into(),
                "WORKDIR /srv".into(),
                "WORKDIR app".into(),
            ],
        )
        .unwrap();
        assert_eq!(c["Volumes"], json!({"/data": {}, "/a": {}, "/b": {}}));
        assert_eq!(c["Env"], json!(["PATH=/bin", "A=1", "B=/bin"]));
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(c["Entrypoint"], json!(["/init"]));
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["Labels"], json!({"k": "v"}));
        assert_eq!(c["User"], json!("nobody"));
        assert_eq!(c["WorkingDir"], json!("/srv/app"));
    }

    #[test]
    fn other_instructions_are_refused() {
        let mut c = json!({});
        let e = apply(&mut c, &["RUN true".into()]).unwrap_err();
        assert!(e.contains("RUN is not a valid change command"), "{e}");
        assert!(apply(&mut c, &["NOPE x".into()]).is_err());
    }
}
