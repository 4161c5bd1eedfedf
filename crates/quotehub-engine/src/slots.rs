//! Small dense numbers for connected clients, reused once a client is gone,
//! so that per-client scratch space (a publisher's staging, `staging.rs`)
//! can be a vector indexed by slot rather than a map keyed by client id.

use std::sync::{Arc, Mutex, MutexGuard};

/// Hands out slots; one per hub.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    state: Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    /// Slots given back, reused first so the numbers stay dense.
    free: Vec<u32>,
    /// The lowest slot never handed out.
    next: u32,
}

/// A client's slot, given back when dropped (with the client's last handle).
#[derive(Debug)]
pub struct Slot {
    number: u32,
    slots: Arc<Slots>,
}

impl Slots {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        // Both critical sections leave the state consistent.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A slot no living client holds.
    pub(crate) fn lease(self: &Arc<Self>) -> Slot {
        let mut state = self.lock();
        let number = state.free.pop().unwrap_or_else(|| {
            let number = state.next;
            state.next = state.next.saturating_add(1);
            number
        });
        Slot {
            number,
            slots: Arc::clone(self),
        }
    }
}

impl Slot {
    pub(crate) fn number(&self) -> usize {
        self.number as usize
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.lock().free.push(self.number);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_unique_while_held_and_reused_when_given_back() {
        let slots = Arc::new(Slots::default());
        let a = slots.lease();
        let b = slots.lease();
        assert_ne!(a.number(), b.number());
        let freed = a.number();
        drop(a);
        assert_eq!(slots.lease().number(), freed, "a freed slot is reused first");
        let c = slots.lease();
        assert!(c.number() != b.number() && c.number() < 3, "numbers stay dense");
    }
}
