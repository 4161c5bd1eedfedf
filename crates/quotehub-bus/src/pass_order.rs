//! How an edge's readers of one symbol share it. Two readers may read the
//! same subject at once (a symbol's own reader and the `"*"` reader, while
//! clients of both are on the edge), each from its own start and at its
//! own pace, and the table keeps a number above its last even when numbers
//! are skipped (a gap the stream really has is the client's to see). So:
//!
//! - **No jump over what another reader will bring.** A reader is *in
//!   step* with a symbol once one of its records of it is at most the
//!   table's next number (a repeat, or the very next): from then on it
//!   reads on from the table's position, and passes everything while its
//!   own numbers run on (see the next point). A record
//!   of a reader not in step that would skip numbers is dropped while
//!   another reader is in step with the symbol (that one is behind, and
//!   will bring the numbers between; a reader just started reads from what
//!   the stream holds now, which can be past what the other has fetched
//!   but not yet passed). With no reader in step, the jump is passed: no
//!   reader has those numbers.
//! - **A reader's own jump puts it out of step.** In step means "reads on
//!   from the table's position", which holds only while its own numbers
//!   run on: a reader whose consumer falls past the stream's per-symbol
//!   limit while it catches up (the `"*"` reader reading every subject's
//!   history, a repair) skips numbers the stream no longer holds, which
//!   another reader of the symbol may have read already (live) and not yet
//!   passed. So a record past the reader's own last of the symbol (by more
//!   than the updates it stands for) is judged as a new reader's is: held
//!   back while another reader is in step, passed when none is. (Should
//!   the reader in step then jump further itself, what the other held back
//!   is lost with the numbers between: nothing dropped is read again.)
//! - **Table order is queue order.** The table takes a record under its
//!   slot's lock but the client queues are fed after it lets go, so one
//!   reader could publish 10, the other 11, and 11 reach the queues first.
//!   A reader holds its symbol's lock here across the table and the
//!   queues.
//!
//! Locks are shared by symbols (a fixed number of shards, picked by a hash
//! of the symbol): two readers of different symbols rarely wait for each
//! other, and the set of locks never grows with the symbols read.

use std::collections::HashMap;
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
/// each with the number of its last record of it the reader read, given
/// back when the reader ends (an aborted task drops it).
#[derive(Debug)]
pub(crate) struct ReaderSteps {
    order: Arc<PassOrder>,
    in_step: HashMap<Symbol, u64>,
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
            in_step: HashMap::new(),
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
        let stands_for = 1 + u64::from(conflated);
        if let Some(&own) = self.in_step.get(&symbol)
            && seq > own.saturating_add(stands_for)
        {
            // Its own numbers jump: what it skipped, another reader may
            // bring.
            self.in_step.remove(&symbol);
            leave(&mut in_step, symbol);
        }
        match self.in_step.get_mut(&symbol) {
            Some(own) => *own = (*own).max(seq),
            None => {
                let next = last_seq().saturating_add(stands_for);
                let others = in_step.get(&symbol).copied().unwrap_or(0);
                if seq > next && others > 0 {
                    return Passed::AheadOfAnother;
                }
                // A repeat, the next number, or a jump no reader can fill:
                // this reader now reads on from the table's position.
                *in_step.entry(symbol).or_insert(0) += 1;
                self.in_step.insert(symbol, seq);
            }
        }
        publish();
        Passed::Published
    }
}

/// One reader fewer in step with `symbol` (its shard locked).
fn leave(in_step: &mut InStep, symbol: Symbol) {
    if let Some(count) = in_step.get_mut(&symbol) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            in_step.remove(&symbol);
        }
    }
}

impl Drop for ReaderSteps {
    fn drop(&mut self) {
        for (symbol, _) in self.in_step.drain() {
            leave(&mut self.order.lock(symbol), symbol);
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

    /// A table of one symbol that keeps what its clients were sent: a
    /// record is refused at or below its last number.
    fn send_into(sent: &mut Vec<u64>, seq: u64) {
        if sent.last().is_none_or(|&last| seq > last) {
            sent.push(seq);
        }
    }

    // TC2: a reader in step whose own numbers jump (its consumer fell past
    // the stream's per-symbol limit while it caught up) does not pass the
    // jump while another reader in step is behind the table and will bring
    // the numbers between: it waits, as a reader just started does.
    #[test]
    fn a_reader_in_step_does_not_pass_its_own_jump_over_numbers_another_brings() {
        let order = Arc::new(PassOrder::default());
        let spy = sym("SPY");
        let mut sent = Vec::new();
        let mut named = ReaderSteps::new(Arc::clone(&order));
        let mut all = ReaderSteps::new(Arc::clone(&order));
        let last = |sent: &Vec<u64>| sent.last().copied().unwrap_or(0);
        // The "*" reader is in step first and passes 1..=120.
        for seq in 1..=120 {
            let t = last(&sent);
            all.pass(spy, seq, 0, || t, || send_into(&mut sent, seq));
        }
        // The named reader, behind, is in step with its first record (a repeat).
        let t = last(&sent);
        assert_eq!(
            named.pass(spy, 100, 0, || t, || send_into(&mut sent, 100)),
            Passed::Published
        );
        // The "*" reader's next is 130: the stream dropped 121..=129 before
        // its consumer got there; the named reader read them live.
        let t = last(&sent);
        assert_eq!(
            all.pass(spy, 130, 0, || t, || send_into(&mut sent, 130)),
            Passed::AheadOfAnother
        );
        for seq in 101..=131 {
            let t = last(&sent);
            named.pass(spy, seq, 0, || t, || send_into(&mut sent, seq));
        }
        // Back in step: its next record is a repeat or the next.
        for seq in 131..=133 {
            let t = last(&sent);
            assert_eq!(
                all.pass(spy, seq, 0, || t, || send_into(&mut sent, seq)),
                Passed::Published
            );
        }
        assert_eq!(sent, (1..=133).collect::<Vec<u64>>());
    }

    // TC3: a jump the stream really has (both readers meet it) is passed by
    // whichever reader reaches it last: neither waits for the other for ever.
    #[test]
    fn a_jump_both_readers_meet_is_passed() {
        let order = Arc::new(PassOrder::default());
        let spy = sym("SPY");
        let mut sent = Vec::new();
        let mut ahead = ReaderSteps::new(Arc::clone(&order));
        let mut behind = ReaderSteps::new(Arc::clone(&order));
        let last = |sent: &Vec<u64>| sent.last().copied().unwrap_or(0);
        let stream: Vec<u64> = (1..=10).chain(20..=25).collect();
        for &seq in &stream[..5] {
            let t = last(&sent);
            behind.pass(spy, seq, 0, || t, || send_into(&mut sent, seq));
        }
        for &seq in &stream {
            let t = last(&sent);
            ahead.pass(spy, seq, 0, || t, || send_into(&mut sent, seq));
        }
        for &seq in &stream[5..] {
            let t = last(&sent);
            behind.pass(spy, seq, 0, || t, || send_into(&mut sent, seq));
        }
        // The ahead reader waited at 20; the one behind passed the jump.
        assert_eq!(sent, stream);
        let t = last(&sent);
        assert_eq!(
            ahead.pass(spy, 26, 0, || t, || send_into(&mut sent, 26)),
            Passed::Published
        );
        assert_eq!(sent.last(), Some(&26));
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
