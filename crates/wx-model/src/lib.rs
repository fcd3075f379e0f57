//! Domain vocabulary of the wx validator.
//!
//! Everything other crates agree on lives here: identifiers ([`RunId`], [`MinerUid`], [`Hotkey`]),
//! the step vocabulary ([`StepKind`], [`StepKey`]), statuses ([`StepStatus`], [`ForecastStatus`],
//! [`RunStatus`]), retry policies ([`RetryPolicy`]), the variable/level/lead catalogue
//! ([`catalogue`]), sanitized step errors ([`StepError`]), pipeline configuration types
//! ([`config`]) and the Diesel schema shared by both database backends ([`schema`], [`rows`]).
//!
//! This crate does no IO. It depends on Diesel only for the `table!` definitions and the row
//! structs, so that the schema is written once for PostgreSQL and SQLite.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod catalogue;
pub mod clock;
pub mod config;
pub mod error;
pub mod ids;
pub mod retry;
pub mod rows;
pub mod schema;
pub mod score_type;
pub mod status;
pub mod step;

pub use catalogue::{Level, VarLevel, Variable};
pub use clock::{Clock, OffsetClock, SystemClock};
pub use error::{Blame, ErrorKind, StepError, sanitize_message};
pub use ids::{COORDINATOR_HOTKEY, COORDINATOR_UID, Hotkey, MinerUid, RunId};
pub use retry::{Backoff, RetryPolicy};
pub use status::{ForecastStatus, HostingStatus, RunStatus, StepStatus};
pub use step::{Scope, StepKey, StepKind};

/// Error returned when text read from the database or a config file does not name a known value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}`; expected one of: {expected}")]
pub struct ParseEnumError {
    /// What was being parsed (e.g. "step status").
    pub what: &'static str,
    /// The offending text.
    pub value: String,
    /// The accepted spellings, comma separated.
    pub expected: String,
}

/// Implements `as_str`, `FromStr`, `Display` and serde (as text) for a fieldless enum.
macro_rules! text_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident ($what:literal) { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text stored in the database and used in config files.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::ParseEnumError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::ParseEnumError {
                        what: $what,
                        value: s.to_owned(),
                        expected: [$($text),+].join(", "),
                    }),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use text_enum;
