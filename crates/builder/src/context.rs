//! What a build context sent over the API looks like.

/// Whether `h` starts with a tar header: its checksum matches, as in any
/// tar the docker CLI, pier or `tar` writes.
pub fn looks_like_tar(h: &[u8]) -> bool {
    if h.len() < 512 {
        return false;
    }
    let text: String = h[148..156]
        .iter()
        .take_while(|b| **b != 0 && **b != b' ')
        .map(|b| *b as char)
        .collect();
    let Ok(want) = u32::from_str_radix(text.trim(), 8) else {
        return false;
    };
    let sum: u32 = h[..512]
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    sum == want
}

/// Whether `data` starts like an archive pierd unpacks as a context (tar,
/// gzip, zstd), rather than a bare Dockerfile.
pub fn looks_like_archive(data: &[u8]) -> bool {
    data.starts_with(&[0x1f, 0x8b])
        || data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || looks_like_tar(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_headers_are_told_from_dockerfiles() {
        let mut h = tar::Header::new_gnu();
        h.set_path("Dockerfile").unwrap();
        h.set_size(3);
        h.set_cksum();
        assert!(looks_like_tar(h.as_bytes()));
        let mut bad = h.as_bytes().to_vec();
        bad[0] ^= 1;
        assert!(!looks_like_tar(&bad));
        assert!(!looks_like_archive(b"FROM busybox\n"));
        assert!(looks_like_archive(&[0x1f, 0x8b, 8, 0]));
    }
}
