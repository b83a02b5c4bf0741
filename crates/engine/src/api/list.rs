//! `GET /containers/json` (docker's container list, with `all`, `limit`,
//! `size` and `filters`) and `POST /containers/prune`.

use super::images::parse_filters;
use super::{flag, Query, State};
use crate::container::filters::{FilterError, Filters};
use crate::container::{ContainerRecord, Status};
use crate::error::{Error, Result};
use crate::Engine;
use axum::Json;
use pier_common::time::human_duration;
use std::collections::HashMap;

const LIST_FILTERS: &[&str] = &[
    "id",
    "name",
    "label",
    "status",
    "exited",
    "ancestor",
    "before",
    "since",
    "health",
    "network",
    "volume",
    "publish",
    "expose",
    "is-task",
    "isolation",
];

fn filter_error(e: FilterError) -> Error {
    match e {
        FilterError::Invalid(m) => Error::bad_request(m),
        FilterError::NoSuchContainer(n) => Error::not_found(format!("no such container {n}")),
    }
}

/// Parses the query's `filters` for containers of `engine`.
fn filters(engine: &Engine, q: &HashMap<String, String>, allowed: &[&str]) -> Result<Filters> {
    let pairs = parse_filters(q)?;
    let mut f = Filters::parse(
        &pairs,
        allowed,
        &|name| engine.find(name).ok().map(|h| h.record()),
        &|image| engine.images.resolve(image).ok().map(|i| i.id),
    )
    .map_err(filter_error)?;
    f.resolve_networks(&|n| engine.networks.find(n).ok().map(|r| r.id));
    Ok(f)
}

pub async fn list(engine: State, q: Query) -> Result<Json<Vec<serde_json::Value>>> {
    let limit = match q.get("limit").map(|l| l.trim()).filter(|l| !l.is_empty()) {
        Some(l) => l
            .parse::<i64>()
            .map_err(|_| Error::bad_request(format!("invalid limit {l:?}: give a number")))?,
        None => -1,
    };
    let with_size = flag(&q, "size");
    let e = engine.0.clone();
    let out = tokio::task::spawn_blocking(move || -> Result<Vec<serde_json::Value>> {
        let f = filters(&e, &q, LIST_FILTERS)?;
        let all = flag(&q, "all") || limit > 0 || f.has_status();
        let mut recs: Vec<ContainerRecord> = e
            .list()
            .into_iter()
            .filter(|c| all || c.state.running())
            .filter(|c| f.matches(c))
            .collect();
        recs.sort_by_key(|c| std::cmp::Reverse(crate::container::filters::created(c)));
        if limit > 0 {
            recs.truncate(limit as usize);
        }
        let image_sizes: HashMap<String, u64> = if with_size {
            e.images
                .list()
                .unwrap_or_default()
                .into_iter()
                .map(|i| (i.id, i.size))
                .collect()
        } else {
            HashMap::new()
        };
        Ok(recs
            .iter()
            .map(|c| {
                let mut v = summary(c);
                v["Mounts"] = e.mounts_json(c);
                v["Ports"] = crate::network::json::ports_list(c);
                v["NetworkSettings"]["Networks"] =
                    crate::network::json::container_networks(&e.networks, c);
                if with_size {
                    let rw =
                        crate::container::size::size_rw(&e.container_path(&c.id).join("upper"));
                    let image = image_sizes.get(&c.image_id).copied().unwrap_or(0);
                    if rw > 0 {
                        v["SizeRw"] = rw.into();
                    }
                    v["SizeRootFs"] = (image + rw).into();
                }
                v
            })
            .collect())
    })
    .await??;
    Ok(Json(out))
}

/// One entry of the list, as docker writes it.
fn summary(c: &ContainerRecord) -> serde_json::Value {
    let created = pier_common::time::parse_rfc3339(&c.created).unwrap_or(0);
    let network_mode = c
        .host_config
        .network_mode
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "default".into());
    serde_json::json!({
        "Id": c.id,
        "Names": [format!("/{}", c.name)],
        "Image": c.image,
        "ImageID": c.image_id,
        "Command": command(c),
        "Created": created,
        "Ports": [],
        "Labels": c.config.labels.clone().unwrap_or_default(),
        "State": crate::container::filters::state_word(c),
        "Status": status_text(c),
        "HostConfig": { "NetworkMode": network_mode },
        "NetworkSettings": { "Networks": { crate::container::filters::network_name(c): {
            "IPAMConfig": null, "Links": null, "Aliases": null, "NetworkID": "",
            "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
            "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "MacAddress": "", "DriverOpts": null,
        } } },
    })
}

