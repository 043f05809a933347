//! Property tests over everything that parses untrusted bytes: no input panics, and none makes a
//! parser hold more than its bound.

use chat_supervisor::chat::name::Keys;
use chat_supervisor::chat::{Chat, Command, Login, Now, Output, SessionKey, command};
use chat_supervisor::frontend::telnet::{Decoder, Item};
use chat_supervisor::wire::{Downstream, Upstream};
use proptest::prelude::*;

const NOW: Now<'static> = Now {
    time: "00:00:00",
    micros: 1,
};

/// Characters TEXT never holds (PROTOCOL.md §1): controls, bidirectional controls, zero-width
/// characters, line and paragraph separators. Spelled out here, apart from the code under test.
fn stripped(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1F}'
            | '\u{7F}'..='\u{9F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2060}'
            | '\u{FEFF}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

/// Login names: case variants and look-alikes of one another, invisible and invalid ones.
const NAMES: [&str; 11] = [
    "ann",
    "bob",
    "Ann",
    "c d",
    "x",
    "\u{430}nn",
    "BOB",
    "b0b",
    "ann\u{3164}",
    "\u{FF41}nn",
    "X",
];

/// Strings rich in what breaks parsers: whitespace, slashes, control, invisible and wide
/// characters.
fn nasty_line() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just(" ".to_string()),
            Just("/".to_string()),
            Just("\t".to_string()),
            Just("\u{1b}[31m".to_string()),
            Just("\u{0}".to_string()),
            Just("\u{85}".to_string()),
            Just("\u{3000}".to_string()),
            prop::sample::select(
                &[
                    '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}',
                    '\u{2069}', '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{200F}', '\u{2060}', '\u{FEFF}',
                    '\u{2028}', '\u{2029}', '\u{3164}',
                ][..]
            )
            .prop_map(String::from),
            Just("login".to_string()),
            Just("msg".to_string()),
            Just("msgall".to_string()),
            Just("logout".to_string()),
            Just("userlist".to_string()),
            Just("whoami".to_string()),
            "[a-z]{1,3}",
            any::<char>().prop_map(String::from),
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn parsing_never_panics_and_text_is_clean(line in nasty_line()) {
        if let Some(Ok(Command::Msg { text, .. } | Command::MsgAll { text })) = command::parse(&line) {
            prop_assert!(!text.chars().any(stripped), "{:?}", text);
            prop_assert!(!text.trim().is_empty());
        }
    }

    #[test]
    fn decoding_any_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Upstream::decode(&bytes);
        let _ = Downstream::decode(&bytes);
    }

    #[test]
    fn decoding_mutated_frames_never_panics(
        line in nasty_line(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut buf = bytes::BytesMut::new();
        Upstream::Hello {
            version: 1,
            frontend: line.clone(),
            instance: 3,
            first: 1,
            sessions: vec![(1, Some(Login { name: line.clone(), seq: 9 })), (2, None)],
            resume: None,
        }
        .encode(&mut buf);
        Upstream::Line { session: 3, line }.encode(&mut buf);
        let mut body = buf[4..].to_vec();
        for (at, byte) in flips {
            let at = at.index(body.len());
            body[at] = byte;
        }
        let _ = Upstream::decode(&body);
        let _ = Downstream::decode(&body);
    }

    #[test]
    fn telnet_never_buffers_more_than_max_line(
        chunks in prop::collection::vec(prop::collection::vec(
            prop_oneof![any::<u8>(), Just(b'\n'), Just(b'\r'), Just(255u8)], 0..200), 0..20),
        max_line in 1usize..64,
    ) {
        let mut decoder = Decoder::new(max_line);
        for chunk in &chunks {
            let mut lines = Vec::new();
            decoder.feed(chunk, &mut |item| if let Item::Line(line) = item { lines.push(line) });
            prop_assert!(decoder.buffered() <= max_line);
            for line in lines {
                // Each replaced byte grows to three at most.
                prop_assert!(line.len() <= 3 * max_line);
                prop_assert!(!line.contains('\n'));
            }
        }
    }

    #[test]
    fn chat_state_stays_consistent(
        ops in prop::collection::vec((0u32..3, 0u64..4, 0u8..7, nasty_line(), prop::sample::select(&NAMES[..]), 0u64..50), 0..80),
    ) {
        let mut chat = Chat::new();
        let mut out: Vec<Output> = Vec::new();
        for (frontend, session, op, line, name, seq) in ops {
            let key = SessionKey { frontend, session };
            match op {
                0 => { chat.open(key); }
                1 => { chat.input(key, &format!("login {name}"), NOW, &mut out); }
                2 => { chat.input(key, &line, NOW, &mut out); }
                3 => chat.close(key, &mut out),
                4 => chat.frontend_gone(frontend, &mut out),
                // A hello after a kernel restart, from a frontend this kernel has not seen yet.
                5 => chat.restore(frontend + 3 * (seq as u32 + 1), vec![(session, Some(Login { name: name.to_string(), seq }))], &mut out),
                _ => { chat.input(key, &format!("msg {name} hi"), NOW, &mut out); }
            }
            let online: Vec<&str> = chat.names().collect();
            let mut keys: Vec<String> = Vec::new();
            for name in &online {
                keys.extend(Keys::of(name).iter().map(String::from));
            }
            let held = keys.len();
            keys.sort_unstable();
            keys.dedup();
            prop_assert_eq!(keys.len(), held, "two names online share a key: {:?}", online);
            let counted: usize = (0..3 * 51).map(|f| chat.users_on(f)).sum();
            prop_assert_eq!(counted, online.len());
        }
    }
}
