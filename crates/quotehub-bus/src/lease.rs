//! The ingest lease: which of several ingest hubs on the same feed
//! publishes to the stream. Exactly one may at a time.
//!
//! The lease is one key in a JetStream key-value bucket whose entries
//! expire (`max_age`: nats-server 2.9 has no per-key TTL, so the whole
//! bucket, which holds only this key, gets the TTL). The holder rewrites
//! the key every `refresh` with a compare-and-set on its revision; `create`
//! succeeds only when the key is absent (expired), deleted or purged, so at
//! most one hub acquires it. The value names the holder and the sequence
//! space (epoch) it publishes in.
//!
//! Losing it:
//! - a refresh refused for a wrong revision means someone else holds it:
//!   the holder stops at once (unless the key holds its own value at a
//!   newer revision: its own write whose ack was lost);
//! - a holder that cannot write for `ttl - refresh` after its last write
//!   was *sent* stops at that deadline whether or not the bus answers: the
//!   server cannot have expired the key before `sent + ttl`, so the holder
//!   stops before any standby can start.
//!
//! Giving it up: on a clean shutdown the holder deletes the key with a
//! compare-and-set on its revision ([`Lease::release`]), so that a standby
//! takes it at its next poll instead of after the TTL; the delete marker
//! tells the standby that the lease was released, not lapsed.
//!
//! A standby reads the key every `poll` and creates it when it is gone.
//! Expiry leaves no marker on 2.9 (delete markers for expired keys are
//! 2.11+), so a watch would not see the lapse: polling is what works here.
//!
//! The bound, with the defaults (ttl 1.5 s, refresh 250 ms, poll 250 ms):
//! the dead holder's last write was at most `refresh` before it died, and
//! the key expires `ttl` after that write, i.e. at most `ttl` after the
//! death; the standby notices within one `poll` and needs one more round
//! trip to create: takeover ≤ ttl + poll + 2 round trips (+ the server's
//! expiry timer) ≈ 1.8 s. The TTL is not shorter because a holder that
//! misses `ttl / refresh` = 6 refreshes in a row (a busy 2-core machine, a
//! slow disk under the store) gives the lease up; shorter would hand the
//! feed over on hiccups.

use std::time::{Duration, Instant};

use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::{self, ErrorCode, kv, stream};
use bytes::Bytes;
use quotehub_proto::Epoch;

use crate::connection::{Bus, REQUEST_TIMEOUT};
use crate::error::BusError;

/// Where the lease lives and how fast it moves.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// The key-value bucket (letters, digits, `-`, `_`); it holds only
    /// the lease, because its TTL is bucket-wide.
    pub bucket: String,
    /// The key in it: one per feed that hubs fail over on.
    pub key: String,
    /// How long the lease lives after its last write.
    pub ttl: Duration,
    /// How often the holder rewrites it.
    pub refresh: Duration,
    /// How often a standby looks whether it lapsed.
    pub poll: Duration,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        Self {
            bucket: "QUOTEHUB_LEASE".to_owned(),
            key: "ingest".to_owned(),
            ttl: Duration::from_millis(1500),
            refresh: Duration::from_millis(250),
            poll: Duration::from_millis(250),
        }
    }
}

impl LeaseSettings {
    fn check(&self) -> Result<(), BusError> {
        let bad = |name, reason| Err(BusError::Setting { name, reason });
        let word = |text: &str| {
            !text.is_empty()
                && text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !word(&self.bucket) {
            return bad("lease bucket", "letters, digits, '-' and '_' only, not empty");
        }
        if !word(&self.key) {
            return bad("lease key", "letters, digits, '-' and '_' only, not empty");
        }
        if self.refresh.is_zero() || self.poll.is_zero() {
            return bad("lease refresh and poll", "must be longer than 0");
        }
        // At least two refreshes fit before the holder's own deadline
        // (ttl - refresh), so one lost write does not give the lease up.
        if self.refresh.saturating_mul(3) > self.ttl {
            return bad("lease ttl", "at least 3 refresh periods");
        }
        Ok(())
    }

    /// How long after sending a write the holder may still publish.
    fn holder_window(&self) -> Duration {
        self.ttl.saturating_sub(self.refresh)
    }
}

/// What the lease key says: who holds it, in which sequence space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseValue {
    /// The holder's id.
    pub holder: String,
    /// The epoch its records are numbered in.
    pub epoch: Epoch,
}

