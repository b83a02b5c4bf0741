//! pierd's side of `docker build`: the worker that runs RUN steps with
//! pier's runtime, and the build context a client sends.

pub mod context;
pub mod worker;

pub use worker::RuntimeWorker;
