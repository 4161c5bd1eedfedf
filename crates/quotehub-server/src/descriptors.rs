//! The process's open-file limit (`RLIMIT_NOFILE`): every connection is a
//! descriptor, and a hub past its limit fails `accept` for everyone. The
//! binary raises the soft limit to the hard one at start-up, and [`crate::serve`]
//! lowers a `max_connections` the limit cannot hold to what it can, with a
//! warning, so that `accept` never runs out of descriptors for everyone.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

use crate::admission::REFUSAL_RESERVE;
use crate::config::ServerConfig;

/// Descriptors a hub uses besides its connections: the listener, the
/// runtime's, feeds, recordings, replay sessions' files, logs.
pub const DESCRIPTOR_HEADROOM: u64 = 64;

/// The open-file limit: `None` for unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFileLimit {
    /// The limit in force.
    pub soft: Option<u64>,
    /// The most the soft limit may be raised to without privileges.
    pub hard: Option<u64>,
}

/// The process's open-file limit now.
pub fn open_file_limit() -> OpenFileLimit {
    let limit = getrlimit(Resource::Nofile);
    OpenFileLimit {
        soft: limit.current,
        hard: limit.maximum,
    }
}

/// Raises the soft open-file limit to the hard one (when the hard one is
/// finite: an unlimited soft limit is refused by the kernel) and returns the
/// limit as read back.
pub fn raise_open_file_limit() -> std::io::Result<OpenFileLimit> {
    let before = open_file_limit();
    if let Some(hard) = before.hard
        && before.soft.is_some_and(|soft| soft < hard)
    {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(hard),
                maximum: Some(hard),
            },
        )?;
    }
    Ok(open_file_limit())
}

/// Descriptors `config` may need at once: every connection, the refusal
/// reserve, and [`DESCRIPTOR_HEADROOM`].
pub fn descriptors_needed(config: &ServerConfig) -> u64 {
    let connections = u64::try_from(config.max_connections + REFUSAL_RESERVE).unwrap_or(u64::MAX);
    connections.saturating_add(DESCRIPTOR_HEADROOM)
}

/// The connections a hub configured for `max_connections` can serve under
/// `limit`: all of them, or what is left of the soft limit after the
/// refusal reserve and [`DESCRIPTOR_HEADROOM`] (at least one).
pub fn connections_allowed(max_connections: usize, limit: OpenFileLimit) -> usize {
    let Some(soft) = limit.soft else {
        return max_connections;
    };
    let spare = soft.saturating_sub(REFUSAL_RESERVE as u64 + DESCRIPTOR_HEADROOM);
    let spare = usize::try_from(spare).unwrap_or(usize::MAX);
    max_connections.min(spare).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_needs_its_connections_and_some_headroom() {
        let config = ServerConfig::default();
        let needed = descriptors_needed(&config);
        assert!(needed > config.max_connections as u64);
        assert_eq!(
            needed,
            config.max_connections as u64 + REFUSAL_RESERVE as u64 + DESCRIPTOR_HEADROOM
        );
    }

    #[test]
    fn a_cap_the_limit_cannot_hold_is_lowered_to_what_it_can() {
        let limit = |soft| OpenFileLimit { soft, hard: soft };
        // TC0: room for all. TC1: 1,024 descriptors. TC2: unlimited. TC3: almost none.
        assert_eq!(connections_allowed(500, limit(Some(20_000))), 500);
        assert_eq!(
            connections_allowed(10_000, limit(Some(1_024))),
            1_024 - REFUSAL_RESERVE - DESCRIPTOR_HEADROOM as usize
        );
        assert_eq!(connections_allowed(10_000, limit(None)), 10_000);
        assert_eq!(connections_allowed(10_000, limit(Some(10))), 1);
    }
}
