//! Base images a build lacks (or all of them with `--pull`), pulled from
//! their registry while the build waits, as `docker build` does; the
//! pull's status lines become the FROM step's output.

use std::collections::BTreeMap;
use std::sync::Arc;

use pier_image::reference::Reference;
use pier_registry_client::{pull, Credentials, Message, Platform};

use crate::Engine;

/// Pulls one image by name, writing its progress to the output given.
pub type Puller = Box<dyn Fn(&str, &mut dyn FnMut(&[u8])) -> Result<(), String> + Send + Sync>;

/// A puller for builds run on a blocking thread of the engine's runtime,
/// with the credentials of the request's `X-Registry-Config`.
pub fn puller(engine: Arc<Engine>, auths: BTreeMap<String, Credentials>) -> Puller {
    let runtime = tokio::runtime::Handle::current();
    Box::new(move |name: &str, output: &mut dyn FnMut(&[u8])| {
        let reference = Reference::parse(name).map_err(|e| format!("pulling {name}: {e}"))?;
        let creds = Credentials::for_domain(&auths, reference.domain());
        let platform = Platform::parse("").map_err(|e| format!("pulling {name}: {e}"))?;
        let (tx, rx) = std::sync::mpsc::channel::<Message>();
        let progress: pull::Progress = Arc::new(move |m: Message| {
            let _ = tx.send(m);
        });
        let engine = engine.clone();
        let task = runtime.spawn(async move {
            pull::resolve(&engine.registry, &reference, &platform, creds)
                .await?
                .fetch(engine.images.clone(), progress)
                .await
        });
        // The channel ends when the pull is over (its progress dropped).
        for m in rx {
            if let Some(line) = shown(&m) {
                output(line.as_bytes());
            }
        }
        match runtime.block_on(task) {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("pulling {name}: {e}")),
            Err(e) => Err(format!("pulling {name}: {e}")),
        }
    })
}

/// A progress message as a line of build output: its status, after the
/// layer or tag it is about ("latest: Pulling from library/busybox"); byte
/// counts (the bars) are left out.
fn shown(m: &Message) -> Option<String> {
    if m.progress_detail
        .as_ref()
        .is_some_and(|d| d.current.is_some() || d.total.is_some())
    {
        return None;
    }
    let status = m.status.as_deref()?;
    Some(match m.id.as_deref() {
        Some(id) if !id.is_empty() => format!("{id}: {status}\n"),
        _ => format!("{status}\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_shown_and_progress_bars_are_not() {
        let m = |status: &str, id: Option<&str>| Message {
            status: Some(status.into()),
            id: id.map(str::to_owned),
            ..Default::default()
        };
        assert_eq!(
            shown(&m("Pulling from bench/img", Some("1"))).as_deref(),
            Some("1: Pulling from bench/img\n")
        );
        assert_eq!(
            shown(&m("Digest: sha256:ab", None)).as_deref(),
            Some("Digest: sha256:ab\n")
        );
        assert_eq!(shown(&Message::bytes("abc", "Downloading", 1, 2)), None);
        assert_eq!(
            shown(&Message::layer("abc", "Already exists")).as_deref(),
            Some("abc: Already exists\n")
        );
    }
}
