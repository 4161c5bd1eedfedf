//! The JetStream stream that holds the records: one per deployment, over
//! every symbol's subject, keeping the last records of each symbol (the
//! snapshots and resume history edges read) on disk or in memory
//! ([`Storage`]), and remembering message ids long enough that a
//! re-published record is stored once.

use std::time::Duration;

use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::{self, ErrorCode, stream};

use crate::error::BusError;
use crate::subject::Subjects;

/// Where nats-server keeps the stream's records.
///
/// Measured with the `bus_probe` example (nats-server 2.9.10, 10,000
/// records/s over 20 subjects to two readers of ordered pull consumers,
/// loaded 2-core VM): the file store costs nats-server about 46 µs of CPU
/// per record, memory about 31 µs; on a machine whose cores are all busy,
/// that CPU is what the bus hop waits for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Storage {
    /// On disk, in nats-server's JetStream store: the records (snapshots,
    /// resume history, the tail a standby takes over from) outlive a
    /// restart of nats-server.
    #[default]
    File,
    /// In nats-server's memory: less CPU per record, and lost when
    /// nats-server stops (the stream itself is gone then; the ingest hub
    /// makes it again, empty, when the bus is back).
    Memory,
}

impl Storage {
    /// The name in settings.
    pub fn name(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Memory => "memory",
        }
    }

    fn jetstream(self) -> stream::StorageType {
        match self {
            Self::File => stream::StorageType::File,
            Self::Memory => stream::StorageType::Memory,
        }
    }
}

impl std::str::FromStr for Storage {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "file" => Ok(Self::File),
            "memory" => Ok(Self::Memory),
            other => Err(format!(
                "unknown bus storage {other:?}; expected \"file\" or \"memory\""
            )),
        }
    }
}

/// How the stream is set up.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// The stream's name (letters, digits, `-`, `_`).
    pub name: String,
    /// Where the symbols' subjects sit.
    pub subjects: Subjects,
    /// How many records the stream keeps per symbol: the hub's
    /// `history.records_per_symbol`, so that an edge can answer the same
    /// resumes as the ingest hub.
    pub records_per_symbol: u32,
    /// How long the server remembers a message id: a record re-published
    /// within it (an ingest hub retrying, or a standby taking over) is
    /// stored once.
    pub duplicate_window: Duration,
    /// Where the records are kept. It only applies when the stream is
    /// made: JetStream cannot move an existing stream between file and
    /// memory.
    pub storage: Storage,
}

impl StreamSettings {
    /// The stream name quotehub uses unless told otherwise.
    pub const DEFAULT_NAME: &'static str = "QUOTEHUB";
    /// The duplicate window unless told otherwise: longer than any
    /// takeover or reconnect the hub waits through.
    pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

    /// The default name, prefix and window, keeping `records_per_symbol`.
    pub fn new(records_per_symbol: u32) -> Self {
        Self {
            name: Self::DEFAULT_NAME.to_owned(),
            subjects: Subjects::default(),
            records_per_symbol,
            duplicate_window: Self::DEFAULT_DUPLICATE_WINDOW,
            storage: Storage::File,
        }
    }

