//! The `"*"` subscribers, and how far each has joined or left.
//!
//! Joining `"*"` needs a snapshot of every slot, and leaving it needs the
//! client's named symbols handed back to their slots, each without a gap or
//! a duplicate against that slot's publishes. Instead of locking every slot
//! at once, each member carries a cursor over slot numbers (slots are
//! numbered in creation order, see `Slot::id`): whoever joins or leaves walks
//! the slots it must change in number order, one slot's lock at a time, and
//! moves its cursor past each slot while holding that slot's lock. A publish
//! reads the cursors under its own slot's lock, so for any one slot every
//! record goes either before the change (and the walk's snapshot covers it)
//! or after it, never both and never neither.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use quotehub_proto::Channels;

use crate::{Recipient, Subscriber};

/// One `"*"` subscriber, with the channels it holds every symbol with. While
/// it changes (joins, widens, narrows or leaves), a slot the walk has passed
/// gets the new channels (`after`) and any other the old ones (`before`); a
/// slot counts as passed when `slot < lo || slot >= hi` (slot numbers are
/// below `u64::MAX`):
///
/// | phase | `before` | `after` | `lo` | `hi` |
/// |---|---|---|---|---|
/// | joining or widening | the old set (none to join) | the new set | walked up to (rises from 0) | first slot created after the change: newer slots get the new set |
/// | held | its set | its set | `u64::MAX` | `u64::MAX` |
/// | narrowing or leaving | the old set | the new set (none to leave) | handed over up to (rises from 0) | `u64::MAX`: only the walked slots change before the end |
/// | gone | none | none | any | any |
///
/// A member whose phase changes is replaced in the list by a new one; the
/// old one is moved to its final state first, so a publish that still reads
/// it decides as the new one would.
pub(crate) struct Member<S> {
    pub(crate) subscriber: S,
    /// Whether the member holds every slot with one set (the list may then
    /// be shared as is).
    held: bool,
    before: AtomicU8,
    after: AtomicU8,
    lo: AtomicU64,
    hi: AtomicU64,
}

impl<S: Subscriber> Member<S> {
    /// A member about to walk every slot numbered below `first_new`, moving
    /// from `before` to `after` (which holds more) in each.
    pub(crate) fn widening(subscriber: S, before: Channels, after: Channels, first_new: u64) -> Self {
        Self::new(subscriber, false, (before, after), 0, first_new)
    }

    /// A member that receives every slot's records of `channels`.
    pub(crate) fn held(subscriber: S, channels: Channels) -> Self {
        Self::new(subscriber, true, (channels, channels), u64::MAX, u64::MAX)
    }

    /// A member about to hand some slots (its named ones) over, in number
    /// order, moving from `before` to `after` (which holds less) in each.
    pub(crate) fn narrowing(subscriber: S, before: Channels, after: Channels) -> Self {
        Self::new(subscriber, false, (before, after), 0, u64::MAX)
    }

    fn new(subscriber: S, held: bool, (before, after): (Channels, Channels), lo: u64, hi: u64) -> Self {
        Self {
            subscriber,
            held,
            before: AtomicU8::new(before.bits()),
            after: AtomicU8::new(after.bits()),
            lo: AtomicU64::new(lo),
            hi: AtomicU64::new(hi),
        }
    }

    pub(crate) fn id(&self) -> u64 {
        self.subscriber.subscriber_id()
    }

    /// The channels (bits) a publish to slot `slot` goes to this member
    /// with. Called under that slot's lock, which the walks also hold while
    /// moving a cursor past it, so relaxed loads suffice.
    fn channels(&self, slot: u64) -> u8 {
        if slot < self.lo.load(Ordering::Relaxed) || slot >= self.hi.load(Ordering::Relaxed) {
            self.after.load(Ordering::Relaxed)
        } else {
            self.before.load(Ordering::Relaxed)
        }
    }

    /// The set the member holds once its change is done.
    pub(crate) fn after(&self) -> Channels {
        Channels::from_bits(self.after.load(Ordering::Relaxed))
    }

    /// A changing member has passed slot `slot` (under its lock): its
    /// snapshot sent, or the slot handed over.
    pub(crate) fn walked(&self, slot: u64) {
        self.lo.store(slot.saturating_add(1), Ordering::Relaxed);
    }

    /// A changing member has walked every slot it had to: every slot gets
    /// the new set.
    pub(crate) fn joined(&self) {
        self.lo.store(u64::MAX, Ordering::Relaxed);
    }

    /// A member that leaves (or is removed): it receives nothing more.
    pub(crate) fn gone(&self) {
        self.before.store(0, Ordering::Relaxed);
        self.after.store(0, Ordering::Relaxed);
    }
}

/// The list of `"*"` members, replaced whole (copy-on-write) on every change.
pub(crate) struct Wildcard<S> {
    members: Vec<Arc<Member<S>>>,
    /// The subscribers with their sets when every member is held (nearly
    /// always): what every publish hands out as is, a reference count and
    /// no filtering.
    settled: Option<Arc<Vec<Recipient<S>>>>,
}

impl<S: Subscriber> Wildcard<S> {
    pub(crate) fn empty() -> Self {
        Self::from_members(Vec::new())
    }

    fn from_members(members: Vec<Arc<Member<S>>>) -> Self {
        let settled = members.iter().all(|member| member.held).then(|| {
            Arc::new(
                members
                    .iter()
                    .map(|member| Recipient {
                        subscriber: member.subscriber.clone(),
                        channels: member.after(),
                    })
                    .collect(),
            )
        });
        Self { members, settled }
    }
    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub(crate) fn member(&self, id: u64) -> Option<&Arc<Member<S>>> {
        self.members.iter().find(|member| member.id() == id)
    }

    /// The list with `member` added, or with it in place of the member of the same id.
    pub(crate) fn with(&self, member: Arc<Member<S>>) -> Self {
        let mut members = Vec::with_capacity(self.members.len() + 1);
        members.extend(self.members.iter().filter(|m| m.id() != member.id()).cloned());
        members.push(member);
        Self::from_members(members)
    }

    /// The list without the member of that id.
    pub(crate) fn without(&self, id: u64) -> Self {
        Self::from_members(self.members.iter().filter(|m| m.id() != id).cloned().collect())
    }

    /// Who receives a publish to slot `slot`, with which channels; called
    /// under that slot's lock.
    pub(crate) fn recipients(&self, slot: u64) -> Option<Arc<Vec<Recipient<S>>>> {
        match &self.settled {
            Some(all) => (!all.is_empty()).then(|| Arc::clone(all)),
            // Someone is changing: a list of its own for this record.
            None => {
                let some: Vec<Recipient<S>> = self
                    .members
                    .iter()
                    .filter_map(|member| {
                        let channels = Channels::from_bits(member.channels(slot));
                        (!channels.is_empty()).then(|| Recipient {
                            subscriber: member.subscriber.clone(),
                            channels,
                        })
                    })
                    .collect();
                (!some.is_empty()).then(|| Arc::new(some))
            }
        }
    }
}
