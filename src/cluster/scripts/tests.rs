//! The scripts' arguments and answers as the Lua spells them, read back without Redis.

use super::*;

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

fn text(fields: &[&str]) -> Vec<String> {
    fields.iter().map(|f| f.to_string()).collect()
}

#[test]
fn answers_are_read_back() {
    let ok = Value::Array(vec![bulk("OK"), bulk("1-0")]);
    assert_eq!(Reply::parse(&ok), Some(Reply::Ok(vec!["1-0".into()])));
    assert_eq!(Reply::parse(&Value::Array(vec![bulk("DUP")])), Some(Reply::Dup));
    let taken = Value::Array(vec![bulk("ERR"), bulk("taken")]);
    assert_eq!(Reply::parse(&taken), Some(Reply::Refused(Refusal::Taken)));
    assert_eq!(
        Reply::parse(&Value::Array(vec![bulk("BUSY"), bulk("1200")])),
        Some(Reply::Busy(1200))
    );
    assert_eq!(Reply::parse(&Value::Array(vec![bulk("FENCED")])), Some(Reply::Fenced));
    assert_eq!(Reply::parse(&bulk("OK")), None);
    assert_eq!(Reply::parse(&Value::Array(vec![bulk("WHAT")])), None);
    assert_eq!(
        Reply::parse(&Value::Array(vec![bulk("ERR")])),
        None,
        "a refusal names why"
    );
}

#[test]
fn refusals_are_read_by_their_spelling_and_an_unknown_one_keeps_it() {
    let table = [
        ("already", Refusal::Already),
        ("invalid", Refusal::Invalid),
        ("taken", Refusal::Taken),
        ("first", Refusal::First),
        ("notfound", Refusal::NotFound),
        ("banned", Refusal::Unknown("banned".into())),
        ("", Refusal::Unknown(String::new())),
    ];
    for (spelling, refusal) in table {
        assert_eq!(Refusal::parse(spelling), refusal, "{spelling:?}");
    }
}

#[test]
fn every_refusal_a_script_spells_is_known() {
    let sources = [
        include_str!("../lua/common.lua"),
        include_str!("../lua/join.lua"),
        include_str!("../lua/users.lua"),
        include_str!("../lua/login.lua"),
        include_str!("../lua/say.lua"),
        include_str!("../lua/leave.lua"),
        include_str!("../lua/reclaim.lua"),
        include_str!("../lua/beat.lua"),
        include_str!("../lua/part.lua"),
        include_str!("../lua/alive.lua"),
    ];
    let mut seen = 0;
    for source in sources {
        for (_, after) in source
            .match_indices("return {'ERR', '")
            .map(|(i, m)| source.split_at(i + m.len()))
        {
            let why = &after[..after.find('\'').expect("a closing quote")];
            assert!(!matches!(Refusal::parse(why), Refusal::Unknown(_)), "{why}");
            seen += 1;
        }
    }
    assert!(seen >= 7, "the scripts' refusals were found ({seen})");
}

#[test]
fn every_script_is_common_code_and_its_own() {
    let shas: std::collections::HashSet<&str> = Script::ALL.iter().map(|s| s.redis().get_hash()).collect();
    assert_eq!(shas.len(), Script::ALL.len());
    assert_eq!(keys("chat:")[3], "chat:events");
    assert_eq!(keys("chat:")[EVENTS], "chat:events");
    assert_eq!(keys("chat:")[7], "chat:");
    assert_eq!(
        Script::ALL.iter().filter(|s| !s.takes_head()).collect::<Vec<_>>(),
        [&Script::Join]
    );
}

