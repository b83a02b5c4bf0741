//! `GET /containers/{id}/json`: docker's container inspect document, with
//! every key docker writes (defaults where pier has nothing to say), and
//! `SizeRw`/`SizeRootFs` with `size=1`.

use super::{flag, Query, State};
use crate::container::ContainerRecord;
use crate::error::Result;
use crate::Engine;
use axum::extract::Path;
use axum::Json;
use serde_json::{json, Map, Value};

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

pub async fn inspect(engine: State, Path(id): Path<String>, q: Query) -> Result<Json<Value>> {
    let rec = engine.find(&id)?.record();
    let with_size = flag(&q, "size");
    let e = engine.0.clone();
    let v = tokio::task::spawn_blocking(move || {
        let layers = e
            .images
            .resolve(&rec.image_id)
            .map(|i| i.layers)
            .unwrap_or_default();
        let mut v = inspect_json(&e, &rec, &layers);
        if with_size {
            let rw = crate::container::size::size_rw(&e.container_path(&rec.id).join("upper"));
            let image = e
                .images
                .list()
                .unwrap_or_default()
                .into_iter()
                .find(|i| i.id == rec.image_id)
                .map_or(0, |i| i.size);
            v["SizeRw"] = rw.into();
            v["SizeRootFs"] = (image + rw).into();
        }
        v
    })
    .await?;
    Ok(Json(v))
}

/// Docker's State.Status word, Paused/Restarting from the record.
fn state_json(rec: &ContainerRecord) -> Value {
    let s = &rec.state;
    let time = |t: &str| {
        if t.is_empty() {
            ZERO_TIME.to_string()
        } else {
            t.to_string()
        }
    };
    json!({
        "Status": s.status_str(),
        "Running": s.running(),
        "Paused": s.paused,
        "Restarting": s.restarting,
        "OOMKilled": s.oom_killed,
        "Dead": s.status == crate::container::Status::Dead,
        "Pid": s.pid,
        "ExitCode": s.exit_code,
        "Error": s.error,
        "StartedAt": time(&s.started_at),
        "FinishedAt": time(&s.finished_at),
    })
}

/// Fills the keys of `defaults` that `v` lacks (or has as null where the
/// default is not null).
fn fill(v: &mut Value, defaults: Value) {
    let Value::Object(d) = defaults else { return };
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    if let Value::Object(o) = v {
        for (k, dv) in d {
            match o.get(k.as_str()) {
                Some(x) if !x.is_null() || dv.is_null() => {}
                _ => {
                    o.insert(k, dv);
                }
            }
        }
    }
}

fn config_json(rec: &ContainerRecord) -> Value {
    let mut c = serde_json::to_value(&rec.config).unwrap_or_else(|_| json!({}));
    fill(
        &mut c,
        json!({
            "Hostname": rec.hostname(),
            "Domainname": "",
            "User": "",
            "AttachStdin": false,
            "AttachStdout": false,
            "AttachStderr": false,
            "Tty": false,
            "OpenStdin": false,
            "StdinOnce": false,
            "Env": null,
            "Cmd": null,
            "Image": rec.image,
            "Volumes": null,
            "WorkingDir": "",
            "Entrypoint": null,
            "OnBuild": null,
            "Labels": {},
        }),
    );
    if c["Hostname"] == "" {
        c["Hostname"] = rec.hostname().into();
    }
    c
}

