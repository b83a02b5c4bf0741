//! Network endpoints: `GET /networks`, `GET|DELETE /networks/{id}`,
//! `POST /networks/create`, `POST /networks/{id}/connect|disconnect`,
//! `POST /networks/prune`.

use super::images::parse_filters;
use super::{Query, State};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::network::json::{builtin_id, builtin_json, network_json};
use crate::network::{CreateRequest, EndpointConfig, NetworkRecord, BUILTIN};
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pier_network::ipam::Subnet;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Every network as docker lists them: the stored ones, then `host` and
/// `none`.
fn all_json(engine: &Engine) -> Vec<Value> {
    let containers = engine.list();
    let mut out: Vec<Value> = engine
        .networks
        .all()
        .iter()
        .map(|n| network_json(n, &containers))
        .collect();
    for (name, _) in BUILTIN {
        out.push(builtin_json(&engine.networks, name, &containers));
    }
    out
}

/// Docker's network filters: driver, id (prefix), label (k or k=v), name
/// (substring), scope, type (custom|builtin), dangling.
fn matches(n: &Value, filters: &[(String, String)], engine: &Engine) -> Result<bool> {
    let mut by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, v) in filters {
        by_key.entry(k.as_str()).or_default().push(v.as_str());
    }
    let s = |k: &str| n[k].as_str().unwrap_or("").to_string();
    let builtin = BUILTIN.iter().any(|(b, _)| *b == s("Name"))
        || s("Name") == "bridge"
            && n["Options"]["com.docker.network.bridge.default_bridge"] == "true";
    for (k, vals) in by_key {
        let ok = match k {
            "driver" => vals.iter().any(|v| *v == s("Driver")),
            "id" => vals.iter().any(|v| s("Id").starts_with(v)),
            "name" => vals.iter().any(|v| s("Name").contains(v)),
            "scope" => vals.contains(&"local"),
            "label" => vals.iter().all(|v| match v.split_once('=') {
                Some((k, val)) => n["Labels"][k] == val,
                None => n["Labels"].get(*v).is_some(),
            }),
            "type" => vals.iter().any(|v| match *v {
                "custom" => !builtin,
                "builtin" => builtin,
                _ => false,
            }),
            "dangling" => vals.iter().any(|v| {
                let unused = !builtin && engine.network_users(&s("Id")).is_empty();
                matches!(*v, "true" | "1") == unused
            }),
            other => return Err(Error::bad_request(format!("invalid filter '{other}'"))),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

pub async fn list(engine: State, q: Query) -> Result<Json<Value>> {
    let filters = parse_filters(&q)?;
    for (k, v) in &filters {
        if k == "type" && !matches!(v.as_str(), "custom" | "builtin") {
            return Err(Error::bad_request(format!("invalid filter: 'type'='{v}'")));
        }
    }
    let mut out = Vec::new();
    for n in all_json(&engine) {
        if matches(&n, &filters, &engine)? {
            out.push(n);
        }
    }
    Ok(Json(Value::Array(out)))
}

/// A network by id, name or id prefix, stored or built in.
fn find_json(engine: &Engine, name_or_id: &str) -> Result<Value> {
    match engine.networks.find(name_or_id) {
        Ok(n) => Ok(network_json(&n, &engine.list())),
        Err(e) => {
            for (name, _) in BUILTIN {
                if name == name_or_id
                    || builtin_id(&engine.networks, name).starts_with(name_or_id)
                        && name_or_id.len() >= 3
                {
                    return Ok(builtin_json(&engine.networks, name, &engine.list()));
                }
            }
            Err(e)
        }
    }
}

pub async fn inspect(engine: State, Path(id): Path<String>) -> Result<Json<Value>> {
    Ok(Json(find_json(&engine, &id)?))
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The create body, checked with docker's messages.
fn create_request(body: &Value) -> Result<CreateRequest> {
    let name = body["Name"].as_str().unwrap_or("").to_string();
    if name.is_empty() {
        return Err(Error::bad_request("network name is required"));
    }
    if !crate::network::store::valid_name(&name) {
        return Err(Error::bad_request(format!(
            "invalid network name \"{name}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    match body["Driver"].as_str().unwrap_or("") {
        "" | "bridge" => {}
        d @ ("host" | "null" | "none") => {
            return Err(Error::new(
                StatusCode::FORBIDDEN,
                format!("only one instance of \"{d}\" network is allowed"),
            ))
        }
        d => {
            return Err(Error::not_found(format!(
                "plugin \"{d}\" not found: pier has only the bridge driver"
            )))
        }
    }
    if body["EnableIPv6"] == json!(true) {
        return Err(Error::bad_request(
            "IPv6 networks are not supported by pier yet: leave out --ipv6",
        ));
    }
    let ipam = &body["IPAM"];
    if !matches!(ipam["Driver"].as_str().unwrap_or(""), "" | "default") {
        return Err(Error::not_found(format!(
            "plugin \"{}\" not found: pier has only the default IPAM driver",
            ipam["Driver"].as_str().unwrap_or("")
        )));
    }
    let configs = ipam["Config"].as_array().cloned().unwrap_or_default();
    if configs.len() > 1 {
        return Err(Error::bad_request(
            "pier supports one IPv4 subnet per network: give one --subnet",
        ));
    }
    let cfg = configs.first().cloned().unwrap_or(Value::Null);
    let field = |k: &str| {
        cfg[k]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let subnet = field("Subnet")
        .map(|s| Subnet::parse(&s).map_err(|e| Error::bad_request(e.to_string())))
        .transpose()?;
    let gateway = field("Gateway")
        .map(|g| {
            g.parse()
                .map_err(|_| Error::bad_request(format!("invalid gateway address: {g}")))
        })
        .transpose()?;
    if gateway.is_some() && subnet.is_none() {
        return Err(Error::bad_request(
            "a gateway needs a subnet: give --subnet with --gateway",
        ));
    }
    let ip_range = field("IPRange")
        .map(|r| Subnet::parse_network(&r).map_err(|e| Error::bad_request(e.to_string())))
        .transpose()?;
    if ip_range.is_some() && subnet.is_none() {
        return Err(Error::bad_request(
            "an ip range needs a subnet: give --subnet with --ip-range",
        ));
    }
    Ok(CreateRequest {
        name,
        subnet,
        gateway,
        ip_range,
        internal: body["Internal"] == json!(true),
        attachable: body["Attachable"] == json!(true),
        labels: string_map(&body["Labels"]),
        options: string_map(&body["Options"]),
    })
}

fn parse_body(body: &Bytes) -> Result<Value> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body)
        .map_err(|e| Error::bad_request(format!("invalid JSON in the request body: {e}")))
}

pub async fn create(engine: State, body: Bytes) -> Result<Response> {
    let req = create_request(&parse_body(&body)?)?;
    let rec = engine.create_network(req).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"Id": rec.id, "Warning": ""})),
    )
        .into_response())
}