/// Each call's arguments, in the order of the ARGV its script's header names after the head.
#[test]
fn each_call_spells_its_arguments_as_its_script_reads_them() {
    let frame = Frame {
        owner: "h1/t/1",
        process: 99,
        seq: 7,
    };
    let ann = Login {
        name: "ann".into(),
        seq: 10,
    };
    let written: Id = "5-0".parse().unwrap();
    let table: [(Call, Script, &[&str]); 12] = [
        (
            Call::join("c0ffee", "h1", "i1", Duration::from_secs(5)),
            Script::Join,
            &["c0ffee", "h1", "i1", "5000"],
        ),
        (Call::users(), Script::Users, &[]),
        (Call::part(), Script::Part, &[]),
        (
            Call::login(frame, "ann"),
            Script::Login,
            &["h1/t/1", "99", "7", "1", "ann", "ann"],
        ),
        (
            Call::login(frame, "b[a]d"),
            Script::Login,
            &["h1/t/1", "99", "7", "0", "b[a]d"],
        ),
        (
            Call::say(frame, "10:00:00", "hi".into(), None),
            Script::Say,
            &["h1/t/1", "99", "7", "10:00:00", "hi"],
        ),
        (
            Call::say(frame, "10:00:00", "hi".into(), Some("bob")),
            Script::Say,
            &["h1/t/1", "99", "7", "10:00:00", "hi", "bob"],
        ),
        (
            Call::say(frame, "10:00:00", "hi".into(), Some("b[a]d")),
            Script::Say,
            &["h1/t/1", "99", "7", "10:00:00", "hi", ""],
        ),
        (Call::logout(frame), Script::Leave, &["99", "7", "c", "h1/t/1"]),
        (
            Call::gone(["h1/t/1".to_string(), "h1/t/2".to_string()]),
            Script::Leave,
            &["", "", "g", "h1/t/1", "h1/t/2"],
        ),
        (
            Call::reclaim("h1/t/1".into(), &ann, Claim::Fenced),
            Script::Reclaim,
            &["h1/t/1", "10", "ann", "0", "fenced", "ann"],
        ),
        (
            Call::beat(Duration::from_secs(5), Some(written), true),
            Script::Beat,
            &["5000", "5-0", "1"],
        ),
    ];
    for (call, script, args) in table {
        assert_eq!(call.script, script, "{call:?}");
        assert_eq!(call.args, args, "{script:?}");
    }
    let quiet = Call::reclaim("h1/t/1".into(), &ann, Claim::Reset);
    assert_eq!(quiet.args[3..5], ["1", "reset"], "after a reset, quietly");
    assert_eq!(Call::beat(Duration::from_secs(5), None, false).args, ["5000", "", "0"]);
}

#[test]
fn what_a_script_did_is_read_from_its_answer() {
    assert_eq!(appended(&text(&["5-0"])), Some("5-0".parse().unwrap()));
    assert_eq!(appended(&text(&[""])), None, "a leave of nobody logged in");
    assert_eq!(appended(&[]), None);

    let table = [
        (&["e1", "", "new"][..], Some(("e1", None, false))),
        (&["e1", "9-0", "kept"][..], Some(("e1", Some("9-0"), true))),
        (&["e1"][..], Some(("e1", None, false))),
        (&[][..], None),
    ];
    for (fields, want) in table {
        let want = want.map(|(epoch, delivered, kept)| Joined {
            epoch: epoch.into(),
            delivered: delivered.map(|d: &str| d.parse().unwrap()),
            kept,
        });
        assert_eq!(Joined::read(&text(fields)), want, "{fields:?}");
    }

    let everyone = Everyone::read(&text(&["7-0", "h1/t/1", "10\tann\tann", "h2/w/4", "nonsense"])).unwrap();
    assert_eq!(everyone.last, "7-0".parse().unwrap());
    let ann = Login {
        name: "ann".into(),
        seq: 10,
    };
    assert_eq!(
        everyone.users,
        [("h1/t/1".to_string(), ann)],
        "a record that makes no sense is left out"
    );
    assert_eq!(Everyone::read(&[]), None);

    let table = [
        (&["1", "h3", "h1", "h2"][..], Some((&["h3"][..], &["h1", "h2"][..]))),
        (&["0", "h1"][..], Some((&[][..], &["h1"][..]))),
        (&["5", "h1"][..], Some((&["h1"][..], &[][..]))),
        (&[][..], None),
    ];
    for (fields, want) in table {
        let want = want.map(|(reaped, members)| Beaten {
            reaped: text(reaped),
            members: text(members),
        });
        assert_eq!(Beaten::read(&text(fields)), want, "{fields:?}");
    }
}
