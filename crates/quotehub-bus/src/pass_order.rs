//! How an edge's readers of one symbol share it. Two readers may read the
//! same subject at once (a symbol's own reader and the `"*"` reader, while
//! clients of both are on the edge), each from its own start and at its
//! own pace, and the table keeps a number above its last even when numbers
//! are skipped (a gap the stream really has is the client's to see). So:
//!
//! - **No jump over what another reader will bring.** A reader is *in
//!   step* with a symbol once one of its records of it is at most the
//!   table's next number (a repeat, or the very next): from then on it
//!   reads on from the table's position, and passes everything. A record
//!   of a reader not in step that would skip numbers is dropped while
//!   another reader is in step with the symbol (that one is behind, and
//!   will bring the numbers between; a reader just started reads from what
//!   the stream holds now, which can be past what the other has fetched
//!   but not yet passed). With no reader in step, the jump is passed: no
//!   reader has those numbers.
//! - **Table order is queue order.** The table takes a record under its
//!   slot's lock but the client queues are fed after it lets go, so one
//!   reader could publish 10, the other 11, and 11 reach the queues first.
//!   A reader holds its symbol's lock here across the table and the
//!   queues.
//!
//! Locks are shared by symbols (a fixed number of shards, picked by a hash
//! of the symbol): two readers of different symbols rarely wait for each
//! other, and the set of locks never grows with the symbols read.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use quotehub_proto::Symbol;

/// How many locks the symbols share: enough that the readers of a few
/// cores rarely meet on one.
const SHARDS: usize = 64;

/// Per shard: how many readers are in step with each of its symbols.
type InStep = HashMap<Symbol, u32>;

/// The edge's shards; see the module docs.
#[derive(Debug)]
pub(crate) struct PassOrder {
    shards: [Mutex<InStep>; SHARDS],
    hasher: RandomState,
}

impl Default for PassOrder {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::default()),
            hasher: RandomState::new(),
        }
    }
}

impl PassOrder {
    /// `symbol`'s shard, locked (never across an await). A reader that
    /// panicked under the lock left the counts as they were before or
    /// after one whole change.
    fn lock(&self, symbol: Symbol) -> MutexGuard<'_, InStep> {
        let at = self.hasher.hash_one(symbol) % SHARDS as u64;
        self.shards[at as usize].lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One reader's side of [`PassOrder`]: the symbols it is in step with,
/// given back when the reader ends (an aborted task drops it).
#[derive(Debug)]
pub(crate) struct ReaderSteps {
    order: Arc<PassOrder>,
    in_step: HashSet<Symbol>,
}

/// What [`ReaderSteps::pass`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Passed {
    /// Handed to `publish` (which may still refuse a repeat).
    Published,
    /// Dropped: it would skip numbers another reader in step will bring.
    AheadOfAnother,
}

impl ReaderSteps {
    pub(crate) fn new(order: Arc<PassOrder>) -> Self {
        Self {
            order,
            in_step: HashSet::new(),
        }
    }

    /// Passes a record of `symbol` numbered `seq`, standing for `1 +
    /// conflated` updates, by `publish` (into the table and out to the
    /// queues), unless it would skip numbers another reader in step will
    /// bring. `last_seq` is the table's number for the symbol, read under
    /// the lock.
    pub(crate) fn pass(
        &mut self,
        symbol: Symbol,
        seq: u64,
        conflated: u32,
        last_seq: impl FnOnce() -> u64,
        publish: impl FnOnce(),
    ) -> Passed {
        let mut in_step = self.order.lock(symbol);
        if !self.in_step.contains(&symbol) {
            let next = last_seq().saturating_add(1).saturating_add(u64::from(conflated));
            let others = in_step.get(&symbol).copied().unwrap_or(0);
            if seq > next && others > 0 {
                return Passed::AheadOfAnother;
            }
            // A repeat, the next number, or a jump no reader can fill:
            // this reader now reads on from the table's position.
            *in_step.entry(symbol).or_insert(0) += 1;
            self.in_step.insert(symbol);
        }
        publish();
        Passed::Published
    }
}

impl Drop for ReaderSteps {
    fn drop(&mut self) {
        for symbol in self.in_step.drain() {
            let mut in_step = self.order.lock(symbol);
            if let Some(count) = in_step.get_mut(&symbol) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    in_step.remove(&symbol);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(text: &str) -> Symbol {
        text.parse().unwrap_or_else(|_| panic!("{text}"))
    }

    /// A table of one symbol, as a number.
    fn publish_into(table: &mut u64, seq: u64) {
        *table = (*table).max(seq);
    }

    // TC0: a new reader ahead of one in step waits; alone, it jumps; a
    // reader that ends gives its place back.
    #[test]
    fn a_reader_ahead_of_another_in_step_does_not_skip_its_numbers() {
        let order = Arc::new(PassOrder::default());
        let nvda = sym("NVDA");
        let mut table = 0;
        let mut named = ReaderSteps::new(Arc::clone(&order));
        let mut all = ReaderSteps::new(Arc::clone(&order));
        for seq in 1..=500 {
            let t = table;
            assert_eq!(
                named.pass(nvda, seq, 0, || t, || publish_into(&mut table, seq)),
                Passed::Published
            );
        }
        // The "*" reader starts at what the stream holds now: 628.
        let t = table;
        assert_eq!(all.pass(nvda, 628, 0, || t, || unreachable!()), Passed::AheadOfAnother);
        // The named reader brings 501..=628; the "*" reader's 629 then is the next.
        for seq in 501..=628 {
            let t = table;
            named.pass(nvda, seq, 0, || t, || publish_into(&mut table, seq));
        }
        let t = table;
        assert_eq!(
            all.pass(nvda, 629, 0, || t, || publish_into(&mut table, 629)),
            Passed::Published
        );
        drop(named);
        drop(all);
        // Nobody in step: a jump (the stream lost those) is passed.
        let mut late = ReaderSteps::new(Arc::clone(&order));
        let t = table;
        assert_eq!(
            late.pass(nvda, 700, 0, || t, || publish_into(&mut table, 700)),
            Passed::Published
        );
        assert_eq!(table, 700);
    }

    // TC1: a record that stands for conflated updates is not a jump.
    #[test]
    fn conflated_numbers_are_not_a_jump() {
        let order = Arc::new(PassOrder::default());
        let spy = sym("SPY");
        let mut first = ReaderSteps::new(Arc::clone(&order));
        let mut second = ReaderSteps::new(Arc::clone(&order));
        first.pass(spy, 10, 0, || 9, || {});
        assert_eq!(second.pass(spy, 13, 2, || 10, || {}), Passed::Published);
    }
}
