//! Keeps the long-lived shim's resident set to what its loop uses.
//!
//! Setting a container up runs much more code than relaying its output;
//! those pages of the binary and of libc stay mapped (and counted in the
//! shim's RSS) although the loop never runs them again. They are clean
//! file pages: dropping them from this process's page tables with
//! `MADV_DONTNEED` only unmaps them (the page cache keeps them, for every
//! other shim), and whatever the loop does touch is faulted back in.
//! Mappings holding any anonymous (written, e.g. relocated) page are left
//! alone: for those, DONTNEED would throw the written contents away.

use std::io::Read;

/// A file-backed, non-writable mapping whose pages are all clean.
#[derive(Debug, PartialEq, Eq)]
pub struct Clean {
    pub start: usize,
    pub len: usize,
}

/// What smaps says of the mapping being read.
struct Reading {
    range: Clean,
    eligible: bool,
    resident: bool,
    /// "Anonymous: 0 kB" was seen: the kernel vouches no page was written.
    no_anonymous: bool,
    written: bool,
}

/// The clean file-backed mappings listed in `/proc/self/smaps` text.
pub fn clean_mappings(smaps: &str) -> Vec<Clean> {
    let mut out = Vec::new();
    let finish = |cur: Option<Reading>, out: &mut Vec<Clean>| {
        if let Some(r) = cur {
            if r.eligible && r.resident && r.no_anonymous && !r.written {
                out.push(r.range);
            }
        }
    };
    let mut cur: Option<Reading> = None;
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else { continue };
        if let Some((a, b)) = first.split_once('-') {
            finish(cur.take(), &mut out);
            let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            else {
                continue;
            };
            let perms = words.next().unwrap_or("");
            // offset, device, inode, then the path.
            let path = words.nth(3).unwrap_or("");
            cur = Some(Reading {
                range: Clean {
                    start,
                    len: end.saturating_sub(start),
                },
                eligible: perms.len() == 4
                    && !perms.contains('w')
                    && perms.ends_with('p')
                    && path.starts_with('/'),
                resident: false,
                no_anonymous: false,
                written: false,
            });
            continue;
        }
        let Some(r) = cur.as_mut() else { continue };
        let kb = words.next().and_then(|n| n.parse::<u64>().ok());
        match first {
            "Rss:" => r.resident = kb.is_some_and(|n| n > 0),
            "Anonymous:" => {
                r.no_anonymous = kb == Some(0);
                r.written |= kb != Some(0);
            }
            // Any written page (or a count that does not parse) keeps the
            // whole mapping.
            "Private_Dirty:" | "Shared_Dirty:" | "Swap:" => r.written |= kb != Some(0),
            _ => {}
        }
    }
    finish(cur.take(), &mut out);
    out
}

/// Unmaps the clean file pages of this process (see the module notes).
pub fn trim() {
    let mut smaps = String::new();
    let read =
        std::fs::File::open("/proc/self/smaps").and_then(|mut f| f.read_to_string(&mut smaps));
    if read.is_err() {
        return;
    }
    for m in clean_mappings(&smaps) {
        // SAFETY: a private, read-only, file-backed mapping without any
        // written page: dropping its pages loses nothing, the next access
        // reads them from the file (page cache) again.
        unsafe {
            libc::madvise(m.start as *mut libc::c_void, m.len, libc::MADV_DONTNEED);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0a0000000-55d0a0100000 r--p 00000000 08:01 123 /usr/bin/pier-shim
Rss:                 400 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
Swap:                  0 kB
55d0a0100000-55d0a0300000 r-xp 00100000 08:01 123 /usr/bin/pier-shim
Rss:                1200 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
Swap:                  0 kB
55d0a0300000-55d0a0340000 r--p 00300000 08:01 123 /usr/bin/pier-shim
Rss:                 256 kB
Private_Dirty:       256 kB
Anonymous:           256 kB
Swap:                  0 kB
55d0a0340000-55d0a0341000 rw-p 00340000 08:01 123 /usr/bin/pier-shim
Rss:                   4 kB
Anonymous:             4 kB
7f0000000000-7f0000010000 rw-p 00000000 00:00 0
Rss:                  64 kB
Anonymous:            64 kB
7f0000100000-7f0000200000 r-xp 00000000 08:01 456 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                 576 kB
Anonymous:             0 kB
7f0000200000-7f0000210000 r--p 00000000 08:01 456 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                   0 kB
Anonymous:             0 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]
Rss:                   8 kB
Anonymous:             0 kB
";

    #[test]
    fn only_clean_read_only_file_mappings_with_resident_pages() {
        let got = clean_mappings(SMAPS);
        assert_eq!(
            got,
            vec![
                Clean {
                    start: 0x55d0a0000000,
                    len: 0x100000
                },
                Clean {
                    start: 0x55d0a0100000,
                    len: 0x200000
                },
                Clean {
                    start: 0x7f0000100000,
                    len: 0x100000
                },
            ],
            "relocated (anonymous), writable, anonymous, non-resident and [vdso] mappings stay"
        );
    }

    #[test]
    fn a_mapping_whose_counters_are_missing_or_odd_is_kept() {
        assert!(clean_mappings("").is_empty());
        let clean = "1000-2000 r-xp 00000000 08:01 1 /bin/x\nRss: 4 kB\nAnonymous: 0 kB\n";
        assert_eq!(clean_mappings(clean).len(), 1);
        let no_anon_line = "1000-2000 r-xp 00000000 08:01 1 /bin/x\nRss: 4 kB\n";
        assert!(clean_mappings(no_anon_line).is_empty());
        let odd = "1000-2000 r-xp 00000000 08:01 1 /bin/x\nRss: 4 kB\nAnonymous: x kB\n";
        assert!(clean_mappings(odd).is_empty());
        let garbage = "zz-yy r-xp 0 0 0 /bin/x\nRss: 4 kB\nAnonymous: 0 kB\n";
        assert!(clean_mappings(garbage).is_empty());
    }

    fn rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/smaps_rollup")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("Rss:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    }

    #[test]
    fn trimming_this_process_unmaps_clean_pages_and_it_keeps_working() {
        let real = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let clean: usize = clean_mappings(&real).iter().map(|m| m.len).sum();
        assert!(clean > 0, "a test binary has clean code pages mapped");
        let before = rss_kib();
        trim();
        let after = rss_kib();
        assert!(after < before, "RSS {before} KiB -> {after} KiB");
        // The code it needs comes back on use.
        assert_eq!(clean_mappings(SMAPS).len(), 3);
    }
}
