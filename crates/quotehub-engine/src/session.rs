//! One client's subscriptions and its requests: parse, validate, apply to
//! the table, answer. No socket here; the edge's connection driver feeds it
//! text, and says how a long walk of the table may block its runtime
//! ([`Blocking`]).

use std::collections::HashSet;
use std::sync::Arc;

use std::collections::HashMap;

use quotehub_proto::{Channels, ErrorCode, Op, Reply, Request, RequestId, Selection, Symbol};
use quotehub_table::{Start, Table};
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

use crate::client::ClientHandle;
use crate::rate_limit::{RateLimit, Verdict, request_weight};

/// A connected client's subscription state.
#[derive(Debug)]
pub struct Session {
    client: ClientHandle,
    table: Arc<Table<ClientHandle>>,
    /// Symbols held by name, each with the channels it is named with (kept
    /// while `"*"` is held, for when it is dropped). The table's entry for
    /// the client holds these less what `"*"` gives, so nothing comes twice.
    named: HashMap<Symbol, Channels>,
    /// The channels `"*"` is held with ([`Channels::NONE`]: not held).
    wildcard: Channels,
    /// Cap on `named`, so one client cannot grow the table without bound.
    max_symbols: usize,
    /// Most symbols the hub may track before unseen ones are refused.
    max_hub_symbols: usize,
    /// Named symbols that no feed had published when this client subscribed
    /// to them (it borrows their slots); some may have been published since,
    /// which is checked again only when the budget would be exceeded.
    borrowed: HashSet<Symbol>,
    /// Cap on `borrowed`: this client's share of `max_hub_symbols`.
    max_borrowed: usize,
    /// Requests per second this client may send.
    rate: RateLimit,
    /// Symbols this client's API key allows; `None` for all.
    entitled: Option<Arc<std::collections::HashSet<Symbol>>>,
    /// How a `"*"` join's walk of the table runs (see [`Blocking`]).
    blocking: Blocking,
}

/// How a session runs a walk of the whole table (a `"*"` join, which visits
/// every symbol and queues a snapshot of each): the edge that owns the
/// connection may tell its runtime that this thread blocks meanwhile (the
/// server tells a multi-threaded tokio worker, so the other connections'
/// tasks move to another thread). [`inline`] just runs it.
pub type Blocking = fn(&mut dyn FnMut());

/// Runs the walk on the calling thread: the default [`Blocking`].
pub fn inline(walk: &mut dyn FnMut()) {
    walk();
}

impl Session {
    /// A session with no subscriptions.
    pub fn new(client: ClientHandle, table: Arc<Table<ClientHandle>>, max_symbols: usize, rate: (u32, u32)) -> Self {
        Self {
            client,
            table,
            named: HashMap::new(),
            wildcard: Channels::NONE,
            max_symbols,
            max_hub_symbols: usize::MAX,
            borrowed: HashSet::new(),
            max_borrowed: usize::MAX,
            rate: RateLimit::new(rate.0, rate.1),
            entitled: None,
            blocking: inline,
        }
    }

    /// Runs `"*"` joins through `blocking` rather than [`inline`].
    pub fn run_walks_with(&mut self, blocking: Blocking) {
        self.blocking = blocking;
    }

    /// Refuses subscriptions that would make the hub track more than
    /// `max` symbols: a slot is kept for a symbol a client waits for before
    /// any feed has sent it, and clients must not be able to grow the table
    /// without bound by naming symbols that do not exist.
    pub fn cap_hub_symbols(&mut self, max: usize) {
        self.max_hub_symbols = max;
    }

    /// Refuses subscriptions that would make this client hold more than
    /// `max` symbols no feed has published, so that one client cannot take
    /// the whole of the hub's `max_symbols` and make another's subscribe fail.
    pub fn cap_unseen_symbols(&mut self, max: usize) {
        self.max_borrowed = max;
    }

    /// The requested symbols no feed has published, each once, in the
    /// request's order: named in the ack, and (those not held yet) the slots
    /// the client would borrow.
    fn never_published(&self, symbols: &[Selection]) -> Vec<Symbol> {
        let mut seen = HashSet::new();
        symbols
            .iter()
            .filter_map(|selection| match selection {
                Selection::Symbol(symbol) if seen.insert(*symbol) && !self.table.is_published(*symbol) => Some(*symbol),
                _ => None,
            })
            .collect()
    }

