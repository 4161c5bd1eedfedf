// A scripted stand-in for a WebSocket, shared by the client's unit tests.
// Kept out of test/, where node --test would run it as a test file.

// The subset of the WebSocket interface the client uses, driven by the test.
export class ScriptedWebSocket {
  static last = null;
  // Resolvers of next(): the tests that wait for a client to open a connection.
  static #waiting = [];

  /** Resolves with the next socket a client opens. */
  static next() {
    return new Promise((resolve) => ScriptedWebSocket.#waiting.push(resolve));
  }

  constructor(url, protocol, options) {
    this.url = url;
    this.requested = protocol;
    this.options = options;
    this.protocol = '';
    this.readyState = 0;
    this.binaryType = 'blob';
    this.sent = [];
    this.listeners = new Map();
    ScriptedWebSocket.last = this;
    for (const resolve of ScriptedWebSocket.#waiting.splice(0)) resolve(this);
  }

  addEventListener(type, listener) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  send(text) {
    this.sent.push(text);
  }

  close(code = 1005, reason = '') {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.emit('close', { code, reason });
  }

  open(protocol = this.requested) {
    this.protocol = protocol;
    this.readyState = 1;
    this.emit('open', {});
  }

  receive(data) {
    this.emit('message', { data });
  }

  emit(type, event) {
    for (const listener of this.listeners.get(type) ?? []) listener(event);
  }
}
