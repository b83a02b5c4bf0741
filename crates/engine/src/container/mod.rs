//! Containers as pierd keeps them: the persisted record, its OCI spec, and
//! the names and users it resolves.

pub mod names;
pub mod record;
pub mod spec;
pub mod user;

pub use record::{ContainerRecord, Status};