    /// Whether this client may borrow `more` symbols' slots. Symbols it
    /// borrowed that have been published since are given back first (only
    /// when the budget would be exceeded: that costs a lookup each).
    fn may_borrow(&mut self, more: usize) -> bool {
        if self.borrowed.len().saturating_add(more) <= self.max_borrowed {
            return true;
        }
        let table = &self.table;
        self.borrowed.retain(|symbol| !table.is_published(*symbol));
        self.borrowed.len().saturating_add(more) <= self.max_borrowed
    }

    /// How many of `symbols` the hub has never seen (and this client does
    /// not already wait for).
    fn unseen(&self, symbols: &[Selection]) -> usize {
        symbols
            .iter()
            .filter_map(|selection| match selection {
                Selection::Symbol(symbol) if !self.named.contains_key(symbol) && !self.table.is_known(*symbol) => {
                    Some(*symbol)
                }
                _ => None,
            })
            .collect::<HashSet<_>>()
            .len()
    }

    /// Limits subscriptions to these symbols (from the client's API key).
    pub fn restrict_to(&mut self, symbols: Option<Arc<std::collections::HashSet<Symbol>>>) {
        self.entitled = symbols;
    }

    /// The first requested selection the client's key does not allow.
    fn first_unentitled(&self, symbols: &[Selection]) -> Option<String> {
        let entitled = self.entitled.as_ref()?;
        symbols.iter().find_map(|selection| match selection {
            Selection::All => Some("*".to_owned()),
            Selection::Symbol(symbol) if !entitled.contains(symbol) => Some(symbol.to_string()),
            Selection::Symbol(_) => None,
        })
    }

    /// Applies the request rate limit, taking `tokens`; false if the message
    /// must not be handled.
    fn within_rate(&mut self, tokens: u32, id: Option<RequestId>) -> bool {
        match self.rate.check(std::time::Instant::now(), tokens) {
            Verdict::Allow => true,
            Verdict::Refuse => {
                let reply = Reply::error(id, ErrorCode::RateLimited, "too many requests; slow down");
                self.client.reply(reply.to_json());
                false
            }
            Verdict::Close => {
                let reason = "request rate exceeded".into();
                self.client.close(CloseFrame {
                    code: CloseCode::Policy,
                    reason,
                });
                false
            }
        }
    }

    /// Handles one text message: every request gets exactly one reply, queued
    /// before any snapshot the request causes. Every message takes a token of
    /// the rate limit before it is parsed; a request naming many symbols (or
    /// `"*"`) then takes more, by its weight (`rate_limit::request_weight`).
    pub fn handle_text(&mut self, text: &str) {
        if let Some(request) = self.admit(text) {
            self.apply(request);
        }
    }

    /// The rate limit and parse of [`Session::handle_text`], without
    /// applying: the request to [`Session::apply`], or `None` when it has
    /// been answered already (rate limited, malformed). For an edge that
    /// must do work of its own (fetch a symbol from its bus) for a request
    /// before it is applied, and only for requests the limit lets through.
    pub fn admit(&mut self, text: &str) -> Option<Request> {
        if !self.within_rate(1, None) {
            return None;
        }
        match Request::parse(text) {
            Ok(request) => {
                let more = request_weight(&request.symbols).saturating_sub(1);
                if more > 0 && !self.within_rate(more, request.id.clone()) {
                    return None;
                }
                Some(request)
            }
            Err(reply) => {
                self.client.reply(reply.to_json());
                None
            }
        }
    }

    /// Handles a binary message from the client, which the protocol does not use.
    pub fn handle_binary(&mut self) {
        if !self.within_rate(1, None) {
            return;
        }
        let reply = Reply::error(None, ErrorCode::UnsupportedMessage, "requests are JSON text messages");
        self.client.reply(reply.to_json());
    }

