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
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Subscriber;

/// One `"*"` subscriber. It receives a slot's records while
/// `slot < lo || slot >= hi` (slot numbers are below `u64::MAX`):
///
/// | phase | `lo` | `hi` | receives |
/// |---|---|---|---|
/// | joining | walked up to (rises from 0) | first slot created after the join | slots walked, and slots newer than the join |
/// | held | `u64::MAX` | `u64::MAX` | every slot |
/// | leaving | 0 | handed over up to (rises from 0) | slots past the hand-over |
/// | gone | 0 | `u64::MAX` | none |
///
/// A member whose phase changes is replaced in the list by a new one; the
/// old one is moved to its final state first, so a publish that still reads
/// it decides as the new one would.
pub(crate) struct Member<S> {
    pub(crate) subscriber: S,
    /// Whether the member receives every slot (the list may then be shared as is).
    held: bool,
    lo: AtomicU64,
    hi: AtomicU64,
}

impl<S: Subscriber> Member<S> {
    /// A member about to walk every slot numbered below `first_new`.
    pub(crate) fn joining(subscriber: S, first_new: u64) -> Self {
        Self::new(subscriber, false, 0, first_new)
    }

    /// A member that receives every slot.
    pub(crate) fn held(subscriber: S) -> Self {
        Self::new(subscriber, true, u64::MAX, u64::MAX)
    }

    /// A member about to hand its named slots back, in number order.
    pub(crate) fn leaving(subscriber: S) -> Self {
        Self::new(subscriber, false, 0, 0)
    }

    fn new(subscriber: S, held: bool, lo: u64, hi: u64) -> Self {
        Self {
            subscriber,
            held,
            lo: AtomicU64::new(lo),
            hi: AtomicU64::new(hi),
        }
    }

    pub(crate) fn id(&self) -> u64 {
        self.subscriber.subscriber_id()
    }

    /// Whether a publish to slot `slot` goes to this member. Called under
    /// that slot's lock, which the walks also hold while moving a cursor
    /// past it, so relaxed loads suffice.
    fn receives(&self, slot: u64) -> bool {
        slot < self.lo.load(Ordering::Relaxed) || slot >= self.hi.load(Ordering::Relaxed)
    }

    /// A joining member has had slot `slot`'s snapshot (under its lock).
    pub(crate) fn walked(&self, slot: u64) {
        self.lo.store(slot.saturating_add(1), Ordering::Relaxed);
    }

    /// A leaving member holds slot `slot` by name again (under its lock).
    pub(crate) fn handed_over(&self, slot: u64) {
        self.hi.store(slot.saturating_add(1), Ordering::Relaxed);
    }

    /// A joining member has walked every slot: it receives all of them.
    pub(crate) fn joined(&self) {
        self.lo.store(u64::MAX, Ordering::Relaxed);
    }

    /// A member that leaves (or is removed): it receives nothing more.
    pub(crate) fn gone(&self) {
        self.lo.store(0, Ordering::Relaxed);
        self.hi.store(u64::MAX, Ordering::Relaxed);
    }
}

/// The list of `"*"` members, replaced whole (copy-on-write) on every change.
pub(crate) struct Wildcard<S> {
    members: Vec<Arc<Member<S>>>,
    /// The subscribers when every member is held (nearly always): what every
    /// publish hands out as is, a reference count and no filtering.
    settled: Option<Arc<Vec<S>>>,
}

impl<S: Subscriber> Wildcard<S> {
    pub(crate) fn empty() -> Self {
        Self::from_members(Vec::new())
    }

    fn from_members(members: Vec<Arc<Member<S>>>) -> Self {
        let settled = members
            .iter()
            .all(|member| member.held)
            .then(|| Arc::new(members.iter().map(|member| member.subscriber.clone()).collect()));
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

    /// Who receives a publish to slot `slot`; called under that slot's lock.
    pub(crate) fn recipients(&self, slot: u64) -> Option<Arc<Vec<S>>> {
        match &self.settled {
            Some(all) => (!all.is_empty()).then(|| Arc::clone(all)),
            // Someone is joining or leaving: a list of its own for this record.
            None => {
                let some: Vec<S> = self
                    .members
                    .iter()
                    .filter(|member| member.receives(slot))
                    .map(|member| member.subscriber.clone())
                    .collect();
                (!some.is_empty()).then(|| Arc::new(some))
            }
        }
    }
}
