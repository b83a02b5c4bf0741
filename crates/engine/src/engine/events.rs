//! Docker's events: what happened to containers (and later images,
//! networks, volumes), broadcast to `GET /events` clients and kept in a
//! small ring so that `since` can replay the recent past.

use super::Engine;
use crate::container::ContainerRecord;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use tokio::sync::broadcast;

/// How many past events `since` can replay.
const RING: usize = 1024;

/// One event as the Docker API sends it.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    #[serde(rename = "Type")]
    pub typ: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: &'static str,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    /// Sorted, as docker's CLI prints them.
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

pub struct Events {
    tx: broadcast::Sender<Event>,
    ring: Mutex<VecDeque<Event>>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(RING).0,
            ring: Mutex::new(VecDeque::with_capacity(RING)),
        }
    }
}

impl Events {
    fn publish(&self, ev: Event) {
        let mut ring = super::lock(&self.ring);
        if ring.len() == RING {
            ring.pop_front();
        }
        ring.push_back(ev.clone());
        // Sent under the ring's lock so that a subscriber taking the ring
        // and then listening sees each event exactly once.
        let _ = self.tx.send(ev);
    }

    /// The buffered events and a receiver for the ones after them.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let ring = super::lock(&self.ring);
        (ring.iter().cloned().collect(), self.tx.subscribe())
    }
}

impl Engine {
    /// Records and broadcasts one event.
    pub fn emit(&self, typ: &str, action: &str, id: &str, attributes: HashMap<String, String>) {
        let (secs, nanos) = pier_common::time::unix_now();
        self.events.publish(Event {
            typ: typ.to_string(),
            action: action.to_string(),
            actor: Actor {
                id: id.to_string(),
                attributes: attributes.into_iter().collect(),
            },
            scope: "local",
            time: secs,
            time_nano: secs * 1_000_000_000 + i64::from(nanos),
        });
    }

    /// A container event with docker's attributes: the container's labels,
    /// `image`, `name`, and `extra` (exitCode, signal...).
    pub fn emit_container(&self, rec: &ContainerRecord, action: &str, extra: &[(&str, String)]) {
        let mut attrs: HashMap<String, String> = rec
            .config
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        attrs.insert("image".into(), rec.image.clone());
        attrs.insert("name".into(), rec.name.clone());
        for (k, v) in extra {
            attrs.insert(k.to_string(), v.clone());
        }
        self.emit("container", action, &rec.id, attrs);
    }

    /// An exec event on its container, as docker's: the action names the
    /// command (`exec_create: sh -c date`) except for exec_die, and the
    /// attributes carry `execID`.
    pub fn emit_exec(
        &self,
        container_id: &str,
        action: &str,
        exec_id: &str,
        cmd: &[String],
        extra: &[(&str, String)],
    ) {
        let Some(rec) = super::lock(&self.containers)
            .get(container_id)
            .map(|h| h.record())
        else {
            return;
        };
        let action = if cmd.is_empty() || action == "exec_die" {
            action.to_string()
        } else {
            // As dockerd: entrypoint, a space, the arguments (so a command
            // without arguments ends in a space).
            format!("{action}: {} {}", cmd[0], cmd[1..].join(" "))
        };
        let mut extra = extra.to_vec();
        extra.push(("execID", exec_id.to_string()));
        self.emit_container(&rec, &action, &extra);
    }

    pub fn events(&self) -> &Events {
        &self.events
    }
}
