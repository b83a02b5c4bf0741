//! `/_ping`, `/version`, `/info`.

use super::State;
use crate::host;
use axum::http::header::{HeaderMap, HeaderValue};
use axum::response::IntoResponse;
use axum::Json;
use bollard_stubs::models::{SystemInfo, SystemVersion, SystemVersionComponents};

/// The `/_ping` header saying pierd builds from a context directory read
/// where it is.
pub const CONTEXT_IN_PLACE: &str = "Pier-Context-In-Place";

pub async fn ping() -> impl IntoResponse {
    let mut h = HeaderMap::new();
    h.insert("Api-Version", HeaderValue::from_static(crate::API_VERSION));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    // pier's CLI asks before a build whether the daemon reads a context
    // directory where it is (`pier-context-path`); other daemons do not.
    h.insert(CONTEXT_IN_PLACE, HeaderValue::from_static("1"));
    h.insert(
        "Cache-Control",
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    (h, "OK")
}

pub async fn version() -> Json<SystemVersion> {
    Json(SystemVersion {
        version: Some(crate::VERSION.into()),
        api_version: Some(crate::API_VERSION.into()),
        min_api_version: Some(crate::MIN_API_VERSION.into()),
        os: Some("linux".into()),
        arch: Some(host::go_arch().into()),
        kernel_version: Some(host::kernel_version()),
        // The docker CLI prints the server's API versions, OS/Arch and
        // kernel from the Engine component's details.
        components: Some(vec![SystemVersionComponents {
            name: "Engine".into(),
            version: crate::VERSION.into(),
            details: Some(
                [
                    ("ApiVersion", crate::API_VERSION.to_string()),
                    ("MinAPIVersion", crate::MIN_API_VERSION.to_string()),
                    ("Os", "linux".to_string()),
                    ("Arch", host::go_arch().to_string()),
                    ("KernelVersion", host::kernel_version()),
                    ("Experimental", "false".to_string()),
                    ("GitCommit", String::new()),
                    ("GoVersion", String::new()),
                    ("BuildTime", String::new()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            ),
        }]),
        platform: Some(bollard_stubs::models::SystemVersionPlatform {
            name: format!("pier {}", crate::VERSION),
        }),
        ..Default::default()
    })
}

/// Docker's SystemInfo, plus pier's own facts under `Pier*` keys (the
/// cgroup mode, which Docker's "Cgroup Version" cannot tell, and the exec
/// root).
pub async fn info(engine: State) -> Json<serde_json::Value> {
    let containers = engine.list();
    let running = containers.iter().filter(|c| c.state.running()).count() as i64;
    let images = engine.images.clone();
    let image_count =
        tokio::task::spawn_blocking(move || images.list().map(|l| l.len()).unwrap_or(0))
            .await
            .unwrap_or(0) as i64;
    let mode = host::cgroup_mode();
    let info = SystemInfo {
        id: None,
        containers: Some(containers.len() as i64),
        containers_running: Some(running),
        containers_paused: Some(0),
        containers_stopped: Some(containers.len() as i64 - running),
        images: Some(image_count),
        driver: Some("overlayfs".into()),
        docker_root_dir: Some(engine.config.data_root.display().to_string()),
        logging_driver: Some("json-file".into()),
        cgroup_version: serde_json::from_value(serde_json::json!(mode.version())).ok(),
        cgroup_driver: serde_json::from_value(serde_json::json!("cgroupfs")).ok(),
        kernel_version: Some(host::kernel_version()),
        operating_system: Some(host::operating_system()),
        os_type: Some("linux".into()),
        architecture: Some(std::env::consts::ARCH.into()),
        ncpu: Some(std::thread::available_parallelism().map_or(1, |n| n.get()) as i64),
        mem_total: Some(host::mem_total()),
        name: Some(
            rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned(),
        ),
        server_version: Some(crate::VERSION.into()),
        default_runtime: Some("pier-runtime".into()),
        registry_config: Some(registry_config(&engine.config.insecure_registries)),
        ..Default::default()
    };
    let mut v = serde_json::to_value(info).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("PierCgroupMode".into(), mode.name().into());
        obj.insert(
            "PierExecRoot".into(),
            engine.config.exec_root.display().to_string().into(),
        );
        obj.insert(
            "PierSocket".into(),
            engine.config.socket_path().display().to_string().into(),
        );
    }
    Json(v)
}

/// Docker's RegistryConfig: loopback is always insecure; a configured
/// insecure registry is a CIDR or an index of its own marked not secure.
fn registry_config(insecure: &[String]) -> bollard_stubs::models::RegistryServiceConfig {
    use bollard_stubs::models::IndexInfo;
    let mut cidrs = vec!["127.0.0.0/8".to_owned(), "::1/128".to_owned()];
    let mut indexes = std::collections::HashMap::new();
    indexes.insert(
        "docker.io".to_owned(),
        IndexInfo {
            name: Some("docker.io".into()),
            mirrors: Some(Vec::new()),
            secure: Some(true),
            official: Some(true),
        },
    );
    for r in insecure {
        if r.contains('/') {
            if !cidrs.contains(r) {
                cidrs.push(r.clone());
            }
        } else {
            indexes.insert(
                r.clone(),
                IndexInfo {
                    name: Some(r.clone()),
                    mirrors: Some(Vec::new()),
                    secure: Some(false),
                    official: Some(false),
                },
            );
        }
    }
    bollard_stubs::models::RegistryServiceConfig {
        insecure_registry_cidrs: Some(cidrs),
        index_configs: Some(indexes),
        mirrors: Some(Vec::new()),
    }
}
