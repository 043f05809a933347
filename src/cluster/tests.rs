//! Node names.

use super::*;

#[test]
fn node_names_are_plain() {
    assert!(valid_node("h1") && valid_node("web-01.example"));
    assert!(!valid_node("") && !valid_node("a/b") && !valid_node("é") && !valid_node(&"x".repeat(65)));
    assert!(valid_node(&hostname()));
}
