//! A container's writable layer size as docker counts it (`SizeRw`): the
//! apparent sizes of what is not a directory, hard links once.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

pub fn size_rw(upper: &Path) -> u64 {
    fn walk(p: &Path, seen: &mut HashSet<(u64, u64)>) -> u64 {
        let Ok(rd) = std::fs::read_dir(p) else {
            return 0;
        };
        let mut total = 0;
        for e in rd.flatten() {
            let Ok(md) = e.metadata() else { continue };
            if md.is_dir() {
                total += walk(&e.path(), seen);
            } else if md.nlink() <= 1 || seen.insert((md.dev(), md.ino())) {
                total += md.size();
            }
        }
        total
    }
    walk(upper, &mut HashSet::new())
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_file_bytes_not_directories() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc/x")).unwrap();
        std::fs::write(d.path().join("etc/hosts"), "").unwrap();
        std::fs::write(d.path().join("etc/x/f"), "12345").unwrap();
        std::fs::hard_link(d.path().join("etc/x/f"), d.path().join("g")).unwrap();
        assert_eq!(super::size_rw(d.path()), 5);
    }
}
