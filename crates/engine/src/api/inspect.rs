//! `GET /containers/{id}/json`: docker's container inspect document.

use super::State;
use crate::container::ContainerRecord;
use crate::error::Result;
use axum::extract::Path;
use axum::Json;

pub async fn inspect(engine: State, Path(id): Path<String>) -> Result<Json<serde_json::Value>> {
    let rec = engine.find(&id)?.record();
    Ok(Json(inspect_json(&rec)))
}

pub fn inspect_json(rec: &ContainerRecord) -> serde_json::Value {
    let s = &rec.state;
    serde_json::json!({
        "Id": rec.id,
        "Created": rec.created,
        "Path": rec.path,
        "Args": rec.args,
        "State": {
            "Status": s.status.as_str(),
            "Running": s.running(),
            "Paused": false,
            "Restarting": false,
            "OOMKilled": s.oom_killed,
            "Dead": s.status == crate::container::Status::Dead,
            "Pid": s.pid,
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": if s.started_at.is_empty() { "0001-01-01T00:00:00Z" } else { &s.started_at },
            "FinishedAt": if s.finished_at.is_empty() { "0001-01-01T00:00:00Z" } else { &s.finished_at },
        },
        "Image": rec.image_id,
        "Name": format!("/{}", rec.name),
        "Driver": "overlayfs",
        "Platform": "linux",
        "Config": rec.config,
        "HostConfig": rec.host_config,
    })
}