/// A stored network, or docker's refusal for the built-in ones.
fn stored(engine: &Engine, id: &str, what: &str) -> Result<NetworkRecord> {
    match engine.networks.find(id) {
        Ok(n) => Ok(n),
        Err(e) => match BUILTIN.iter().find(|(n, _)| *n == id) {
            Some((n, _)) => Err(Error::new(
                StatusCode::FORBIDDEN,
                format!("{what} is not permitted on predefined {n} network"),
            )),
            None => Err(e),
        },
    }
}

pub async fn remove(engine: State, Path(id): Path<String>) -> Result<StatusCode> {
    let rec = match engine.networks.find(&id) {
        Ok(r) => r,
        Err(e) => {
            if BUILTIN.iter().any(|(n, _)| *n == id) {
                return Err(Error::new(
                    StatusCode::FORBIDDEN,
                    format!("{id} is a pre-defined network and cannot be removed"),
                ));
            }
            return Err(e);
        }
    };
    engine.remove_network(&rec).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn connect(engine: State, Path(id): Path<String>, body: Bytes) -> Result<StatusCode> {
    let body = parse_body(&body)?;
    let net = stored(&engine, &id, "operation")?;
    let container = body["Container"].as_str().unwrap_or("");
    if container.is_empty() {
        return Err(Error::bad_request("no container given to connect"));
    }
    let ep = &body["EndpointConfig"];
    let ipv4 = ep["IPAMConfig"]["IPv4Address"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(|a| {
            a.parse()
                .map_err(|_| Error::bad_request(format!("invalid IPv4 address: {a}")))
        })
        .transpose()?;
    let cfg = EndpointConfig {
        aliases: ep["Aliases"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        ipv4,
        mac: ep["MacAddress"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    };
    engine.connect_network(&net, container, cfg).await?;
    Ok(StatusCode::OK)
}

pub async fn disconnect(engine: State, Path(id): Path<String>, body: Bytes) -> Result<StatusCode> {
    let body = parse_body(&body)?;
    let net = stored(&engine, &id, "operation")?;
    let container = body["Container"].as_str().unwrap_or("");
    if container.is_empty() {
        return Err(Error::bad_request("no container given to disconnect"));
    }
    engine.disconnect_network(&net, container).await?;
    Ok(StatusCode::OK)
}

/// Removes the user networks no container uses (`until`, `label` filters).
pub async fn prune(engine: State, q: Query) -> Result<Json<Value>> {
    let filters = parse_filters(&q)?;
    let mut deleted = Vec::new();
    for rec in engine.networks.all() {
        if rec.default_bridge || !engine.network_users(&rec.id).is_empty() {
            continue;
        }
        let mut keep = false;
        for (k, v) in &filters {
            keep |= match k.as_str() {
                "label" => !match v.split_once('=') {
                    Some((k, val)) => rec.labels.get(k).map(String::as_str) == Some(val),
                    None => rec.labels.contains_key(v),
                },
                "label!" => match v.split_once('=') {
                    Some((k, val)) => rec.labels.get(k).map(String::as_str) == Some(val),
                    None => rec.labels.contains_key(v),
                },
                "until" => {
                    let limit = pier_common::duration::parse_go_duration(v)
                        .map(|d| pier_common::time::unix_now().0 as i128 - d / 1_000_000_000)
                        .or_else(|| v.parse::<i128>().ok())
                        .or_else(|| pier_common::time::parse_rfc3339(v).map(i128::from))
                        .ok_or_else(|| Error::bad_request(format!("invalid filter 'until={v}'")))?;
                    let created = pier_common::time::parse_rfc3339(&rec.created).unwrap_or(0);
                    i128::from(created) >= limit
                }
                other => return Err(Error::bad_request(format!("invalid filter '{other}'"))),
            };
        }
        if keep {
            continue;
        }
        if engine.remove_network(&rec).await.is_ok() {
            deleted.push(rec.name.clone());
        }
    }
    Ok(Json(json!({ "NetworksDeleted": deleted })))
}
