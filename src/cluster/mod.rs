//! Many hosts, one chat: with a `[cluster]` table in `servers.toml`, each host's kernel is that
//! host's *member* of one chat kept in Redis (redis-rs, Redis 7). Without it nothing here runs and
//! no Redis is needed.
//!
//! - **Redis holds the chat** (`lua/common.lua` lists the keys): who is logged in and under which
//!   name keys, login order, and one stream of events. Lua scripts ([`scripts`]) check and change
//!   that state and append the event in one atomic step, so a name is claimed once across every
//!   host, a `msg` finds its target, and every event has one place in the stream.
//! - **Every kernel reads the stream** (`XREAD BLOCK` from its last entry) and applies each
//!   event to its replica of the chat in the stream's order, delivering to its own frontends as
//!   the embedded kernel does, one frame per frontend per event ([`member`]).
//! - **Exactly once.** Scripts record the frontend frame they applied per session, so a frame a
//!   frontend sends again to a restarted kernel changes nothing twice; each node records how far
//!   it delivered the stream, so a restarted kernel delivers what it missed, and the frontends
//!   drop what they had (entries carry their id as origin).
//! - **Presence.** Each node refreshes a key with a TTL ([`member::PRESENCE_TTL`]) every second;
//!   when one lapses, a surviving node logs its users out, once, for everyone. A node that finds
//!   itself reaped (it was paused or cut off) claims its users' names again where still free,
//!   and closes the sessions whose names were taken meanwhile.
//! - **Redis restarts.** Scripts wait, in order, and go again once it is back (users see a delay;
//!   past [`member::MAX_PENDING`], `server busy`). If it came back empty (its epoch key is gone),
//!   every node asserts its users again, the earlier login of a name winning, and reads the new
//!   stream from its start.
//!
//! [`link`] is the I/O; [`member`], [`entry`] and [`scripts`] are pure.

pub(crate) mod entry;
pub(crate) mod link;
pub(crate) mod member;
mod scripts;

/// The prefix of every key the cluster uses in Redis.
pub const PREFIX: &str = "chat:";
