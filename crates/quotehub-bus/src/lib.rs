//! quotehub over NATS JetStream: hubs past one machine.
//!
//! An ingest hub publishes every encoded record (the SPEC.md bytes, never
//! re-encoded) to a JetStream stream, one subject per symbol; edge hubs read
//! them back by symbol, history first, and fan them out as a standalone hub
//! does. The stream keeps the last records of each symbol, which are the
//! edges' snapshots and resume history. The bars and BBO records the ingest
//! hub derives go to a second stream, one subject per channel and symbol,
//! which edges read by their clients' interest in those channels. SPEC.md,
//! "The bus (NATS JetStream)", is the subject scheme and the message id.
//!
//! | module | holds |
//! |---|---|
//! | [`connection`] | [`Bus`]: the NATS client, its JetStream context, and a watch on whether it is connected |
//! | [`subject`] | [`Subjects`]: symbol ↔ subject, with the reversible token escape; the derived channels' subjects |
//! | [`stream`] | [`StreamSettings`]: the stream's name, per-symbol limit, duplicate window and [`Storage`] (file or memory); creating or updating it and the stream of derived records |
//! | [`ingest`] | [`IngestPublisher`]: records out with bounded acks in flight and a bounded buffer while the bus is away |
//! | `overtaken` | which records whose publish failed the publisher sends again: not one the stream holds, nor one a later record of its symbol overtook |
//! | [`message_id`] | the `Nats-Msg-Id` of a record, `<symbol>:<epoch>:<seq>` (a derived one `<symbol>:<epoch>:<channel>:<seq>`): de-duplication, and the epoch for edges |
//! | [`edge`] | [`EdgeReader`]: one symbol's last records (or every symbol's) through a consumer, then the new ones over the live subscription, repairing from the stream what it missed, surviving a bus restart; a symbol's (or every symbol's) derived records through a consumer (`edge_derived.rs`) |
//! | `live` | an edge reader's live subscription, and what a live message is to it: the next record, a repeat, or a gap |
//! | [`epoch`] | the sequence space of the stream's newest record, which an edge serves |
//! | [`interest`] | [`EdgeInterest`]: an edge's readers, started by a symbol's first client (of its records, or of its derived channels) and ended after its last |
//! | `open_retry` | opening an edge's reader, tried again while it fails, the failure said once per reason |
//! | `pass_order` | `PassOrder`: two readers of one symbol: neither jumps over numbers the other will bring, and the table's order is the queues' |
//! | `sink` | the engine's `RecordSink` as the [`IngestPublisher`]: an ingest hub's records onto the bus |
//! | [`join`] | [`join::join`]: a hub built for its role and joined to the bus, waiting for the bus at start-up |
//! | [`link`] | [`HubLink`]: a hub's role on the bus, its state for `/metrics` and `/health`, and `upstream_down` / `upstream_up` for its clients |
//! | [`error`] | [`BusError`] |
//! | [`lease`] | [`Lease`]: which of several ingest hubs publishes, a key with a TTL in a JetStream key-value bucket |
//! | [`lease_keeper`] | [`LeaseKeeper`]: the lease polled or refreshed on a task, released on a clean shutdown; [`LeaseState`] for `/metrics` |
//! | [`failover`] | [`FailoverSink`]: an ingest hub's records onto the bus while it holds the lease, in the stream's numbers after a takeover; its recent-records window |
//! | [`tail`] | [`Tail`]: the stream's last record of every symbol, in one pass; [`DerivedTail`]: every derived channel's |
//! | [`takeover`] | [`TakeoverPlan`]: a standby's records aligned with the tail, to continue every symbol with no gap or duplicate |
//! | [`derived_takeover`] | [`DerivedPlan`]: the same for each derived channel of each symbol, in its own sequence |
//!
//! async-nats 0.50 without its `server_2_10`+ features: Debian ships
//! nats-server 2.9.10, and those features send consumer fields it lacks.

pub mod connection;
pub mod derived_takeover;
pub mod edge;
pub mod epoch;
pub mod error;
pub mod failover;
pub mod ingest;
pub mod interest;
pub mod join;
pub mod lease;
pub mod lease_keeper;
pub mod link;
mod live;
pub mod message_id;
mod open_retry;
mod overtaken;
mod pass_order;
mod sink;
pub mod stream;
pub mod subject;
pub mod tail;
pub mod takeover;

pub use connection::{Bus, ConnectionState, REQUEST_TIMEOUT};
pub use derived_takeover::{DerivedAlignment, DerivedPlan, DerivedTakeover};
pub use edge::{BusRecord, EdgeReader};
pub use error::BusError;
pub use failover::{FailoverSettings, FailoverSink, HAND_OVER_FLUSH, HandOver};
pub use ingest::{IngestCounters, IngestPublisher, IngestSettings};
pub use interest::EdgeInterest;
pub use lease::{Lease, LeaseSettings, LeaseValue};
pub use lease_keeper::{LeaseKeeper, LeaseState};
pub use link::{BUS_FEED, HubLink, Role, announce_bus_state};
pub use stream::{Storage, StreamSettings};
pub use subject::Subjects;
pub use tail::{DerivedTail, Tail, TailRecord};
pub use takeover::{Alignment, SymbolTakeover, TakeoverPlan};