    fn check(&self) -> Result<(), BusError> {
        let bad = |name, reason| Err(BusError::Setting { name, reason });
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return bad("stream name", "letters, digits, '-' and '_' only, not empty");
        }
        if self.records_per_symbol == 0 {
            return bad("records per symbol", "at least 1 (the last value)");
        }
        if self.duplicate_window.is_zero() {
            return bad("duplicate window", "must be longer than 0");
        }
        Ok(())
    }

    /// The stream configuration JetStream is given.
    pub fn config(&self) -> stream::Config {
        stream::Config {
            name: self.name.clone(),
            subjects: vec![self.subjects.all()],
            max_messages_per_subject: i64::from(self.records_per_symbol),
            storage: self.storage.jetstream(),
            // The oldest record of a symbol goes when a new one comes: the
            // stream is a window, not a queue that refuses the feed.
            discard: stream::DiscardPolicy::Old,
            duplicate_window: self.duplicate_window,
            // Edges read the last record of a subject directly.
            allow_direct: true,
            republish: Self::republish_on(self.storage.jetstream()).then(|| self.republish()),
            description: Some("quotehub records, one subject per symbol (SPEC.md, The bus)".to_owned()),
            ..Default::default()
        }
    }

    /// Where the stream republishes each record it stores: the live
    /// subjects, which edges read over core NATS. Only what the stream
    /// stored is republished (not a de-duplicated or refused publish), in
    /// stream order, with headers `Nats-Sequence` (its position) and
    /// `Nats-Last-Sequence` (the position of the subject's record before
    /// it), so an edge reading live sees exactly what the stream holds and
    /// can tell when it missed one.
    pub fn republish(&self) -> stream::Republish {
        stream::Republish {
            source: self.subjects.all(),
            destination: self.subjects.live_all(),
            headers_only: false,
        }
    }

    /// Whether a stream on `storage` republishes to the live subjects: on
    /// file only. nats-server 2.9.10 spends about 220 µs of CPU per record
    /// republishing from a memory stream (against about 45 µs from a file
    /// one, `bus_probe` at 10,000 records/s, benches/README.md), more than
    /// the consumers it saves; edges of a memory stream read through
    /// consumers.
    fn republish_on(storage: stream::StorageType) -> bool {
        storage == stream::StorageType::File
    }

    /// The name of the stream of derived records (bars, BBO):
    /// `<name>_DERIVED`.
    pub fn derived_name(&self) -> String {
        format!("{}_DERIVED", self.name)
    }

    /// The configuration of the stream of derived records: every derived
    /// subject (`<prefix>-drv.>`, one per channel and symbol), the same
    /// per-subject limit, storage and duplicate window as the records'
    /// stream, and no live subjects (these channels are a record per second
    /// or per book change; edges read them through consumers).
    ///
    /// A stream of its own, not more subjects of the records' stream: an
    /// edge's `"*"` reader takes a record whose stream position is not the
    /// one after its last as a missed record (SPEC.md, "Live subjects"), and
    /// the tail, the newest record's epoch and the stream's message count
    /// are all read as "the records": bars and BBOs between them would make
    /// each of those wrong.
    pub fn derived_config(&self) -> stream::Config {
        stream::Config {
            name: self.derived_name(),
            subjects: vec![self.subjects.derived_all()],
            max_messages_per_subject: i64::from(self.records_per_symbol),
            storage: self.storage.jetstream(),
            discard: stream::DiscardPolicy::Old,
            duplicate_window: self.duplicate_window,
            allow_direct: true,
            description: Some(
                "quotehub bars and BBO records, one subject per channel and symbol (SPEC.md, The bus)".to_owned(),
            ),
            ..Default::default()
        }
    }

    /// Creates the stream of derived records, or brings an existing one to
    /// these settings (as [`StreamSettings::ensure`] does the records').
    async fn ensure_derived(&self, jetstream: &jetstream::Context) -> Result<(), BusError> {
        let name = self.derived_name();
        let failed = |reason: String| BusError::Stream {
            stream: name.clone(),
            reason,
        };
        let config = self.derived_config();
        match jetstream.get_stream(&name).await {
            Ok(existing) => {
                let current = &existing.cached_info().config;
                if current.subjects != config.subjects
                    || current.max_messages_per_subject != config.max_messages_per_subject
                    || current.duplicate_window != config.duplicate_window
                {
                    let mut config = config;
                    // JetStream cannot move a stream between file and memory.
                    config.storage = current.storage;
                    jetstream
                        .update_stream(&config)
                        .await
                        .map_err(|error| failed(format!("updating: {error}")))?;
                }
                Ok(())
            }
            Err(error) => match error.kind() {
                GetStreamErrorKind::JetStream(server) if server.error_code() == ErrorCode::STREAM_NOT_FOUND => {
                    jetstream
                        .create_stream(config)
                        .await
                        .map(|_| ())
                        .map_err(|error| failed(format!("creating: {error}")))
                }
                _ => Err(failed(error.to_string())),
            },
        }
    }

    /// Creates the stream and the stream of derived records, or brings
    /// existing ones to these settings (a changed `records_per_symbol`
    /// takes effect on the running streams). Returns the records' stream.
    pub async fn ensure(&self, jetstream: &jetstream::Context) -> Result<stream::Stream, BusError> {
        self.check()?;
        // The derived one first: once the records' stream is there, so is
        // it, and a standby's takeover (which reads both) waits for nothing
        // more than it did.
        self.ensure_derived(jetstream).await?;
        self.ensure_records(jetstream).await
    }

    /// Creates the records' stream, or brings an existing one to these settings.
    async fn ensure_records(&self, jetstream: &jetstream::Context) -> Result<stream::Stream, BusError> {
        let failed = |reason: String| BusError::Stream {
            stream: self.name.clone(),
            reason,
        };
        let config = self.config();
        match jetstream.get_stream(&self.name).await {
            Ok(existing) => {
                let current = &existing.cached_info().config;
                if current.storage != config.storage {
                    // Not an error: a hub restarted with another setting
                    // still serves; the stream keeps its records.
                    tracing::warn!(
                        stream = %self.name,
                        asked = self.storage.name(),
                        kept = ?current.storage,
                        "bus: the stream exists with another storage, which JetStream cannot change; keeping it (delete the stream to change it)"
                    );
                }
                let mut config = config;
                // By the storage the stream has, which is kept (above).
                config.republish = Self::republish_on(current.storage).then(|| self.republish());
                if current.republish != config.republish {
                    // nats-server 2.9 refuses to change RePublish on an
                    // existing stream ("can not change RePublish"); later
                    // servers take it. Without it, edges read through
                    // consumers only, as before live subjects existed.
                    match jetstream.update_stream(&config).await {
                        Ok(_) => return Ok(existing),
                        Err(error) => {
                            tracing::warn!(
                                stream = %self.name, %error,
                                "bus: the stream exists without republishing to the live subjects and the server will not add it; edges read it through consumers only (slower; delete the stream to get live subjects)"
                            );
                            config.republish.clone_from(&current.republish);
                        }
                    }
                }
                if current.subjects != config.subjects
                    || current.max_messages_per_subject != config.max_messages_per_subject
                    || current.duplicate_window != config.duplicate_window
                {
                    jetstream
                        .update_stream(&config)
                        .await
                        .map_err(|error| failed(format!("updating: {error}")))?;
                }
                Ok(existing)
            }
            Err(error) => match error.kind() {
                GetStreamErrorKind::JetStream(server) if server.error_code() == ErrorCode::STREAM_NOT_FOUND => {
                    jetstream
                        .create_stream(config)
                        .await
                        .map_err(|error| failed(format!("creating: {error}")))
                }
                _ => Err(failed(error.to_string())),
            },
        }
    }
}

