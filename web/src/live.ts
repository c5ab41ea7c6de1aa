// The live stream (GET /api/v1/ws, docs/live.md): one socket per signed-in
// app, reconnected with backoff, and on every reconnect a `resume` from the
// last event id seen, so that a view misses no step after a lost connection.
// Views subscribe by event type; each event is delivered once, in id order.
import { refreshSession, session, api } from "./api";
import { getMe } from "./gen/sdk.gen";
import { setUser } from "./api";
import { signal } from "./state";

export interface LiveEvent<D = unknown> {
  id: number;
  type: string;
  call_id?: string | null;
  at: string;
  data: D;
}

type Listener = (event: LiveEvent<any>) => void;

const CLOSE_NOT_AUTHENTICATED = 4401;
const CLOSE_SESSION_ENDED = 4001;
const CLOSE_ACCESS_CHANGED = 4003;
const SILENCE_LIMIT_MS = 60_000; // heartbeats come every 25 s

export type LiveStatus = "offline" | "connecting" | "live";

class LiveConnection {
  readonly status = signal<LiveStatus>("offline");
  private socket: WebSocket | null = null;
  private lastId = 0;
  private listeners = new Map<string, Set<Listener>>();
  private reconnectListeners = new Set<() => void>();
  private attempt = 0;
  private wanted = false;
  private timer: number | undefined;
  private watchdog: number | undefined;
  private lastHeard = 0;
  private everOpened = false;

  /** The last event id delivered (the point a resume starts from). */
  get after(): number {
    return this.lastId;
  }

  start(): void {
    if (this.wanted) return;
    this.wanted = true;
    this.connect();
    this.watchdog = window.setInterval(() => this.checkSilence(), 10_000);
    window.addEventListener("online", this.onOnline);
  }

  stop(): void {
    this.wanted = false;
    window.clearTimeout(this.timer);
    window.clearInterval(this.watchdog);
    window.removeEventListener("online", this.onOnline);
    this.socket?.close(1000, "bye");
    this.socket = null;
    this.lastId = 0;
    this.everOpened = false;
    this.status.set("offline");
  }

  /** Listen to one event type ("*" for all); returns the unsubscribe. */
  on(type: string, listener: Listener): () => void {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(listener);
    return () => set!.delete(listener);
  }

  /** Called after a reconnect's resume was sent (views may re-read what is not replayed). */
  onReconnect(listener: () => void): () => void {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  /** Drop the socket now (a test's cut, or a network change); it reconnects and resumes. */
  drop(): void {
    this.socket?.close(4000, "dropped by the client");
  }

  private onOnline = () => {
    if (this.status.get() !== "live") this.reconnectSoon(0);
  };

  private connect(): void {
    const current = session.get();
    if (!this.wanted || !current) return;
    this.status.set("connecting");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${location.host}/api/v1/ws?token=${encodeURIComponent(current.access)}`;
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.onopen = () => {
      this.lastHeard = Date.now();
      this.attempt = 0;
      // A resume from the last id replays what this app missed; the first
      // connection has nothing to replay (views read their state by REST).
      if (this.everOpened && this.lastId > 0) {
        socket.send(JSON.stringify({ type: "resume", after: this.lastId }));
      } else {
        socket.send(JSON.stringify({ type: "ping" }));
      }
      const reconnected = this.everOpened;
      this.everOpened = true;
      this.status.set("live");
      if (reconnected) for (const listener of [...this.reconnectListeners]) listener();
    };
    socket.onmessage = (message) => {
      this.lastHeard = Date.now();
      let event: LiveEvent;
      try {
        event = JSON.parse(String(message.data)) as LiveEvent;
      } catch {
        return;
      }
      if (typeof event.id === "number") {
        if (event.id <= this.lastId) return; // already delivered (a resume overlaps)
        this.lastId = event.id;
      }
      for (const key of [event.type, "*"]) {
        for (const listener of [...(this.listeners.get(key) ?? [])]) listener(event);
      }
    };
    socket.onclose = (closed) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (!this.wanted) return;
      this.status.set("connecting");
      if (closed.code === CLOSE_NOT_AUTHENTICATED || closed.code === CLOSE_SESSION_ENDED) {
        void refreshSession().then((ok) => (ok ? this.reconnectSoon(0) : this.stop()));
        return;
      }
      if (closed.code === CLOSE_ACCESS_CHANGED) {
        void getMe({ client: api }).then((answer) => {
          if (answer.data) setUser(answer.data);
          this.reconnectSoon(0);
        });
        return;
      }
      this.reconnectSoon();
    };
  }

  private reconnectSoon(delay?: number): void {
    window.clearTimeout(this.timer);
    const backoff = delay ?? Math.min(10_000, 500 * 2 ** this.attempt++) * (0.5 + Math.random() / 2);
    this.timer = window.setTimeout(() => {
      if (this.wanted && !this.socket) this.connect();
    }, backoff);
  }

  private checkSilence(): void {
    if (this.socket && this.status.get() === "live" && Date.now() - this.lastHeard > SILENCE_LIMIT_MS) {
      this.socket.close(4000, "silent");
    }
  }
}

export const live = new LiveConnection();

// One connection while someone is signed in.
session.subscribe((current) => {
  if (current) live.start();
  else live.stop();
});
if (session.get()) live.start();

// Tests cut the connection through this (tests/web); harmless otherwise.
(window as unknown as { hulianLive: LiveConnection }).hulianLive = live;
