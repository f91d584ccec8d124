// The inbox WebSocket: reconnects with backoff and resumes from the last event it applied, so no
// event is lost across a disconnect; an event seen twice (resume overlap) is dropped here.
import { EVENTS } from "./events.js";

const MAX_BACKOFF_MS = 30000;
const SEEN_LIMIT = 5000;
// The consumer's close codes for a user no longer signed in (realtime/consumers.py).
const SIGNED_OUT_CODES = [4401, 4403];

const CONNECTION_LABELS = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…" };

// An onStateChange that keeps the page's connection badge (#connection-state) saying the socket's state.
export function showsConnectionIn(badge) {
  return (state) => {
    badge.dataset.state = state;
    badge.textContent = CONNECTION_LABELS[state];
  };
}

export class InboxSocket {
  constructor({ lastEventId, onEvent, onStateChange }) {
    this.lastEventId = lastEventId || 0;
    this.onEvent = onEvent;
    this.onStateChange = onStateChange;
    this.seen = new Set();
    this.attempts = 0;
    this.ws = null;
  }

  connect() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${window.location.host}/ws/inbox/`);
    this.ws = ws;
    this.onStateChange(this.attempts ? "reconnecting" : "connecting");
    ws.addEventListener("open", () => {
      opened = true;
      this.attempts = 0;
      this.onStateChange("live");
      ws.send(JSON.stringify({ action: "resume", after: this.lastEventId }));
    });
    ws.addEventListener("message", (message) => this.receive(JSON.parse(message.data)));
    let opened = false;
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      // Closed by the server once open: signed out (a new password, deactivated). The page shows the login.
      if (opened && SIGNED_OUT_CODES.includes(event.code)) {
        window.location.reload();
        return;
      }
      this.onStateChange("reconnecting");
      this.attempts += 1;
      const backoff = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(this.attempts, 6));
      setTimeout(() => this.connect(), backoff / 2 + Math.random() * (backoff / 2));
    });
  }

  receive(event) {
    if (event.type === EVENTS.RELOAD) {
      window.location.reload();
      return;
    }
    if (typeof event.id === "number") {
      if (this.seen.has(event.id)) return;
      this.seen.add(event.id);
      if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.values().next().value);
      this.lastEventId = Math.max(this.lastEventId, event.id);
    }
    this.onEvent(event);
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }
}
