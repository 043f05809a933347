//! The chat itself, as pure code: parsing input, user names, the kernel's state, and the events
//! it emits.
//!
//! Nothing here does I/O, so the whole of PROTOCOL.md §1–§2 is tested without a socket.

pub mod command;
mod event;
pub mod name;
mod state;

pub use command::{Command, SyntaxError};
pub use event::{ChatError, Event, Style};
pub use state::{Chat, FrontendId, Login, Now, Output, Recipients, SessionId, SessionKey};
