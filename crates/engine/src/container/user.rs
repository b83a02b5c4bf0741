//! Resolving `--user` / the image's USER against the container's own
//! /etc/passwd and /etc/group, as Docker does.

/// uid, gid and supplementary gids of the container's process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Resolves `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`) using the
/// contents of the container's passwd and group files.
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<User, String> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users: Vec<Vec<&str>> = passwd
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    let groups: Vec<Vec<&str>> = group
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect();

    let (uid, name, mut gid) = if user_part.is_empty() {
        (0, Some("root".to_string()), 0)
    } else if let Ok(uid) = user_part.parse::<u32>() {
        let entry = users.iter().find(|f| f[2].parse() == Ok(uid));
        (
            uid,
            entry.map(|f| f[0].to_string()),
            entry.and_then(|f| f[3].parse().ok()).unwrap_or(0),
        )
    } else {
        let f = users.iter().find(|f| f[0] == user_part).ok_or_else(|| {
            format!("unable to find user {user_part}: no matching entries in passwd file")
        })?;
        let uid = f[2]
            .parse()
            .map_err(|_| format!("bad uid in passwd entry for {user_part}"))?;
        let gid = f[3]
            .parse()
            .map_err(|_| format!("bad gid in passwd entry for {user_part}"))?;
        (uid, Some(user_part.to_string()), gid)
    };
    if let Some(g) = group_part {
        gid = match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    format!("unable to find group {g}: no matching entries in group file")
                })?,
        };
    }
    let mut additional_gids = Vec::new();
    if let Some(name) = name {
        for f in &groups {
            let members = f.get(3).copied().unwrap_or("");
            if members.split(',').any(|m| m == name) {
                if let Ok(g) = f[2].parse::<u32>() {
                    if g != gid && !additional_gids.contains(&g) {
                        additional_gids.push(g);
                    }
                }
            }
        }
    }
    Ok(User {
        uid,
        gid,
        additional_gids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:34::/var/www:/bin/false\n";
    const GROUP: &str = "root:x:0:\nwww:x:34:\nweb:x:50:www,other\n";

    #[test]
    fn resolves_names_numbers_and_groups() {
        assert_eq!(
            resolve("", PASSWD, GROUP).unwrap(),
            User {
                uid: 0,
                gid: 0,
                additional_gids: vec![]
            }
        );
        assert_eq!(
            resolve("www", PASSWD, GROUP).unwrap(),
            User {
                uid: 33,
                gid: 34,
                additional_gids: vec![50]
            }
        );
        assert_eq!(
            resolve("1000:1000", PASSWD, GROUP).unwrap(),
            User {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![]
            }
        );
        assert_eq!(
            resolve("33:web", PASSWD, GROUP).unwrap(),
            User {
                uid: 33,
                gid: 50,
                additional_gids: vec![]
            }
        );
        assert!(resolve("nobody", PASSWD, GROUP)
            .unwrap_err()
            .contains("unable to find user nobody"));
        assert!(resolve("root:nogroup", PASSWD, GROUP).is_err());
    }
}