impl LeaseValue {
    /// The longest holder id.
    pub const MAX_HOLDER_LEN: usize = 64;

    /// Whether `holder` can be an id: 1 to 64 printable ASCII bytes, no spaces.
    pub fn valid_holder(holder: &str) -> bool {
        (1..=Self::MAX_HOLDER_LEN).contains(&holder.len()) && holder.bytes().all(|b| b.is_ascii_graphic())
    }

    /// `holder=<id> epoch=<16 hex>`: readable with `nats kv get`.
    pub fn encode(&self) -> Bytes {
        Bytes::from(format!("holder={} epoch={}", self.holder, self.epoch))
    }

    /// The value [`LeaseValue::encode`] writes; `None` for anything else.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (holder, epoch) = text.strip_prefix("holder=")?.split_once(" epoch=")?;
        if !Self::valid_holder(holder) {
            return None;
        }
        Some(Self {
            holder: holder.to_owned(),
            epoch: epoch.parse().ok()?,
        })
    }
}

/// What the key holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Nobody: absent or expired (its holder stopped refreshing it).
    Free,
    /// Nobody: its holder deleted it on a clean shutdown
    /// ([`Lease::release`]), or an operator deleted or purged it.
    Released,
    /// A holder.
    Held(LeaseValue),
    /// A value quotehub did not write; the key is taken all the same.
    Unreadable,
}

/// Why a holder stopped holding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostReason {
    /// The key's revision was not its own: another hub holds it.
    Taken,
    /// No write got through before its deadline.
    Unreachable,
}

/// What a refresh came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// Written: held for another `ttl - refresh`.
    Refreshed,
    /// Not held any more; publishing must stop.
    Lost(LostReason),
    /// Not written (the bus is away or slow), but the deadline has not
    /// passed: still held.
    Failed(String),
}

/// One hub's handle on the lease: the steps, each one request. Most
/// callers want [`crate::LeaseKeeper`], which runs them on a timer.
pub struct Lease {
    store: kv::Store,
    settings: LeaseSettings,
    holder: String,
    /// The revision of its last write while it holds the lease.
    revision: Option<u64>,
    /// Until when it may publish (its last write's send time + ttl - refresh).
    valid_until: Instant,
    epoch: Option<Epoch>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("key", &self.settings.key)
            .field("holder", &self.holder)
            .field("revision", &self.revision)
            .field("valid_until", &self.valid_until)
            .finish_non_exhaustive()
    }
}

impl Lease {
    /// The lease of `settings` for the hub `holder` (an id no other hub
    /// sharing the lease uses); creates the bucket, or brings an existing
    /// one to these settings.
    pub async fn open(bus: &Bus, settings: LeaseSettings, holder: &str) -> Result<Self, BusError> {
        settings.check()?;
        if !LeaseValue::valid_holder(holder) {
            return Err(BusError::Setting {
                name: "lease holder id",
                reason: "1 to 64 printable ASCII characters, no spaces",
            });
        }
        let store = ensure_bucket(bus.jetstream(), &settings)
            .await
            .map_err(|reason| BusError::Lease {
                key: settings.key.clone(),
                reason: format!("the bucket {}: {reason}", settings.bucket),
            })?;
        Ok(Self {
            store,
            settings,
            holder: holder.to_owned(),
            revision: None,
            valid_until: Instant::now(),
            epoch: None,
        })
    }

    fn failed(&self, what: &str, error: impl std::fmt::Display) -> BusError {
        BusError::Lease {
            key: self.settings.key.clone(),
            reason: format!("{what}: {error}"),
        }
    }

    /// Its settings.
    pub fn settings(&self) -> &LeaseSettings {
        &self.settings
    }

    /// This hub's id.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Whether this hub holds the lease now (a write got through less than
    /// `ttl - refresh` ago and no refusal came since).
    pub fn is_held(&self) -> bool {
        self.revision.is_some() && Instant::now() < self.valid_until
    }

    /// Until when it may publish, if it holds the lease.
    pub fn valid_until(&self) -> Option<Instant> {
        self.revision.map(|_| self.valid_until)
    }