fn host_config_json(rec: &ContainerRecord) -> Value {
    let mut h = serde_json::to_value(&rec.host_config).unwrap_or_else(|_| json!({}));
    fill(
        &mut h,
        json!({
            "Binds": null,
            "ContainerIDFile": "",
            "LogConfig": {"Type": "json-file", "Config": {}},
            "NetworkMode": "default",
            "PortBindings": {},
            "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
            "AutoRemove": false,
            "VolumeDriver": "",
            "VolumesFrom": null,
            "ConsoleSize": [0, 0],
            "CapAdd": null,
            "CapDrop": null,
            "CgroupnsMode": "host",
            "Dns": [],
            "DnsOptions": [],
            "DnsSearch": [],
            "ExtraHosts": null,
            "GroupAdd": null,
            "IpcMode": "private",
            "Cgroup": "",
            "Links": null,
            "OomScoreAdj": 0,
            "PidMode": "",
            "Privileged": false,
            "PublishAllPorts": false,
            "ReadonlyRootfs": false,
            "SecurityOpt": null,
            "UTSMode": "",
            "UsernsMode": "",
            "ShmSize": 67_108_864,
            "Runtime": "pier-runtime",
            "Isolation": "",
        }),
    );
    fill(
        &mut h,
        json!({
            "CpuShares": 0,
            "Memory": 0,
            "NanoCpus": 0,
            "CgroupParent": "",
            "BlkioWeight": 0,
            "BlkioWeightDevice": [],
            "BlkioDeviceReadBps": [],
            "BlkioDeviceWriteBps": [],
            "BlkioDeviceReadIOps": [],
            "BlkioDeviceWriteIOps": [],
            "CpuPeriod": 0,
            "CpuQuota": 0,
            "CpuRealtimePeriod": 0,
            "CpuRealtimeRuntime": 0,
            "CpusetCpus": "",
            "CpusetMems": "",
            "Devices": [],
            "DeviceCgroupRules": null,
            "DeviceRequests": null,
            "KernelMemory": 0,
            "KernelMemoryTCP": 0,
            "MemoryReservation": 0,
            "MemorySwap": 0,
            "MemorySwappiness": null,
            "OomKillDisable": false,
            "PidsLimit": null,
            "Ulimits": [],
            "CpuCount": 0,
            "CpuPercent": 0,
            "IOMaximumIOps": 0,
            "IOMaximumBandwidth": 0,
            "MaskedPaths": crate::container::spec::MASKED_PATHS,
            "ReadonlyPaths": crate::container::spec::READONLY_PATHS,
        }),
    );
    if h["Privileged"] == json!(true) {
        // As docker: a privileged container has nothing masked.
        h["MaskedPaths"] = Value::Null;
        h["ReadonlyPaths"] = Value::Null;
    }
    h
}

fn network_settings_json(engine: &Engine, rec: &ContainerRecord) -> Value {
    let state = rec.net.as_ref().filter(|_| rec.state.running());
    let primary = state.and_then(|s| s.endpoints.first());
    let sandbox = state
        .filter(|s| s.own_netns)
        .map(|s| s.netns.display().to_string())
        .unwrap_or_default();
    json!({
        "Bridge": "",
        "SandboxID": if sandbox.is_empty() { String::new() } else { rec.id.clone() },
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": crate::network::json::ports_map(rec),
        "SandboxKey": sandbox,
        "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null,
        "EndpointID": primary.map(|e| e.endpoint_id.clone()).unwrap_or_default(),
        "Gateway": primary.map(|e| e.gateway.to_string()).unwrap_or_default(),
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": primary.map(|e| e.ip.to_string()).unwrap_or_default(),
        "IPPrefixLen": primary.map(|e| e.prefix).unwrap_or(0),
        "IPv6Gateway": "",
        "MacAddress": primary.map(|e| e.mac.clone()).unwrap_or_default(),
        "Networks": crate::network::json::container_networks(&engine.networks, rec),
    })
}

/// The whole document; `layers` are the image's unpacked layers, top last.
pub fn inspect_json(
    engine: &Engine,
    rec: &ContainerRecord,
    layers: &[std::path::PathBuf],
) -> Value {
    let dir = engine.container_path(&rec.id);
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let existing = |name: &str| {
        if dir.join(name).exists() {
            path(name)
        } else {
            String::new()
        }
    };
    let lower: Vec<String> = layers
        .iter()
        .rev()
        .map(|l| l.to_string_lossy().into_owned())
        .collect();
    // As docker: the execs not ended yet, or null.
    let exec_ids = Some(engine.exec_ids(&rec.id)).filter(|ids| !ids.is_empty());
    json!({
        "Id": rec.id,
        "Created": rec.created,
        "Path": rec.path,
        "Args": rec.args,
        "State": state_json(rec),
        "Image": rec.image_id,
        "ResolvConfPath": existing("resolv.conf"),
        "HostnamePath": existing("hostname"),
        "HostsPath": existing("hosts"),
        "LogPath": engine.log_path(&rec.id).to_string_lossy(),
        "Name": format!("/{}", rec.name),
        "RestartCount": rec.state.restart_count,
        "Driver": "overlayfs",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": exec_ids,
        "HostConfig": host_config_json(rec),
        "GraphDriver": {
            "Data": {
                "LowerDir": lower.join(":"),
                "MergedDir": path("rootfs"),
                "UpperDir": path("upper"),
                "WorkDir": path("work"),
            },
            "Name": "overlayfs",
        },
        "Mounts": engine.mounts_json(rec),
        "Config": config_json(rec),
        "NetworkSettings": network_settings_json(engine, rec),
    })
}
