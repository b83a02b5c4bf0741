//! Container names: validation as Docker does it, and generated names.

use rand::Rng;

/// Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, optionally with a leading `/`.
pub fn validate(name: &str) -> Result<&str, String> {
    let n = name.strip_prefix('/').unwrap_or(name);
    let mut chars = n.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if n.len() >= 2 && first_ok && rest_ok {
        Ok(n)
    } else {
        Err(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        ))
    }
}

const LEFT: &[&str] = &[
    "brave", "calm", "eager", "fervent", "gifted", "happy", "jolly", "keen", "lucid", "merry",
    "nifty", "quiet", "sharp", "stoic", "tender", "vivid", "witty", "zealous",
];
const RIGHT: &[&str] = &[
    "babbage", "curie", "dijkstra", "euler", "fermi", "goldberg", "hopper", "knuth", "lamport",
    "lovelace", "noether", "pike", "ritchie", "shannon", "thompson", "turing", "wozniak",
];

/// A docker-style `adjective_scientist` name not rejected by `taken`.
pub fn generate(taken: impl Fn(&str) -> bool) -> String {
    let mut rng = rand::rng();
    loop {
        let l = LEFT[rng.random_range(0..LEFT.len())];
        let r = RIGHT[rng.random_range(0..RIGHT.len())];
        let mut name = format!("{l}_{r}");
        if taken(&name) {
            name = format!("{name}{}", rng.random_range(0..1000));
        }
        if !taken(&name) {
            return name;
        }
    }
}

/// A new 64-hex-digit container id.
pub fn new_id() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker_rules() {
        assert_eq!(validate("/web-1"), Ok("web-1"));
        assert_eq!(validate("a.b_c"), Ok("a.b_c"));
        assert!(validate("x").is_err());
        assert!(validate("-x").is_err());
        assert!(validate("a/b").is_err());
        assert!(validate("").is_err());
    }

    #[test]
    fn generated_names_avoid_taken_ones() {
        let n = generate(|n| n.starts_with("brave"));
        assert!(!n.starts_with("brave"));
        assert!(validate(&n).is_ok());
        assert_eq!(new_id().len(), 64);
    }
}