/// Whether the stream named `name` exists; `None` when the bus does not
/// say (it is away, or answered something else).
pub async fn exists(jetstream: &jetstream::Context, name: &str) -> Option<bool> {
    match jetstream.get_stream(name).await {
        Ok(_) => Some(true),
        Err(error) => match error.kind() {
            GetStreamErrorKind::JetStream(server) if server.error_code() == ErrorCode::STREAM_NOT_FOUND => Some(false),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn settings_are_checked_before_the_server_is_asked() {
        assert!(StreamSettings::new(1).check().is_ok());
        let no_history = StreamSettings::new(0);
        assert!(no_history.check().is_err(), "a stream must keep the last value");
        for bad in ["", "QUOTE HUB", "QUOTE.HUB", "QUOTE*", "QUOTE>"] {
            let settings = StreamSettings {
                name: bad.to_owned(),
                ..StreamSettings::new(1)
            };
            assert!(settings.check().is_err(), "{bad:?}");
        }
        let settings = StreamSettings {
            duplicate_window: Duration::ZERO,
            ..StreamSettings::new(1)
        };
        assert!(settings.check().is_err());
    }

    #[test]
    fn the_config_keeps_records_per_symbol_on_disk_with_a_duplicate_window() {
        let config = StreamSettings::new(250).config();
        assert_eq!(config.name, "QUOTEHUB");
        assert_eq!(config.subjects, ["quotehub.rec.>"]);
        assert_eq!(config.max_messages_per_subject, 250);
        assert_eq!(config.storage, stream::StorageType::File);
        assert_eq!(config.discard, stream::DiscardPolicy::Old);
        assert_eq!(config.duplicate_window, Duration::from_secs(120));
        let republish = config.republish.unwrap();
        assert_eq!(republish.source, "quotehub.rec.>");
        assert_eq!(republish.destination, "quotehub.rec-live.>");
        assert!(!republish.headers_only, "edges read the records from the live subjects");
    }

    #[test]
    fn derived_records_have_a_stream_of_their_own_like_the_records_one() {
        let settings = StreamSettings::new(250);
        let config = settings.derived_config();
        assert_eq!(config.name, "QUOTEHUB_DERIVED");
        assert_eq!(config.subjects, ["quotehub.rec-drv.>"]);
        assert_eq!(config.max_messages_per_subject, 250);
        assert_eq!(config.storage, stream::StorageType::File);
        assert_eq!(config.discard, stream::DiscardPolicy::Old);
        assert_eq!(config.duplicate_window, Duration::from_secs(120));
        assert_eq!(config.republish, None, "edges read derived records through consumers");
        assert_eq!(
            settings.config().subjects,
            ["quotehub.rec.>"],
            "the records' stream is unchanged"
        );
        let memory = StreamSettings {
            storage: Storage::Memory,
            ..StreamSettings::new(1)
        };
        assert_eq!(memory.derived_config().storage, stream::StorageType::Memory);
    }

    #[test]
    fn storage_is_file_unless_memory_is_asked_for() {
        assert_eq!(StreamSettings::new(1).storage, Storage::File);
        let memory = StreamSettings {
            storage: "memory".parse().unwrap(),
            ..StreamSettings::new(1)
        };
        assert_eq!(memory.config().storage, stream::StorageType::Memory);
        assert_eq!(
            memory.config().republish,
            None,
            "edges of a memory stream read through consumers"
        );
        assert_eq!("file".parse::<Storage>(), Ok(Storage::File));
        for bad in ["", "File", "disk", "mem"] {
            assert!(bad.parse::<Storage>().is_err(), "{bad:?}");
        }
    }
}
