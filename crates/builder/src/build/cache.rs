//! The build cache: `<cache_dir>/keys/<key>.json` records what a step
//! made (its layer's diff ID, or none for config steps and empty layers)
//! and when, written atomically so it survives pierd restarts and
//! crashes. The layers themselves live in the image store; a record
//! whose snapshot is gone is a miss.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Error;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub diff_id: Option<String>,
    pub created: String,
}

pub struct Cache {
    keys: PathBuf,
    tmp: PathBuf,
}

impl Cache {
    pub fn open(dir: &Path) -> Result<Cache, Error> {
        let keys = dir.join("keys");
        let tmp = dir.join("tmp");
        for d in [&keys, &tmp] {
            fs::create_dir_all(d).map_err(|e| Error::Io {
                what: format!("creating the build cache directory {}", d.display()),
                source: e,
            })?;
        }
        Ok(Cache { keys, tmp })
    }

    /// Where steps make their scratch directories.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    pub fn get(&self, key: &str) -> Option<Record> {
        let b = fs::read(self.keys.join(format!("{key}.json"))).ok()?;
        serde_json::from_slice(&b).ok()
    }

    pub fn put(&self, key: &str, diff_id: Option<&str>, created: &str) -> Result<(), Error> {
        let rec = Record {
            diff_id: diff_id.map(str::to_owned),
            created: created.to_owned(),
        };
        let path = self.keys.join(format!("{key}.json"));
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let tmp = self
            .keys
            .join(format!(".{key}.{}-{seq}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&serde_json::to_vec(&rec).expect("a record serialises"))?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::Io {
                what: format!("writing the build cache record {}", path.display()),
                source: e,
            }
        })
    }
}