    /// Applies a valid request (also used by the SSE endpoint).
    pub fn apply(&mut self, request: Request) {
        let Request {
            op,
            symbols,
            channels,
            id,
            resume,
            epoch,
            policy,
        } = request;
        // Numbers from another sequence space (a hub that restarted, another
        // chain) cannot be continued: every resumed symbol is reset.
        let other_space = epoch.is_some_and(|epoch| epoch != self.table.epoch());
        let resume: HashMap<Symbol, u64> = resume.into_iter().collect();
        let named_after = match op {
            Op::Subscribe => {
                let new = symbols
                    .iter()
                    .filter(|s| matches!(s, Selection::Symbol(s) if !self.named.contains_key(s)));
                self.named.len() + new.collect::<HashSet<_>>().len()
            }
            Op::Unsubscribe => 0,
        };
        if op == Op::Subscribe
            && let Some(symbol) = self.first_unentitled(&symbols)
        {
            let message = format!("this API key does not allow {symbol:?}");
            self.client
                .reply(Reply::error(id, ErrorCode::NotEntitled, message).to_json());
            return;
        }
        if named_after > self.max_symbols {
            let message = format!("at most {} symbols per connection", self.max_symbols);
            self.client
                .reply(Reply::error(id, ErrorCode::BadRequest, message).to_json());
            return;
        }
        if op == Op::Subscribe {
            let unseen = self.unseen(&symbols);
            // Checked, not reserved: concurrent requests may pass it by a few.
            if unseen > 0 && self.table.symbol_count().saturating_add(unseen) > self.max_hub_symbols {
                let message = format!(
                    "the hub tracks its limit of {} symbols; {unseen} requested symbol(s) have never been published",
                    self.max_hub_symbols
                );
                self.client
                    .reply(Reply::error(id, ErrorCode::SymbolLimit, message).to_json());
                return;
            }
        }
        let never_published = match op {
            Op::Subscribe => self.never_published(&symbols),
            Op::Unsubscribe => Vec::new(),
        };
        let borrowing: HashSet<Symbol> = never_published
            .iter()
            .filter(|symbol| !self.named.contains_key(*symbol))
            .copied()
            .collect();
        if !self.may_borrow(borrowing.len()) {
            let message = format!(
                "at most {} never-published symbols per connection; {} requested symbol(s) have never been published",
                self.max_borrowed,
                borrowing.len()
            );
            self.client
                .reply(Reply::error(id, ErrorCode::SymbolLimit, message).to_json());
            return;
        }
        let names = symbols
            .iter()
            .map(|s| match s {
                Selection::All => "*".to_owned(),
                Selection::Symbol(symbol) => symbol.to_string(),
            })
            .collect();
        if let Some(policy) = policy {
            self.client.set_policy(policy);
        }
        // Named so the client can tell "no data yet" from "nothing coming".
        let unseen = never_published.iter().map(Symbol::to_string).collect();
        // The ack goes first: the snapshots the changes queue must follow it.
        let epoch = self.table.epoch();
        if !self.client.reply(
            Reply::Ack {
                id,
                op,
                symbols: names,
                epoch,
                unseen,
            }
            .to_json(),
        ) {
            return;
        }
        self.borrowed.extend(borrowing);
        let resume = Resume {
            after: resume,
            other_space,
        };
        for selection in symbols {
            match (op, selection) {
                (Op::Subscribe, Selection::All) => self.subscribe_all(channels, &resume),
                (Op::Subscribe, Selection::Symbol(symbol)) => self.subscribe(symbol, channels, &resume),
                (Op::Unsubscribe, Selection::All) => self.unsubscribe_all(channels),
                (Op::Unsubscribe, Selection::Symbol(symbol)) => self.unsubscribe(symbol, channels),
            }
        }
    }

    /// Adds `channels` to `symbol`: each one new to it starts with its
    /// snapshot (or resumes), unless `"*"` gives it already.
    fn subscribe(&mut self, symbol: Symbol, channels: Channels, resume: &Resume) {
        let old = self.named.get(&symbol).copied().unwrap_or(Channels::NONE);
        let new = old.with(channels);
        if new == old {
            return;
        }
        self.named.insert(symbol, new);
        let entry = new.without(self.wildcard);
        if entry == old.without(self.wildcard) {
            // `"*"` gives every added channel already.
            return;
        }
        let starting = new.without(old).without(self.wildcard);
        let client = &self.client;
        self.table
            .hold(symbol, client, entry, start_of(resume, symbol), starting, |record| {
                client.deliver_catch_up(&record);
            });
    }

