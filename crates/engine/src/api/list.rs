//! `GET /containers/json`: docker's container list.

use super::{flag, Query, State};
use crate::container::ContainerRecord;
use axum::Json;
use pier_common::time::human_duration;

pub async fn list(engine: State, q: Query) -> Json<Vec<serde_json::Value>> {
    let all = flag(&q, "all");
    let out = engine
        .list()
        .into_iter()
        .filter(|c| all || c.state.running())
        .map(|c| {
            let created = pier_common::time::parse_rfc3339(&c.created).unwrap_or(0);
            serde_json::json!({
                "Id": c.id,
                "Names": [format!("/{}", c.name)],
                "Image": c.image,
                "ImageID": c.image_id,
                "Command": c.command_line(),
                "Created": created,
                "State": c.state.status.as_str(),
                "Status": status_text(&c),
                "Ports": [],
                "Labels": c.config.labels.clone().unwrap_or_default(),
                "Mounts": [],
            })
        })
        .collect();
    Json(out)
}

/// `docker ps`'s STATUS column: "Up 5 seconds", "Exited (0) 2 minutes ago".
fn status_text(c: &ContainerRecord) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let since = |t: &str| human_duration(now - pier_common::time::parse_rfc3339(t).unwrap_or(now));
    match c.state.status {
        crate::container::Status::Created => "Created".into(),
        crate::container::Status::Running => format!("Up {}", since(&c.state.started_at)),
        crate::container::Status::Exited => format!(
            "Exited ({}) {} ago",
            c.state.exit_code,
            since(&c.state.finished_at)
        ),
        crate::container::Status::Dead => "Dead".into(),
    }
}
