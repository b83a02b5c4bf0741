//! Docker's container list filters (`GET /containers/json?filters=`, also
//! used by `POST /containers/prune`): values of one key are alternatives,
//! different keys must all hold; `label` filters must all hold.

use super::logs::{parse_time, Time};
use super::{ContainerRecord, Status};

/// Parsed filters; build with [`Filters::parse`].
#[derive(Debug, Default)]
pub struct Filters {
    ids: Vec<String>,
    names: Vec<String>,
    labels: Vec<String>,
    statuses: Vec<String>,
    exited: Vec<i32>,
    /// Image ids the `ancestor` values resolved to (unknown images match
    /// nothing).
    ancestors: Option<Vec<String>>,
    before: Option<Time>,
    since: Option<Time>,
    /// `health=`: only "none" matches, no container has a health check.
    health: Option<bool>,
    /// `until=` (prune): created before this unix time.
    until: Option<Time>,
    /// `network=`: the network's name ("none", "host").
    networks: Vec<String>,
    /// A volume's name or a mount's destination.
    volumes: Vec<String>,
    /// A filter on something pier containers have none of (volumes,
    /// ports): nothing matches.
    never: bool,
}

/// A filter problem: (HTTP 400 or 404 as docker, message).
#[derive(Debug)]
pub enum FilterError {
    Invalid(String),
    NoSuchContainer(String),
}

const STATUSES: [&str; 7] = [
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

/// The container's creation time.
pub fn created(rec: &ContainerRecord) -> Time {
    parse_time(&rec.created).unwrap_or((0, 0))
}

/// Docker's state word for a container (`paused`, `restarting` once the
/// record has them).
pub fn state_word(rec: &ContainerRecord) -> &'static str {
    rec.state.status_str()
}

impl Filters {
    /// `pairs` from the query's `filters`; `allowed` the keys this endpoint
    /// takes; `container` finds a container by name or id (for
    /// before/since); `image` resolves an image reference to its id.
    pub fn parse(
        pairs: &[(String, String)],
        allowed: &[&str],
        container: &dyn Fn(&str) -> Option<ContainerRecord>,
        image: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Filters, FilterError> {
        let mut f = Filters::default();
        for (k, v) in pairs {
            if !allowed.contains(&k.as_str()) {
                return Err(FilterError::Invalid(format!("Invalid filter '{k}'")));
            }
            match k.as_str() {
                "id" => f.ids.push(v.clone()),
                "name" => f.names.push(v.trim_start_matches('/').to_string()),
                "label" => f.labels.push(v.clone()),
                "status" => {
                    if !STATUSES.contains(&v.as_str()) {
                        return Err(FilterError::Invalid(format!("Invalid filter 'status={v}'")));
                    }
                    f.statuses.push(v.clone());
                }
                "exited" => f.exited.push(v.parse().map_err(|_| {
                    FilterError::Invalid(format!(
                        "invalid filter 'exited={v}': give an exit code (a number)"
                    ))
                })?),
                "ancestor" => {
                    let list = f.ancestors.get_or_insert_with(Vec::new);
                    if let Some(id) = image(v) {
                        list.push(id);
                    }
                }
                "before" | "since" => {
                    let rec =
                        container(v).ok_or_else(|| FilterError::NoSuchContainer(v.clone()))?;
                    let t = Some(created(&rec));
                    if k == "before" {
                        f.before = t;
                    } else {
                        f.since = t;
                    }
                }
                "health" => match v.as_str() {
                    "none" => f.health = Some(true),
                    "starting" | "healthy" | "unhealthy" => {
                        f.health.get_or_insert(false);
                    }
                    _ => {
                        return Err(FilterError::Invalid(format!(
                            "Unrecognised filter value for health: {v}"
                        )))
                    }
                },
                "until" => f.until = Some(parse_until(v)?),
                "network" => f.networks.push(v.clone()),
                "volume" => f.volumes.push(v.clone()),
                // Ports: pier containers have none to match.
                "publish" | "expose" | "is-task" | "isolation" => {
                    f.never = true;
                }
                _ => return Err(FilterError::Invalid(format!("Invalid filter '{k}'"))),
            }
        }
        Ok(f)
    }

    /// Whether a `status` filter was given (docker then lists all).
    pub fn has_status(&self) -> bool {
        !self.statuses.is_empty()
    }

    pub fn matches(&self, rec: &ContainerRecord) -> bool {
        if self.never {
            return false;
        }
        if !self.ids.is_empty() && !self.ids.iter().any(|i| rec.id.starts_with(i.as_str())) {
            return false;
        }
        if !self.names.is_empty() && !self.names.iter().any(|n| name_matches(n, &rec.name)) {
            return false;
        }
        let labels = rec.config.labels.clone().unwrap_or_default();
        let label_ok = |l: &String| match l.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(l),
        };
        if !self.labels.iter().all(label_ok) {
            return false;
        }
        if !self.statuses.is_empty() && !self.statuses.iter().any(|s| s == state_word(rec)) {
            return false;
        }
        if !self.exited.is_empty() {
            let exited = rec.state.status == Status::Exited
                || (rec.state.status == Status::Dead && !rec.state.started_at.is_empty());
            if !exited || !self.exited.contains(&rec.state.exit_code) {
                return false;
            }
        }
        if let Some(a) = &self.ancestors {
            if !a.contains(&rec.image_id) {
                return false;
            }
        }
        let t = created(rec);
        if self.before.is_some_and(|b| t >= b) || self.since.is_some_and(|s| t <= s) {
            return false;
        }
        if self.until.is_some_and(|u| t >= u) {
            return false;
        }
        if !self.networks.is_empty()
            && !self
                .networks
                .iter()
                .any(|n| rec.networks.contains_key(n) || *n == network_name(rec))
        {
            return false;
        }
        if !self.volumes.is_empty()
            && !rec.mounts.iter().any(|m| {
                self.volumes
                    .iter()
                    .any(|v| *v == m.source || *v == m.destination)
            })
        {
            return false;
        }
        if self.health == Some(false) {
            return false;
        }
        true
    }
}

