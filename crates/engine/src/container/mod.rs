//! Containers as pierd keeps them: the persisted record, its OCI spec, and
//! the names and users it resolves.

pub mod archive;
pub mod changes;
pub mod filters;
pub mod logs;
pub mod mounts;
pub mod names;
pub mod record;
pub mod resources;
pub mod security;
pub mod size;
pub mod spec;
pub mod user;
pub mod validate;

pub use record::{ContainerRecord, Status};
