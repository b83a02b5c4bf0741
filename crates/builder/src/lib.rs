//! `pier build`: a Dockerfile and a context directory to a layered image.
//!
//! - [`dockerfile`]: the syntax (read with docker's line rules) into pier's own
//!   model, variable expansion as docker does it, `.dockerignore`.
//! - [`build`]: the semantics: stages (independent ones in parallel), one
//!   layer per filesystem step (the diff of its upper directory), config-only
//!   steps, history as docker writes it, a cache keyed by content.
//!
//! The builder does not start processes itself: RUN steps go to a
//! [`build::Worker`], which pierd implements with pier's runtime and
//! docker's default security.

pub mod build;
pub mod context;
pub mod dockerfile;

pub use build::{build, BuildEvent, BuildOptions, BuildOutput, Error, RunRequest, Worker};
