//! TLS against docker-registry serving a self-signed certificate: refused
//! without the CA, accepted with it in CERTS_DIR/HOST:PORT/ca.crt.

mod common;

use std::process::Command;
use std::sync::Arc;

use pier_image::reference::Reference;
use pier_image::Store;
use pier_registry_client::{pull, push, Client, Credentials, Options, Platform};
use pier_testutil::{skip, DockerRegistry};

const HOST: &str = "registry.pier.test";

#[test]
fn a_registry_ca_from_the_certs_dir_is_trusted() {
    if !pier_testutil::dockerd::have("openssl") {
        skip("openssl is not installed");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("pier-test-")
        .tempdir()
        .unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    pier_testutil::run_ok(
        Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .args([
                "-subj",
                &format!("/CN={HOST}"),
                "-addext",
                &format!("subjectAltName=DNS:{HOST}"),
                "-addext",
                "basicConstraints=critical,CA:FALSE",
            ]),
    );
    let tls = [
        "  tls:".to_owned(),
        format!("    certificate: {}", cert.display()),
        format!("    key: {}", key.display()),
    ];
    let lines: Vec<&str> = tls.iter().map(String::as_str).collect();
    let Some(reg) = DockerRegistry::start_with(&lines) else {
        skip("docker-registry is not installed (apt-get install docker-registry)");
        return;
    };
    let port = reg.addr.rsplit_once(':').unwrap().1.to_owned();
    let host = format!("{HOST}:{port}");
    let certs = dir.path().join("certs.d");
    let client = |with_ca: bool| {
        if with_ca {
            std::fs::create_dir_all(certs.join(&host)).unwrap();
            std::fs::copy(&cert, certs.join(&host).join("ca.crt")).unwrap();
        }
        Client::new(Options {
            certs_dir: certs.clone(),
            resolve: vec![(HOST.to_owned(), reg.addr.parse().unwrap())],
            retries: 0,
            ..Options::default()
        })
    };
    let (gz, _) = common::gz_layer("hello", b"over tls\n");
    let name = format!("{host}/tls/img:1");
    let store = common::store_with_image(&dir.path().join("data"), &name, &gz);
    let rt = common::runtime();
    let noop: pull::Progress = Arc::new(|_| {});

    // Without the CA: a certificate error, nothing sent.
    let c = client(false);
    let err = rt
        .block_on(async {
            push::prepare(&c, store.clone(), &name, None, Credentials::default())
                .await?
                .send(store.clone(), noop.clone())
                .await
        })
        .unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    // With it: push, then pull into another store.
    let c = client(true);
    rt.block_on(async {
        push::prepare(&c, store.clone(), &name, None, Credentials::default())
            .await?
            .send(store.clone(), noop.clone())
            .await
    })
    .unwrap();
    let other = Arc::new(Store::open(&dir.path().join("other")).unwrap());
    rt.block_on(async {
        pull::resolve(
            &c,
            &Reference::parse(&name).unwrap(),
            &Platform::host(),
            Credentials::default(),
        )
        .await?
        .fetch(other.clone(), noop.clone())
        .await
    })
    .unwrap();
    let img = other.resolve(&name).unwrap();
    assert_eq!(
        std::fs::read(img.layers[0].join("hello")).unwrap(),
        b"over tls\n"
    );
}
