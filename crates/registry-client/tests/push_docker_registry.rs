//! Push against Debian's docker-registry: monolithic and chunked uploads,
//! HEAD skipping, cross-repository mounts, and the image pulled back into
//! another store byte for byte.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pier_image::reference::Reference;
use pier_image::Store;
use pier_registry_client::{pull, push, Client, Credentials, Message, Options, Platform};
use pier_testutil::{skip, DockerRegistry};

fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("pier-test-")
        .tempdir()
        .unwrap()
}

fn collect() -> (pull::Progress, Arc<Mutex<Vec<Message>>>) {
    let msgs = Arc::new(Mutex::new(Vec::new()));
    let m2 = msgs.clone();
    (Arc::new(move |m| m2.lock().unwrap().push(m)), msgs)
}

fn statuses(m: &Arc<Mutex<Vec<Message>>>) -> Vec<String> {
    m.lock()
        .unwrap()
        .iter()
        .filter_map(|m| m.status.clone())
        .collect()
}

#[test]
fn chunked_and_monolithic_pushes_round_trip_through_docker_registry() {
    let Some(reg) = DockerRegistry::start() else {
        skip("docker-registry is not installed (apt-get install docker-registry)");
        return;
    };
    let dir = tmp();
    // A one-layer image of ~600 kB of noise (an uncompressed tar blob).
    let (gz, _) = common::gz_layer("noise", &common::noise(600_000, 9));
    let name = format!("{}/push/img:1", reg.addr);
    let store = common::store_with_image(&dir.path().join("a"), &name, &gz);
    let rt = common::runtime();
    // Chunks of 64 kB for anything over 100 kB.
    let client = Client::new(Options {
        chunk_threshold: 100_000,
        chunk_size: 64 << 10,
        retries: 1,
        backoff: Duration::from_millis(10),
        ..Options::default()
    });
    let send = |name: &str, tag: Option<&str>| {
        let (p, msgs) = collect();
        let r = rt.block_on(async {
            push::prepare(&client, store.clone(), name, tag, Credentials::default())
                .await?
                .send(store.clone(), p)
                .await
        });
        (r, msgs)
    };
    let (r, msgs) = send(&format!("{}/push/img", reg.addr), Some("1"));
    let pushed = r.unwrap();
    let st = statuses(&msgs);
    assert_eq!(
        st[0],
        format!("The push refers to repository [{}/push/img]", reg.addr)
    );
    assert!(st.contains(&"Pushed".to_owned()), "{st:?}");
    // The chunks report progress, paced as docker's (the first, at most
    // one per 100 ms, the last): one line at least, and the layer's last
    // one says it is all sent.
    let pushing: Vec<(u64, u64)> = msgs
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.status.as_deref() == Some("Pushing"))
        .filter_map(|m| {
            let d = m.progress_detail.as_ref()?;
            Some((d.current?, d.total?))
        })
        .collect();
    assert!(!pushing.is_empty(), "no Pushing line: {st:?}");
    let (current, total) = *pushing.last().unwrap();
    assert_eq!(current, total, "{pushing:?}");
    assert!(pushing.windows(2).all(|w| w[0].0 < w[1].0), "{pushing:?}");
    assert!(
        st.contains(&format!(
            "1: digest: {} size: {}",
            pushed.digest, pushed.size
        )),
        "{st:?}"
    );

    // Again: the registry has the layer.
    let (r, msgs) = send(&name, None);
    r.unwrap();
    assert!(statuses(&msgs).contains(&"Layer already exists".to_owned()));

    // Into another repository of the same registry: mounted, not sent.
    store
        .tag(&name, &format!("{}/other/img:2", reg.addr))
        .unwrap();
    let (r, msgs) = send(&format!("{}/other/img:2", reg.addr), None);
    r.unwrap();
    assert!(
        statuses(&msgs).contains(&"Mounted from push/img".to_owned()),
        "{:?}",
        statuses(&msgs)
    );

    // Pulled back into another store: same digest, same content.
    let store_b = Arc::new(Store::open(&dir.path().join("b")).unwrap());
    let (p, _) = collect();
    let pulled = rt
        .block_on(async {
            pull::resolve(
                &client,
                &Reference::parse(&format!("{}/other/img:2", reg.addr)).unwrap(),
                &Platform::host(),
                Credentials::default(),
            )
            .await?
            .fetch(store_b.clone(), p)
            .await
        })
        .unwrap();
    assert_eq!(pulled.digest, pushed.digest);
    let img = store_b
        .resolve(&format!("{}/other/img:2", reg.addr))
        .unwrap();
    assert_eq!(
        std::fs::read(img.layers[0].join("noise")).unwrap(),
        common::noise(600_000, 9)
    );
}
