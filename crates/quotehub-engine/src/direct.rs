//! Writing from the publishing thread: when a client's writer is idle with
//! nothing queued, the pusher hands the new message to the connection's
//! socket itself, if the socket takes it at once, instead of queueing it and
//! waking the writer task.
//!
//! Why (issue 18 item 6, profiled in `benches/README.md`, "Where the hub's
//! CPU per delivery goes"): at a moderate rate each quote reaches idle
//! writers, and handing each one a wake-up cost about as much CPU as the
//! write itself (the runtime's queues, parking and unparking worker
//! threads, polling the connection's task) and put a thread hand-off into
//! every record's latency.
//!
//! The rules that keep every other behaviour as it was (see `queue.rs`):
//! - only when the writer found the queue empty and has not been woken since,
//!   and nothing is queued: the writer is then not writing, and holds off
//!   until the pusher, which holds the queue's lock while it writes, is done;
//! - only live records (catch-up runs go through the writer);
//! - only from a publisher's staged batch (a live source's read), and only a
//!   small one, to its first few recipients (the caps below): a large batch
//!   or a per-event publisher at full speed (a replay at `max`) would make
//!   this thread write small messages one client at a time, where the
//!   writers, on the other cores, batch what piles up;
//! - never waiting: a socket that takes nothing leaves the message queued and
//!   the writer woken, as before; one that takes part of it leaves the rest,
//!   to be written first, by the writer, under its write deadline.

use bytes::Bytes;

use crate::run::Run;
use crate::send_batch::SendBatch;

/// Most records in a publisher's batch for its recipients to be written
/// from its thread. The default bench's batches hold one quote (measured);
/// the cap is a guard, not a tuned value: past it the batch is the
/// high-rate case, where the writers' batching and the other cores count.
pub(crate) const MAX_BATCH_RECORDS: usize = 16;

/// Most recipients of one batch written from the publisher's thread; the
/// rest are woken, so that a large fan-out is written by the writers on
/// every core rather than one client after another here. A guard, as above
/// (the default bench's fan-out is 25).
pub(crate) const MAX_WRITES_PER_BATCH: usize = 64;

/// What a [`DirectWrite::try_send`] did with a message.
#[derive(Debug)]
pub enum Written {
    /// The socket took the whole message.
    All,
    /// The socket took the start of the message; these bytes (the rest of
    /// its frame) must go out next, before anything else.
    Part(Bytes),
    /// The socket took nothing (it would block, or failed: the writer then
    /// finds the error on its own write).
    Nothing,
}

/// A connection's socket, as the publisher may write to it (the edge
/// implements it; the engine names no socket).
pub trait DirectWrite: Send + Sync + std::fmt::Debug {
    /// Sends `run` (live records) as one message, framed as the writer
    /// would and stamped with `batch`'s send time, with whatever the socket
    /// takes now, never waiting; counts the message in `batch` if any of it
    /// was written.
    fn try_send(&self, run: &Run, batch: &mut SendBatch) -> Written;
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::queue::{Outbound, Queue};
    use crate::run::test_record;
    use crate::slow_consumer::Policy;

    /// A socket that takes at most `room` more bytes, in what it was given.
    #[derive(Debug)]
    struct Socket {
        room: Mutex<usize>,
        taken: Arc<Mutex<Vec<u8>>>,
    }

    impl DirectWrite for Socket {
        fn try_send(&self, run: &Run, _batch: &mut SendBatch) -> Written {
            let message = run.contiguous();
            let mut room = self.room.lock().unwrap();
            let took = message.len().min(*room);
            *room -= took;
            self.taken.lock().unwrap().extend_from_slice(&message[..took]);
            match took {
                0 => Written::Nothing,
                took if took == message.len() => Written::All,
                took => Written::Part(Bytes::copy_from_slice(&message[took..])),
            }
        }
    }

    /// A queue whose pushes may write to a socket with `room` bytes.
    fn queue_with_socket(room: usize) -> (Queue, Arc<Mutex<Vec<u8>>>) {
        let queue = Queue::new(100, Policy::Disconnect, 64 * 1024);
        let taken = Arc::new(Mutex::new(Vec::new()));
        queue.write_directly(Box::new(Socket {
            room: Mutex::new(room),
            taken: Arc::clone(&taken),
        }));
        (queue, taken)
    }

