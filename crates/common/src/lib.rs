//! Small pieces every pier crate shares, with no dependencies of their own.

pub mod duration;
pub mod time;

/// The resource names `--ulimit` takes, as Docker's `units.ParseUlimit`
/// (RLIMIT_ without the prefix, lower case).
pub const ULIMIT_NAMES: &[&str] = &[
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];
