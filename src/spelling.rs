//! Words with one spelling: the small enums that servers.toml, the command line, the children's
//! arguments and `status` all name (`tcp`, `on-failure`, `running`). Each is declared with
//! [`spelled!`](crate::spelled), which writes its `as_str`, `FromStr` and `Display` from one table,
//! so that no two places can spell a word differently.

use std::fmt;

/// A word that is not one of a type's spellings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    /// What the word names, e.g. `kind`.
    pub what: &'static str,
    pub got: String,
    pub expected: &'static [&'static str],
}

impl fmt::Display for Unknown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a {}: use ", self.got, self.what)?;
        for (i, word) in self.expected.iter().enumerate() {
            match i {
                0 => {}
                i if i + 1 == self.expected.len() => f.write_str(" or ")?,
                _ => f.write_str(", ")?,
            }
            write!(f, "\"{word}\"")?;
        }
        Ok(())
    }
}

impl std::error::Error for Unknown {}

/// `spelled!(Type, "what it is", { Type::A => "a", Type::B => "b" })`: `Type::ALL`,
/// `Type::as_str`, `FromStr` (failing with [`Unknown`]) and `Display`, from the one table.
#[macro_export]
macro_rules! spelled {
    ($type:ty, $what:literal, { $($variant:path => $text:literal),+ $(,)? }) => {
        impl $type {
            /// Every value, in the order of its spellings.
            #[allow(dead_code)] // some types list their values only in tests
            pub const ALL: &'static [$type] = &[$($variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($variant => $text),+
                }
            }
        }

        impl ::std::str::FromStr for $type {
            type Err = $crate::spelling::Unknown;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($variant),)+
                    _ => Err($crate::spelling::Unknown {
                        what: $what,
                        got: s.to_string(),
                        expected: &[$($text),+],
                    }),
                }
            }
        }

        impl ::std::fmt::Display for $type {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::config::Kind;
    use crate::config::Restart;
    use crate::supervisor::lifecycle::State;

    /// Every value shows as a word that parses back to it.
    fn round_trip<T>(all: &[T])
    where
        T: Copy + PartialEq + std::fmt::Debug + std::fmt::Display + std::str::FromStr,
        T::Err: std::fmt::Debug,
    {
        for value in all {
            let word = value.to_string();
            assert_eq!(word.parse::<T>().unwrap(), *value, "{word}");
        }
    }

    #[test]
    fn every_word_round_trips() {
        round_trip(Kind::ALL);
        round_trip(Restart::ALL);
        round_trip(State::ALL);
        let words: Vec<String> = Restart::ALL.iter().map(|r| r.to_string()).collect();
        assert_eq!(words, ["always", "on-failure", "never"]);
        assert_eq!(format!("{:<5}|", Kind::Ws), "ws   |");
    }

    #[test]
    fn an_unknown_word_names_the_known_ones() {
        assert_eq!(
            "telnet".parse::<Kind>().unwrap_err().to_string(),
            "`telnet` is not a kind: use \"tcp\" or \"ws\""
        );
        assert_eq!(
            "sometimes".parse::<Restart>().unwrap_err().to_string(),
            "`sometimes` is not a restart policy: use \"always\", \"on-failure\" or \"never\""
        );
    }
}
