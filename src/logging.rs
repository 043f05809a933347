//! How every process logs: a child to its stderr, which the supervisor files under `logs/` (the
//! supervisor's own lines go through `supervisor::logfile`), all filtered by `RUST_LOG`.

/// Logs go to stderr; the supervisor files them under `logs/`. `RUST_LOG` filters (see
/// [`filter`]).
pub fn init() {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    tracing_subscriber::registry()
        .with(filter())
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .init();
}

/// What `RUST_LOG` lets through: a level, levels by target, or both (`warn`,
/// `chat_supervisor::kernel=debug`, `info,chat_supervisor::frontend=trace`); `info` when it is
/// unset or unreadable. Targets only, not `EnvFilter`'s span and field filters: those bring a
/// regex engine (about 520 KB of code) into the binary every process maps.
pub fn filter() -> tracing_subscriber::filter::Targets {
    filter_of(std::env::var("RUST_LOG").ok().as_deref())
}

fn filter_of(rust_log: Option<&str>) -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    rust_log
        .and_then(|wanted| wanted.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::filter_of;

    #[test]
    fn rust_log_sets_levels_by_target() {
        let info = filter_of(None);
        assert!(info.would_enable("chat_supervisor::kernel", &Level::INFO));
        assert!(!info.would_enable("chat_supervisor::kernel", &Level::DEBUG));

        let quiet = filter_of(Some("warn"));
        assert!(!quiet.would_enable("chat_supervisor::kernel", &Level::INFO));
        assert!(quiet.would_enable("chat_supervisor::kernel", &Level::WARN));

        let one = filter_of(Some("info,chat_supervisor::kernel=debug"));
        assert!(one.would_enable("chat_supervisor::kernel::hub", &Level::DEBUG));
        assert!(!one.would_enable("chat_supervisor::frontend", &Level::DEBUG));
        assert!(one.would_enable("chat_supervisor::frontend", &Level::INFO));
    }

    #[test]
    fn an_unreadable_rust_log_leaves_info() {
        let filter = filter_of(Some("chat_supervisor=loud"));
        assert!(filter.would_enable("chat_supervisor", &Level::INFO));
        assert!(!filter.would_enable("chat_supervisor", &Level::DEBUG));
    }
}
