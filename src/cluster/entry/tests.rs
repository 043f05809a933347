//! Stream entries and their ids, read back as every node reads them.

use super::*;

fn fields(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn ids_order_and_number_as_redis_orders_them() {
    let a: Id = "1700000000000-0".parse().unwrap();
    let b: Id = "1700000000000-7".parse().unwrap();
    let c: Id = "1700000000001-0".parse().unwrap();
    assert!(a < b && b < c);
    assert!(a.number() < b.number() && b.number() < c.number());
    assert_eq!(Id::from_number(b.number()), b);
    assert_eq!(b.to_string(), "1700000000000-7");
    assert!("17-".parse::<Id>().is_err() && "x".parse::<Id>().is_err());
}

#[test]
fn every_kind_is_read_back() {
    assert_eq!(
        Entry::parse(&fields(&[
            ("k", "in"),
            ("o", "h1/web/3"),
            ("n", "ann"),
            ("s", "42"),
            ("r", "1")
        ])),
        Some(Entry::In {
            owner: "h1/web/3".into(),
            name: "ann".into(),
            seq: 42,
            silent: true
        })
    );
    assert_eq!(
        Entry::parse(&fields(&[("k", "out"), ("o", "h1/web/3"), ("n", "ann"), ("f", "r")])),
        Some(Entry::Out {
            owner: "h1/web/3".into(),
            name: "ann".into(),
            why: Leave::Reaped
        })
    );
    let msg = Entry::parse(&fields(&[
        ("k", "msg"),
        ("o", "h1/web/3"),
        ("n", "ann"),
        ("t", "h2/tcp/9"),
        ("m", "bob"),
        ("h", "10:00:00"),
        ("x", "hi"),
    ]))
    .unwrap();
    assert_eq!(msg.owner(), "h1/web/3");
    assert!(matches!(msg, Entry::Msg { target_name, .. } if target_name == "bob"));
    assert!(Entry::parse(&fields(&[("k", "all"), ("o", "a/b/1"), ("n", "x"), ("h", "t")])).is_none());
    assert!(Entry::parse(&fields(&[("k", "new"), ("o", "a/b/1"), ("n", "x")])).is_none());
}

#[test]
fn every_reason_to_leave_is_read_back_from_its_flag() {
    for why in Leave::ALL {
        assert_eq!(Leave::from_flag(why.flag()), Some(why));
    }
    assert_eq!(Leave::from_flag("x"), None);
    assert_eq!(Leave::from_flag(""), None);
}
