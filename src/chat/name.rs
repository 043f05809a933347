//! User names: which are valid, and when two are one user's (PROTOCOL.md §2).
//!
//! Two names clash when one could pass for the other: equal up to case (`Alice`, `alice`), or look-
//! alikes by the confusable skeleton of Unicode UTS #39 (`аlice` with a Cyrillic `а`, `ADMlN` with a
//! small `L` beside `ADMIN`). A name is held under its [`Keys`], computed once at login; the spelling
//! users see is kept apart and never changed.

use caseless::Caseless;
use unicode_security::{GeneralSecurityProfile, skeleton};

/// Longest valid user name, in characters.
pub const MAX_CHARS: usize = 32;

/// A valid name is 1 to 32 characters, each a Unicode letter or digit or one of `_ - .`, and each
/// `Allowed` by the UTS #39 General Security Profile.
///
/// The profile is what refuses invisible letters (U+3164 HANGUL FILLER, U+115F, U+FFA0 and every
/// other default-ignorable), compatibility forms (fullwidth `ａ`, mathematical `𝐚`, `ǆ`, `½`) and
/// deprecated, obsolete and limited-use characters; Latin, Cyrillic, Greek, CJK and other scripts in
/// everyday use stay valid.
pub fn is_valid(name: &str) -> bool {
    let mut count = 0;
    for c in name.chars() {
        count += 1;
        if count > MAX_CHARS || !is_name_char(c) {
            return false;
        }
    }
    count > 0
}

fn is_name_char(c: char) -> bool {
    (c.is_alphanumeric() || matches!(c, '_' | '-' | '.')) && c.identifier_allowed()
}

/// The keys a logged-in name is held under; two names clash when they share one.
///
/// - `folded`, `fold(skeleton(fold(name)))` with Unicode full case folding: case first, then
///   look-alikes, so `Alice`, `ALICE`, `straße`/`STRASSE` and `ΑLICE` (Greek capital alpha) all
///   clash with `alice`. The outer fold is there because skeletons use capitals as prototypes
///   (`0` becomes `O`).
/// - `skeleton`, the plain UTS #39 skeleton of the name as spelled, kept only when it differs:
///   look-alikes that exist only among capitals. Folding first turns `I` into `i`, which no longer
///   looks like `l`, so `folded` alone would let `ADMlN` beside `ADMIN` and `lris` beside `Iris`.
///
/// No single key does both without also merging `i` and `l` in all-lowercase names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    folded: String,
    skeleton: Option<String>,
}

impl Keys {
    pub fn of(name: &str) -> Self {
        let folded_name: String = name.chars().default_case_fold().collect();
        let folded: String = skeleton(&folded_name).default_case_fold().collect();
        let plain: String = skeleton(name).collect();
        let skeleton = (plain != folded).then_some(plain);
        Self { folded, skeleton }
    }

