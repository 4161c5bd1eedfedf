//! The slices of one binary message for a vectored write (its frame and
//! message headers, then its run's parts), on the stack: a message is
//! written per client per batch, by the writer or the feed thread (see
//! `direct_tcp.rs`), and collecting its slices into a `Vec` cost an
//! allocation and a free each time (issue 18 item 2).

use std::io::IoSlice;

use bytes::Bytes;

/// Parts held on the stack. A run the feed thread writes has at most 16
/// records (`quotehub_engine::direct`), so at most 16 parts; a writer's run
/// has one part per shared body or copied stretch, rarely more. A run with
/// more parts gets its slices in a `Vec`.
const STACK_PARTS: usize = 16;

/// Room for a message's slices: on the stack, else in `heap`.
pub(crate) struct MessageSlices<'a> {
    stack: [IoSlice<'a>; STACK_PARTS + 1],
    heap: Vec<IoSlice<'a>>,
}

impl<'a> MessageSlices<'a> {
    pub(crate) fn new() -> Self {
        Self {
            stack: [IoSlice::new(&[]); STACK_PARTS + 1],
            heap: Vec::new(),
        }
    }

    /// `head`, then each of `parts`, as slices for one vectored write.
    pub(crate) fn of(&mut self, head: &'a [u8], parts: &'a [Bytes]) -> &mut [IoSlice<'a>] {
        let all = std::iter::once(head).chain(parts.iter().map(|part| &part[..]));
        if parts.len() <= STACK_PARTS {
            let slices = &mut self.stack[..=parts.len()];
            for (slice, bytes) in slices.iter_mut().zip(all) {
                *slice = IoSlice::new(bytes);
            }
            slices
        } else {
            self.heap.clear();
            self.heap.extend(all.map(IoSlice::new));
            &mut self.heap
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slices_are_the_head_then_every_part_on_the_stack_or_not() {
        // TC0: one part; TC1: as many as the stack holds; TC2: one more.
        for (label, count) in [("TC0", 1), ("TC1", STACK_PARTS), ("TC2", STACK_PARTS + 1)] {
            let head = [0xAAu8; 3];
            let parts: Vec<Bytes> = (0..count).map(|i| Bytes::from(vec![i as u8; i + 1])).collect();
            let mut room = MessageSlices::new();
            let slices = room.of(&head, &parts);
            assert_eq!(slices.len(), count + 1, "{label}");
            assert_eq!(&*slices[0], &head[..], "{label}");
            for (slice, part) in slices[1..].iter().zip(&parts) {
                assert_eq!(&**slice, &part[..], "{label}");
            }
        }
    }
}