    /// Removes `channels` from `symbol`; a symbol left with none is dropped.
    fn unsubscribe(&mut self, symbol: Symbol, channels: Channels) {
        let Some(&old) = self.named.get(&symbol) else { return };
        let new = old.without(channels);
        if new.is_empty() {
            self.named.remove(&symbol);
            self.borrowed.remove(&symbol);
            // Also while `"*"` is held (the client is then in no named list,
            // or with the channels `"*"` does not give): the table releases
            // the slot if nobody else holds it and no feed has published it.
            self.table.unsubscribe(symbol, self.client.id());
            return;
        }
        self.named.insert(symbol, new);
        let entry = new.without(self.wildcard);
        if entry != old.without(self.wildcard) {
            // Fewer channels: nothing to start.
            self.table
                .hold(symbol, &self.client, entry, Start::Snapshot, Channels::NONE, |_| {});
        }
    }

    /// Adds `channels` to `"*"`: every symbol starts each channel new to it
    /// (not named with it, nor held with it by `"*"` already).
    fn subscribe_all(&mut self, channels: Channels, resume: &Resume) {
        let before = self.wildcard;
        let after = before.with(channels);
        if after == before {
            return;
        }
        self.wildcard = after;
        let (client, named, table) = (&self.client, &self.named, &self.table);
        (self.blocking)(&mut || {
            table.widen_all(
                client,
                after,
                |symbol| named.get(&symbol).map(|held| held.without(after)),
                |symbol| {
                    let held = named.get(&symbol).copied().unwrap_or(Channels::NONE).with(before);
                    (start_of(resume, symbol), after.without(held))
                },
                |record| {
                    client.deliver_catch_up(&record);
                },
            );
        });
    }

    /// Removes `channels` from `"*"` (all of them: `"*"` is dropped); the
    /// named symbols keep their own channels flowing.
    fn unsubscribe_all(&mut self, channels: Channels) {
        let before = self.wildcard;
        let after = before.without(channels);
        if after == before {
            return;
        }
        self.wildcard = after;
        self.table.narrow_all(
            &self.client,
            after,
            self.named.iter().map(|(symbol, held)| (*symbol, held.without(after))),
        );
    }
}

/// Where a subscribe's symbols resume from.
struct Resume {
    /// The last sequence number the client saw, per symbol.
    after: HashMap<Symbol, u64>,
    /// The numbers are from another sequence space than this hub's.
    other_space: bool,
}

/// A snapshot, unless the client asked to resume the symbol: then what
/// follows its number, or a reset when the number is from another space.
fn start_of(resume: &Resume, symbol: Symbol) -> Start {
    match resume.after.get(&symbol) {
        None => Start::Snapshot,
        Some(_) if resume.other_space => Start::Reset,
        Some(&last) => Start::ResumeAfter(last),
    }
}

impl Session {
    /// Whether the client holds `selection` now (a symbol by name, or
    /// `"*"`): what a subscribe it was refused, or an unsubscribe, left out.
    pub fn holds(&self, selection: Selection) -> bool {
        match selection {
            Selection::Symbol(symbol) => self.named.contains_key(&symbol),
            Selection::All => !self.wildcard.is_empty(),
        }
    }

    /// The channels the client holds `selection` with now (by name, or
    /// `"*"`'s own; [`Channels::NONE`]: not held).
    pub fn channels(&self, selection: Selection) -> Channels {
        match selection {
            Selection::Symbol(symbol) => self.named.get(&symbol).copied().unwrap_or(Channels::NONE),
            Selection::All => self.wildcard,
        }
    }
}

impl Drop for Session {
    /// A closed connection leaves the table, whatever closed it.
    fn drop(&mut self) {
        self.table
            .remove(self.client.id(), self.named.drain().map(|(symbol, _)| symbol));
    }
}
