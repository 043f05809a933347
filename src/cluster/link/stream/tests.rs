//! Reading an `XREAD` answer, without Redis.

use super::*;

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

#[test]
fn an_xread_answer_gives_its_entries_in_order() {
    let entry = |id: &str, kind: &str| {
        Value::Array(vec![
            bulk(id),
            Value::Array(vec![
                bulk("e"),
                bulk("ep1"),
                bulk("k"),
                bulk(kind),
                bulk("o"),
                bulk("h1/web/1"),
                bulk("n"),
                bulk("ann"),
                bulk("h"),
                bulk("10:00:00"),
                bulk("x"),
                bulk("hi"),
            ]),
        ])
    };
    let answer = Value::Array(vec![Value::Array(vec![
        bulk("chat:events"),
        Value::Array(vec![entry("5-0", "all"), entry("5-1", "future")]),
    ])]);
    let got = parse_read(&answer);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, "5-0".parse().unwrap());
    assert_eq!(got[0].1, "ep1");
    assert!(matches!(&got[0].2, Some(Entry::All { text, .. }) if text == "hi"));
    assert_eq!(got[1].2, None, "a kind this version does not know is skipped");
    assert!(parse_read(&Value::Nil).is_empty());
}