    /// What the writer would take now, as bytes in order.
    fn queued_bytes(queue: &Queue) -> Vec<u8> {
        let mut items = Vec::new();
        queue.take_now(&mut items, usize::MAX);
        let mut bytes = Vec::new();
        for item in items {
            match item {
                Outbound::Records(run) => bytes.extend_from_slice(&run.contiguous()),
                Outbound::Unfinished(rest) => bytes.extend_from_slice(&rest),
                other => panic!("unexpected {other:?}"),
            }
        }
        bytes
    }

    #[test]
    fn pushes_to_an_idle_writer_go_to_the_socket_when_it_takes_them_and_nothing_stays_queued() {
        let (queue, taken) = queue_with_socket(usize::MAX);
        let (a, b) = (test_record(8, 1), test_record(8, 2));
        assert_eq!(
            queue
                .push_staged(std::iter::once(&a[..]), Some(&mut SendBatch::default()))
                .queued,
            1
        );
        assert_eq!(
            queue
                .push_shared_staged(&Bytes::from(b.clone()), 1, Some(&mut SendBatch::default()))
                .queued,
            1
        );
        assert_eq!(*taken.lock().unwrap(), [a, b].concat());
        assert_eq!(queue.depth(), 0);
        assert!(queued_bytes(&queue).is_empty());
    }

    #[test]
    fn what_the_socket_does_not_take_is_queued_first_and_later_pushes_wait_behind_it() {
        // TC0: the socket takes nothing; TC1: it takes 5 bytes of 8.
        for (label, room) in [("TC0", 0), ("TC1", 5)] {
            let (queue, taken) = queue_with_socket(room);
            let (a, b) = (test_record(8, 1), test_record(8, 2));
            queue.push_staged(std::iter::once(&a[..]), Some(&mut SendBatch::default()));
            // The writer is woken now: this one is not written directly.
            queue.push_staged(std::iter::once(&b[..]), Some(&mut SendBatch::default()));
            assert_eq!(taken.lock().unwrap().len(), room, "{label}");
            let sent = [taken.lock().unwrap().clone(), queued_bytes(&queue)].concat();
            assert_eq!(sent, [a, b].concat(), "{label}: every byte once, in order");
        }
    }

    #[test]
    fn a_writer_closing_takes_the_rest_of_a_begun_message_and_nothing_else() {
        let (queue, taken) = queue_with_socket(5);
        let (a, b) = (test_record(8, 1), test_record(8, 2));
        queue.push_staged(std::iter::once(&a[..]), Some(&mut SendBatch::default()));
        queue.push_staged(std::iter::once(&b[..]), Some(&mut SendBatch::default()));
        let rest = queue.take_unfinished().expect("the rest of the begun message");
        assert_eq!([taken.lock().unwrap().clone(), rest.to_vec()].concat(), a);
        assert_eq!(queue.take_unfinished(), None, "records are not a begun message");
        assert_eq!(queued_bytes(&queue), b);
    }

    #[test]
    fn catch_up_records_per_event_pushes_and_a_woken_writer_are_never_bypassed() {
        let record = test_record(8, 1);
        type Push = fn(&Queue, &[u8]);
        let cases: [(&str, Push); 4] = [
            ("TC0: per-event push", |queue, record| {
                queue.push_records(std::iter::once(record));
            }),
            ("TC1: shared, not staged", |queue, record| {
                queue.push_shared(&Bytes::copy_from_slice(record), 1);
            }),
            ("TC2: a snapshot", |queue, record| {
                queue.push_catch_up(std::iter::once(record));
            }),
            ("TC3: staged, but the writer was woken", |queue, record| {
                queue.push(Outbound::Ping);
                queue.push_staged(std::iter::once(record), Some(&mut SendBatch::default()));
            }),
        ];
        for (label, push) in cases {
            let (queue, taken) = queue_with_socket(usize::MAX);
            push(&queue, &record);
            assert!(taken.lock().unwrap().is_empty(), "{label}");
            assert_eq!(queue.depth(), 1, "{label}: queued for the writer");
        }
    }

    #[test]
    fn closing_the_queue_or_stopping_direct_writes_lets_go_of_the_socket() {
        for close in [Queue::close, Queue::stop_direct_writes] {
            let (queue, taken) = queue_with_socket(usize::MAX);
            assert_eq!(Arc::strong_count(&taken), 2);
            close(&queue);
            assert_eq!(Arc::strong_count(&taken), 1, "the socket's handle is dropped");
            queue.push_staged(std::iter::once(&test_record(8, 1)[..]), Some(&mut SendBatch::default()));
            assert!(taken.lock().unwrap().is_empty());
        }
    }
}