/// The command as docker's list shows it: arguments with spaces in single
/// quotes.
pub fn command(c: &ContainerRecord) -> String {
    let mut s = c.path.clone();
    for a in &c.args {
        s.push(' ');
        if a.contains(' ') {
            s.push('\'');
            s.push_str(a);
            s.push('\'');
        } else {
            s.push_str(a);
        }
    }
    s
}

/// `docker ps`'s STATUS column: "Up 5 seconds", "Exited (0) 2 minutes ago".
pub fn status_text(c: &ContainerRecord) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let since = |t: &str| human_duration(now - pier_common::time::parse_rfc3339(t).unwrap_or(now));
    if c.state.restarting {
        return format!(
            "Restarting ({}) {} ago",
            c.state.exit_code,
            since(&c.state.finished_at)
        );
    }
    match c.state.status {
        Status::Created => "Created".into(),
        Status::Running if c.state.paused => {
            format!("Up {} (Paused)", since(&c.state.started_at))
        }
        Status::Running => format!("Up {}", since(&c.state.started_at)),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            c.state.exit_code,
            since(&c.state.finished_at)
        ),
        Status::Dead => "Dead".into(),
    }
}

/// `POST /containers/prune?filters=`: removes every stopped container
/// (matching `until` and `label`/`label!`).
pub async fn prune(engine: State, q: Query) -> Result<Json<serde_json::Value>> {
    let pairs = parse_filters(&q)?;
    // `label!=k[=v]`: containers without that label.
    let (negated, pairs): (Vec<_>, Vec<_>) = pairs.into_iter().partition(|(k, _)| k == "label!");
    let f =
        Filters::parse(&pairs, &["until", "label"], &|_| None, &|_| None).map_err(filter_error)?;
    let mut deleted = Vec::new();
    let mut reclaimed: u64 = 0;
    for c in engine.list() {
        if c.state.running() || !f.matches(&c) {
            continue;
        }
        let labels = c.config.labels.clone().unwrap_or_default();
        if negated.iter().any(|(_, l)| match l.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(l),
        }) {
            continue;
        }
        let Ok(h) = engine.find(&c.id) else { continue };
        let upper = engine.container_path(&c.id).join("upper");
        let size = tokio::task::spawn_blocking(move || crate::container::size::size_rw(&upper))
            .await
            .unwrap_or(0);
        match engine.remove(&h, false).await {
            Ok(()) => {
                reclaimed += size;
                deleted.push(c.id.clone());
            }
            // A container that started meanwhile stays, as in docker.
            Err(e) => eprintln!("pierd: prune: not removing {}: {e}", c.id),
        }
    }
    // As dockerd: one `container prune` event with the space reclaimed.
    engine.emit(
        "container",
        "prune",
        "",
        HashMap::from([("reclaimed".to_string(), reclaimed.to_string())]),
    );
    Ok(Json(serde_json::json!({
        "ContainersDeleted": if deleted.is_empty() { serde_json::Value::Null } else { deleted.into() },
        "SpaceReclaimed": reclaimed,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_quote_arguments_with_spaces_as_docker() {
        let mut c: ContainerRecord = serde_json::from_value(serde_json::json!({
            "id": "0".repeat(64), "name": "n", "created": "2026-11-30T10:00:00Z",
            "image": "i", "image_id": "sha256:1", "path": "echo",
            "args": ["a b", "x\"y", "it's", "", "plain"],
            "config": {}, "host_config": {}, "state": {"status": "created"}
        }))
        .unwrap();
        assert_eq!(command(&c), "echo 'a b' x\"y it's  plain");
        c.args.clear();
        assert_eq!(command(&c), "echo");
    }
}