    /// The epoch it publishes in while it holds the lease.
    pub fn epoch(&self) -> Option<Epoch> {
        self.epoch.filter(|_| self.revision.is_some())
    }

    /// Reads the key.
    pub async fn current(&self) -> Result<Seen, BusError> {
        let entry = tokio::time::timeout(REQUEST_TIMEOUT, self.store.entry(self.settings.key.clone()))
            .await
            .map_err(|_| self.failed("reading", "timed out"))?
            .map_err(|error| self.failed("reading", error))?;
        Ok(match entry {
            None => Seen::Free,
            Some(entry) if entry.operation != kv::Operation::Put => Seen::Released,
            Some(entry) => LeaseValue::parse(&entry.value).map_or(Seen::Unreadable, Seen::Held),
        })
    }

    /// Tries to take the lease, publishing in `epoch`: true if it is now
    /// this hub's, false if another hub holds it.
    pub async fn acquire(&mut self, epoch: Epoch) -> Result<bool, BusError> {
        let value = LeaseValue {
            holder: self.holder.clone(),
            epoch,
        };
        let sent = Instant::now();
        let created = tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.store.create(self.settings.key.clone(), value.encode()),
        )
        .await
        .map_err(|_| self.failed("creating", "timed out"))?;
        match created {
            Ok(revision) => {
                self.revision = Some(revision);
                self.valid_until = sent + self.settings.holder_window();
                self.epoch = Some(epoch);
                Ok(true)
            }
            Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
            Err(error) => Err(self.failed("creating", error)),
        }
    }

    /// Rewrites the key if its revision is still this hub's last write.
    /// Waits no longer than the deadline.
    pub async fn refresh(&mut self) -> Refresh {
        let (Some(revision), Some(epoch)) = (self.revision, self.epoch) else {
            return Refresh::Lost(LostReason::Taken);
        };
        let lost = |lease: &mut Self, reason| {
            lease.revision = None;
            Refresh::Lost(reason)
        };
        if Instant::now() >= self.valid_until {
            return lost(self, LostReason::Unreachable);
        }
        let value = LeaseValue {
            holder: self.holder.clone(),
            epoch,
        };
        let sent = Instant::now();
        let deadline = tokio::time::Instant::from_std(self.valid_until);
        let update = self.store.update(self.settings.key.clone(), value.encode(), revision);
        match tokio::time::timeout_at(deadline, update).await {
            Ok(Ok(revision)) => {
                self.revision = Some(revision);
                self.valid_until = sent + self.settings.holder_window();
                Refresh::Refreshed
            }
            Ok(Err(error)) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                match self.own_write_after(revision, &value).await {
                    // Still held until the deadline of the last write it
                    // knows got through; the next refresh renews it.
                    Some(newer) => {
                        self.revision = Some(newer);
                        Refresh::Failed("a refresh landed but its ack was lost; its revision is taken up".to_owned())
                    }
                    None => lost(self, LostReason::Taken),
                }
            }
            Ok(Err(error)) if Instant::now() < self.valid_until => Refresh::Failed(error.to_string()),
            Ok(Err(_)) | Err(_) => lost(self, LostReason::Unreachable),
        }
    }

    /// The revision of a write of this very value after `revision`: a
    /// refresh of its own whose ack was lost (the bus went away between
    /// storing it and answering), which a compare-and-set alone cannot
    /// tell from another hub's write. Holder ids are unique per hub, so
    /// the value tells them apart.
    async fn own_write_after(&self, revision: u64, value: &LeaseValue) -> Option<u64> {
        let deadline = tokio::time::Instant::from_std(self.valid_until);
        let entry = tokio::time::timeout_at(deadline, self.store.entry(self.settings.key.clone()))
            .await
            .ok()?
            .ok()??;
        let ours = entry.operation == kv::Operation::Put
            && entry.revision > revision
            && LeaseValue::parse(&entry.value).as_ref() == Some(value);
        ours.then_some(entry.revision)
    }

    /// Gives the lease up at once (deleting the key if it is still this
    /// hub's), so a standby need not wait for the TTL. The delete is
    /// revision-checked: if another hub took the key meanwhile, it stays
    /// theirs and this returns an error (the lease was not ours to give).
    pub async fn release(&mut self) -> Result<(), BusError> {
        let Some(revision) = self.revision.take() else {
            return Ok(());
        };
        tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.store
                .delete_expect_revision(self.settings.key.clone(), Some(revision)),
        )
        .await
        .map_err(|_| self.failed("releasing", "timed out"))?
        .map_err(|error| self.failed("releasing", error))
    }
}

