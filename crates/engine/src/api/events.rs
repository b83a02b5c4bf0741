//! `GET /events`: docker's event stream, one JSON object per line, with
//! `since` and `until` (unix seconds, fractions allowed) and `filters`
//! (type, event, container, image, label).

use super::{Query, State};
use crate::engine::Event;
use crate::error::{Error, Result};
use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use tokio::sync::broadcast::error::RecvError;

/// A docker timestamp (`1700000000`, `1700000000.123456789`) in
/// nanoseconds since the epoch.
fn parse_time(key: &str, v: &str) -> Result<i64> {
    let bad = || {
        Error::bad_request(format!(
            "invalid {key} value {v:?}: give a unix timestamp in seconds (fractions allowed)"
        ))
    };
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    if frac.len() > 9 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let nanos: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    Ok(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// Docker's `filters`: `{"key":["v",...]}` or the older `{"key":{"v":true}}`.
pub fn parse_filters(raw: &str) -> Result<HashMap<String, Vec<String>>> {
    if raw.is_empty() {
        return Ok(HashMap::new());
    }
    let value: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| Error::bad_request(format!("invalid filters {raw:?}: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| Error::bad_request(format!("invalid filters {raw:?}: not an object")))?;
    let mut out = HashMap::new();
    for (k, v) in obj {
        let vals: Vec<String> = match v {
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            serde_json::Value::Object(m) => m.keys().cloned().collect(),
            _ => return Err(Error::bad_request(format!("invalid filter {k:?}"))),
        };
        out.insert(k.clone(), vals);
    }
    Ok(out)
}

struct Filter(HashMap<String, Vec<String>>);

impl Filter {
    fn new(f: HashMap<String, Vec<String>>) -> Result<Filter> {
        for k in f.keys() {
            if !matches!(
                k.as_str(),
                "type" | "event" | "container" | "image" | "label" | "scope" | "volume"
            ) {
                return Err(Error::bad_request(format!("invalid filter '{k}'")));
            }
        }
        Ok(Filter(f))
    }

    fn any(&self, key: &str, ok: impl Fn(&str) -> bool) -> bool {
        self.0
            .get(key)
            .is_none_or(|vals| vals.is_empty() || vals.iter().any(|v| ok(v)))
    }

    fn matches(&self, ev: &Event) -> bool {
        let attr = |k: &str| ev.actor.attributes.get(k).map_or("", String::as_str);
        self.any("type", |v| v == ev.typ)
            && self.any("scope", |v| v == ev.scope)
            // exec_start: sh -> exec_start
            && self.any("event", |v| {
                v == ev.action || ev.action.split(':').next() == Some(v)
            })
            && self.any("container", |v| {
                ev.typ == "container"
                    && (v == ev.actor.id
                        || v == attr("name")
                        || (!v.is_empty() && ev.actor.id.starts_with(v)))
            })
            && self.any("volume", |v| ev.typ == "volume" && v == ev.actor.id)
            && self.any("image", |v| {
                v == attr("image") || (ev.typ == "image" && v == ev.actor.id)
            })
            && self.any("label", |v| match v.split_once('=') {
                Some((k, val)) => ev.actor.attributes.get(k).is_some_and(|x| x == val),
                None => ev.actor.attributes.contains_key(v),
            })
    }
}

/// One event as a line. Clients older than API 1.52 also get the
/// deprecated `status`, `id` and `from` fields, as dockerd sends them: the
/// docker CLI below 1.30 waits for a `--rm` container's end by them.
fn line(ev: &Event, old_fields: bool) -> Bytes {
    let mut v = if old_fields {
        let mut obj = serde_json::to_value(ev).unwrap_or_default();
        if let Some(o) = obj.as_object_mut() {
            o.insert("status".into(), ev.action.clone().into());
            o.insert("id".into(), ev.actor.id.clone().into());
            if let Some(image) = ev.actor.attributes.get("image") {
                o.insert("from".into(), image.clone().into());
            }
        }
        serde_json::to_vec(&obj).unwrap_or_default()
    } else {
        serde_json::to_vec(ev).unwrap_or_default()
    };
    v.push(b'\n');
    Bytes::from(v)
}

pub async fn events(
    engine: State,
    axum::Extension(version): axum::Extension<super::ApiVersion>,
    q: Query,
) -> Result<Response> {
    let old_fields = version.before("1.52");
    let since = q
        .get("since")
        .filter(|s| !s.is_empty())
        .map(|s| parse_time("since", s))
        .transpose()?;
    let until = q
        .get("until")
        .filter(|s| !s.is_empty())
        .map(|s| parse_time("until", s))
        .transpose()?;
    let filter = Filter::new(parse_filters(q.get("filters").map_or("", String::as_str))?)?;
    let (past, mut rx) = engine.events().subscribe();
    let (tx, out) = tokio::sync::mpsc::channel::<Bytes>(64);
    let in_range = move |ev: &Event| {
        since.is_none_or(|s| ev.time_nano >= s) && until.is_none_or(|u| ev.time_nano <= u)
    };
    tokio::spawn(async move {
        // As dockerd: the buffer is replayed when either bound is given.
        if since.is_some() || until.is_some() {
            for ev in past.iter().filter(|e| in_range(e) && filter.matches(e)) {
                if tx.send(line(ev, old_fields)).await.is_err() {
                    return;
                }
            }
        }
        let deadline = until.map(|u| {
            let (s, n) = pier_common::time::unix_now();
            let now = s * 1_000_000_000 + i64::from(n);
            tokio::time::Instant::now()
                + std::time::Duration::from_nanos(u.saturating_sub(now).max(0) as u64)
        });
        loop {
            let next = async {
                match deadline {
                    Some(d) => tokio::time::timeout_at(d, rx.recv()).await.ok(),
                    None => Some(rx.recv().await),
                }
            };
            let ev = match next.await {
                None => return,
                Some(Ok(ev)) => ev,
                Some(Err(RecvError::Lagged(_))) => continue,
                Some(Err(RecvError::Closed)) => return,
            };
            if in_range(&ev) && filter.matches(&ev) && tx.send(line(&ev, old_fields)).await.is_err()
            {
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold(out, |mut out| async move {
        out.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), out))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_seconds_with_fractions() {
        assert_eq!(parse_time("since", "12").unwrap(), 12_000_000_000);
        assert_eq!(parse_time("since", "12.5").unwrap(), 12_500_000_000);
        assert!(parse_time("since", "12s").is_err());
    }

    #[test]
    fn old_clients_get_status_id_and_from() {
        let mut attributes = std::collections::BTreeMap::new();
        attributes.insert("image".to_string(), "busybox".to_string());
        let ev = Event {
            typ: "container".into(),
            action: "die".into(),
            actor: crate::engine::Actor {
                id: "abc".into(),
                attributes,
            },
            scope: "local",
            time: 1,
            time_nano: 1_000_000_000,
        };
        let old: serde_json::Value = serde_json::from_slice(&line(&ev, true)).unwrap();
        assert_eq!(old["status"], "die");
        assert_eq!(old["id"], "abc");
        assert_eq!(old["from"], "busybox");
        let new: serde_json::Value = serde_json::from_slice(&line(&ev, false)).unwrap();
        assert!(new.get("status").is_none() && new.get("from").is_none());
        assert_eq!(new["Action"], "die");
    }

    #[test]
    fn filters_in_both_spellings() {
        let a = parse_filters(r#"{"type":["container"]}"#).unwrap();
        let b = parse_filters(r#"{"type":{"container":true}}"#).unwrap();
        assert_eq!(a, b);
    }
}
