//! The `[cluster]` table: the Redis every host of one chat names, and this host's node name.

/// What `[cluster]` configures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// `redis://host:port[/db]` or `unix:///path/to/redis.sock`.
    pub redis: String,
    /// This host's name, unique in the cluster.
    pub node: String,
}

/// Whether `node` is a valid node name: 1 to 64 of ASCII letters, digits, `_ - .`.
pub fn valid_node(node: &str) -> bool {
    (1..=64).contains(&node.len())
        && node
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// This host's name, as the default node name (a valid one, or `node`).
pub fn hostname() -> String {
    let name = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    let name: String = name.chars().take(64).collect();
    if valid_node(&name) { name } else { "node".to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_are_plain() {
        assert!(valid_node("h1") && valid_node("web-01.example"));
        assert!(!valid_node("") && !valid_node("a/b") && !valid_node("é") && !valid_node(&"x".repeat(65)));
        assert!(valid_node(&hostname()));
    }
}