/// The stream under the key-value bucket, as async-nats's
/// `create_key_value` would make it. Made by hand because that call first
/// asks the server for the account's info, which async-nats 0.50 cannot
/// read from a 2.9 server (fields 2.9 does not send).
fn bucket_config(settings: &LeaseSettings) -> stream::Config {
    stream::Config {
        name: format!("KV_{}", settings.bucket),
        description: Some("quotehub ingest lease (SPEC.md, The bus)".to_owned()),
        subjects: vec![format!("$KV.{}.>", settings.bucket)],
        // One value per key: the lease's latest write.
        max_messages_per_subject: 1,
        // The TTL: nats-server 2.9 has it only bucket-wide.
        max_age: settings.ttl,
        max_message_size: 256,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        deny_purge: false,
        allow_direct: true,
        num_replicas: 1,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    }
}

/// Creates the bucket, or brings an existing one to these settings.
async fn ensure_bucket(jetstream: &jetstream::Context, settings: &LeaseSettings) -> Result<kv::Store, String> {
    let config = bucket_config(settings);
    let request = async {
        match jetstream.get_stream(&config.name).await {
            Ok(existing) => {
                let current = &existing.cached_info().config;
                if current.max_age != config.max_age || current.max_messages_per_subject != 1 {
                    jetstream
                        .update_stream(&config)
                        .await
                        .map_err(|error| format!("updating: {error}"))?;
                }
                Ok(())
            }
            Err(error) => match error.kind() {
                GetStreamErrorKind::JetStream(server) if server.error_code() == ErrorCode::STREAM_NOT_FOUND => {
                    jetstream
                        .create_stream(config.clone())
                        .await
                        .map(|_| ())
                        .map_err(|error| format!("creating: {error}"))
                }
                _ => Err(error.to_string()),
            },
        }
    };
    tokio::time::timeout(REQUEST_TIMEOUT * 2, request)
        .await
        .map_err(|_| "timed out".to_owned())??;
    tokio::time::timeout(REQUEST_TIMEOUT, jetstream.get_key_value(settings.bucket.clone()))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn values_round_trip_and_nothing_else_parses() {
        let value = LeaseValue {
            holder: "ingest-a".to_owned(),
            epoch: Epoch::from_u64(0x00c0_ffee_0000_0001).unwrap(),
        };
        assert_eq!(&value.encode()[..], b"holder=ingest-a epoch=00c0ffee00000001");
        assert_eq!(LeaseValue::parse(&value.encode()), Some(value));
        for bad in [
            &b""[..],
            b"holder= epoch=00c0ffee00000001",
            b"holder=a b epoch=00c0ffee00000001",
            b"holder=a epoch=0000000000000000",
            b"holder=a epoch=00c0ffee0000001",
            b"holder=a",
            b"epoch=00c0ffee00000001 holder=a",
            b"holder=\xff epoch=00c0ffee00000001",
        ] {
            assert_eq!(LeaseValue::parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        let long = format!("holder={} epoch=00c0ffee00000001", "a".repeat(65));
        assert_eq!(LeaseValue::parse(long.as_bytes()), None);
    }

    #[test]
    fn settings_leave_room_for_missed_refreshes() {
        assert!(LeaseSettings::default().check().is_ok());
        let tight = LeaseSettings {
            ttl: Duration::from_millis(500),
            ..LeaseSettings::default()
        };
        assert!(tight.check().is_err(), "two refreshes must fit before the deadline");
        for (bucket, key) in [("", "ingest"), ("LEASE", "a.b"), ("LE ASE", "ingest"), ("LEASE", "")] {
            let settings = LeaseSettings {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                ..LeaseSettings::default()
            };
            assert!(settings.check().is_err(), "{bucket:?} {key:?}");
        }
        assert_eq!(LeaseSettings::default().holder_window(), Duration::from_millis(1250));
    }
}
