//! One module per group of commands.

pub mod attach;
pub mod build;
pub mod container_flags;
pub mod cp;
pub mod create;
pub mod events;
pub mod exec;
pub mod image_ops;
pub mod images;
pub mod inspect;
pub mod lifecycle;
pub mod login;
pub mod logs;
pub mod mount_flags;
pub mod prune;
pub mod ps;
pub mod pull;
pub mod push;
pub mod registry;
pub mod run;
pub mod stats;
pub mod system;
pub mod top;
pub mod volume;
