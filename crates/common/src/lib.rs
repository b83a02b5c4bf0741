//! Small pieces every pier crate shares, with no dependencies of their own.

pub mod duration;
pub mod time;
