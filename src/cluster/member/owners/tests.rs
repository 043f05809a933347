//! Owners and keys, one to one.

use super::*;

const MADE_UP: FrontendId = FrontendId::MAX;

#[test]
fn an_owner_is_node_frontend_and_session() {
    let table = [
        ("h2/web/4", Some((MADE_UP, 4))),
        ("h2/web/x", None),
        ("h2/web", None),
        ("h2", None),
        ("", None),
        ("h2/web/4/5", None),
    ];
    for (owner, key) in table {
        let mut owners = Owners::new("h1");
        let key = key.map(|(frontend, session)| SessionKey { frontend, session });
        assert_eq!(owners.key(owner), key, "{owner:?}");
    }
}

#[test]
fn each_frontend_has_one_id_and_back() {
    let mut owners = Owners::new("h1");
    let a = owners.key("h2/web/4").unwrap();
    let b = owners.key("h2/web/5").unwrap();
    let c = owners.key("h3/web/4").unwrap();
    assert_eq!(a.frontend, b.frontend, "one frontend, one id");
    assert_ne!(a.frontend, c.frontend, "another node's frontend of the same name");
    assert_eq!(c.frontend, MADE_UP - 1, "made up counting down");
    for (key, owner) in [(a, "h2/web/4"), (b, "h2/web/5"), (c, "h3/web/4")] {
        assert_eq!(owners.owner(key).as_deref(), Some(owner));
    }
    assert_eq!(
        owners.owner(SessionKey {
            frontend: 7,
            session: 1
        }),
        None
    );
    assert_eq!(owners.node_of(c.frontend), Some("h3"));
    assert!(!owners.is_local(a.frontend));
}

#[test]
fn a_local_frontend_takes_its_connections_id_at_each_hello() {
    let mut owners = Owners::new("h1");
    // Read from Redis at the start: made up until its frontend says hello.
    let read = owners.key("h1/t/1").unwrap();
    owners.key("h2/w/1").unwrap();
    assert_eq!(owners.unattached(), [read.frontend]);
    assert_eq!(owners.attach("t", 3), Some(read.frontend), "its sessions move");
    assert!(owners.unattached().is_empty());
    assert_eq!(
        owners.key("h1/t/1"),
        Some(SessionKey {
            frontend: 3,
            session: 1
        })
    );
    assert_eq!(owners.owner(read), None, "the made-up id is nobody's now");
    assert_eq!(owners.attach("t", 3), None, "the same connection again");
    assert_eq!(owners.attach("t", 5), Some(3));
    assert_eq!(owners.attach("u", 4), None, "a new frontend");
    assert_eq!(owners.local(), [4, 5]);
    assert!(owners.is_local(5) && !owners.is_local(3));
    let remote: Vec<FrontendId> = owners.remote().collect();
    assert_eq!(remote, [MADE_UP - 1]);
}