impl Filters {
    /// `network=` values that name a bridge network by name or id prefix
    /// become its id (`id_of`), so any network a container is on matches.
    pub fn resolve_networks(&mut self, id_of: &dyn Fn(&str) -> Option<String>) {
        for n in &mut self.networks {
            if let Some(id) = id_of(n) {
                *n = id;
            }
        }
    }
}

/// The network a container's mode names: `host`, `none`, `bridge`, a
/// user network's name as given, `container:ID`.
pub fn network_name(rec: &ContainerRecord) -> String {
    match rec.host_config.network_mode.as_deref() {
        None | Some("") | Some("default") => "none".into(),
        Some(m) => m.to_string(),
    }
}

/// Docker matches names as a regular expression; the common forms are a
/// substring and `^`/`$` anchors.
fn name_matches(pattern: &str, name: &str) -> bool {
    let (start, p) = match pattern.strip_prefix('^') {
        Some(p) => (true, p.trim_start_matches('/')),
        None => (false, pattern),
    };
    let (end, p) = match p.strip_suffix('$') {
        Some(p) => (true, p),
        None => (false, p),
    };
    match (start, end) {
        (true, true) => name == p,
        (true, false) => name.starts_with(p),
        (false, true) => name.ends_with(p),
        (false, false) => name.contains(p),
    }
}

/// `until=`: unix seconds (with fraction), RFC 3339, or a duration before
/// now (`10m`, `24h`), as docker's prune takes it.
pub fn parse_until(v: &str) -> Result<Time, FilterError> {
    let bad = || {
        FilterError::Invalid(format!("invalid filter 'until={v}': give unix seconds, an RFC 3339 time or a duration such as 10m"))
    };
    if let Ok(Some(t)) = super::logs::parse_api_time(v) {
        return Ok(t);
    }
    if let Some(t) = parse_time(v) {
        return Ok(t);
    }
    let d = pier_common::duration::parse_go_duration(v).ok_or_else(bad)?;
    let (now, nanos) = pier_common::time::unix_now();
    let total = i128::from(now) * 1_000_000_000 + i128::from(nanos) - d;
    Ok((
        total.div_euclid(1_000_000_000) as i64,
        total.rem_euclid(1_000_000_000) as u32,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_as_docker_regexps_do() {
        assert!(name_matches("web", "my-web-1"));
        assert!(name_matches("^web", "web-1"));
        assert!(!name_matches("^web", "my-web"));
        assert!(name_matches("^/web$", "web"));
        assert!(!name_matches("web$", "web-1"));
    }
}