    /// Each key once, `folded` first.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.folded.as_str()).chain(self.skeleton.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clash(a: &str, b: &str) -> bool {
        let (a, b) = (Keys::of(a), Keys::of(b));
        a.iter().any(|key| b.iter().any(|other| key == other))
    }

    #[test]
    fn plain_names_are_valid() {
        assert!(is_valid("bob"));
        assert!(is_valid("a.b_c-9"));
        assert!(is_valid("Юля"));
        assert!(is_valid("名前"));
        assert!(is_valid("Αθηνά"));
        assert!(is_valid("한글"));
        assert!(is_valid("سارة"));
        assert!(is_valid("José"));
        assert!(is_valid("straße"));
        assert!(is_valid(&"x".repeat(32)));
        assert!(is_valid(&"ж".repeat(32)));
    }

    #[test]
    fn malformed_names_are_invalid() {
        assert!(!is_valid(""));
        assert!(!is_valid(&"x".repeat(33)));
        assert!(!is_valid("[bob]"));
        assert!(!is_valid("bob\x1b[31m"));
        assert!(!is_valid("a'b"));
        assert!(!is_valid("<script>"));
        assert!(!is_valid("a b"));
    }

    #[test]
    fn invisible_characters_make_a_name_invalid() {
        // U+3164 is a letter by category and shows as a blank.
        assert!('\u{3164}'.is_alphabetic());
        assert!(!is_valid("\u{3164}"));
        assert!(!is_valid("alice\u{3164}"));
        for filler in ['\u{115F}', '\u{1160}', '\u{FFA0}'] {
            assert!(!is_valid(&format!("a{filler}")), "{filler:?}");
        }
        for hidden in [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{200E}',
            '\u{200F}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{202E}',
            '\u{2066}',
            '\u{00AD}',
            '\u{034F}',
            '\u{180E}',
            '\u{FE0F}',
            '\u{E0041}',
            '\u{E0100}',
        ] {
            assert!(!is_valid(&format!("al{hidden}ice")), "{hidden:?}");
            assert!(!is_valid(&hidden.to_string()), "{hidden:?}");
        }
    }

    #[test]
    fn compatibility_forms_are_invalid() {
        assert!(!is_valid("ａｌｉｃｅ"));
        assert!(!is_valid("𝐚𝐥𝐢𝐜𝐞"));
        assert!(!is_valid("𝔞𝔩𝔦𝔠𝔢"));
        assert!(!is_valid("ǆ"));
        assert!(!is_valid("x²"));
    }

    /// Every character a name may hold is visible: none is dropped by the skeleton, which drops
    /// exactly the default-ignorable code points.
    #[test]
    fn no_valid_name_character_is_default_ignorable() {
        let mut valid = 0;
        for c in (0..=0x10FFFF).filter_map(char::from_u32).filter(|c| is_name_char(*c)) {
            valid += 1;
            assert!(
                skeleton(c.encode_utf8(&mut [0; 4])).next().is_some(),
                "U+{:04X}",
                c as u32
            );
            assert!(!c.is_whitespace() && !c.is_control(), "U+{:04X}", c as u32);
        }
        assert!(valid > 30_000, "{valid}");
    }

    #[test]
    fn names_clash_up_to_case() {
        assert!(clash("alice", "Alice"));
        assert!(clash("alice", "ALICE"));
        assert!(clash("Юля", "ЮЛЯ"));
        assert!(clash("straße", "STRASSE"));
        assert!(clash("ΑΣ", "ας"));
    }

    #[test]
    fn names_clash_with_look_alikes() {
        // Cyrillic а, Greek capital alpha, digit zero, `rn` for `m`.
        assert!(clash("alice", "\u{430}lice"));
        assert!(clash("alice", "\u{391}LICE"));
        assert!(clash("bob", "b0b"));
        assert!(clash("mary", "rnary"));
        // Capital I and small l look alike; small i does not.
        assert!(clash("ADMIN", "ADMlN"));
        assert!(clash("Iris", "lris"));
        assert!(clash("Iris", "iris"));
        assert!(!clash("iris", "lris"));
        // Invalid names would clash too, had they not been refused.
        assert!(clash("alice", "ａｌｉｃｅ"));
        assert!(clash("alice", "𝐚𝐥𝐢𝐜𝐞"));
        assert!(clash("alice", "alice\u{3164}"));
    }

    #[test]
    fn different_names_do_not_clash() {
        assert!(!clash("alice", "bob"));
        assert!(!clash("alice", "alice2"));
        assert!(!clash("Юля", "Юлия"));
        assert!(!clash("名前", "名"));
    }

    #[test]
    fn keys_are_listed_once() {
        assert_eq!(Keys::of("alice").iter().collect::<Vec<_>>(), ["alice"]);
        assert_eq!(Keys::of("ADMIN").iter().collect::<Vec<_>>(), ["adrnin", "ADMlN"]);
    }
}
