/**
 * The WebSocket half of the backend contract: one connection, resubscribed after every
 * reconnect.
 */
import type { RawKline } from "./api.ts";
import { browserClock, type Clock } from "./clock.ts";
import type { Interval } from "./intervals.ts";

export type Connection = "connecting" | "open" | "closed";

export interface KlineMessage {
  type: "kline";
  symbol: string;
  interval: string;
  k: RawKline;
  closed: boolean;
  eventTime: number;
  sentTime: number;
  /** The state sent on subscribing, not a new event: not a latency sample. */
  snapshot?: boolean;
}

export interface TickerMessage {
  type: "ticker";
  symbol: string;
  lastPrice: string;
  priceChangePercent?: string;
  eventTime: number;
  sentTime: number;
  /** The state sent on subscribing, not a new event: not a latency sample. */
  snapshot?: boolean;
}

export type ServerMessage =
  | KlineMessage
  | TickerMessage
  | { type: "status"; source: string }
  | { type: "error"; error: string; detail?: string }
  | { type: "pong" };

export interface SocketEvents {
  message(message: ServerMessage): void;
  /**
   * `retryAt` is when the next attempt starts, while closed; after "open" the subscriptions are
   * sent.
   */
  connection(state: Connection, retryAt: number | null): void;
}

/** The part of a `WebSocket` the live socket uses. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((event: Event) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
  onerror: ((event: Event) => void) | null;
  send(data: string): void;
  close(): void;
}

export interface SocketDeps {
  /** Dial the URL (`new WebSocket(url)` in the page); may throw. */
  dial(url: string): WebSocketLike;
  clock: Clock;
  /** In [0, 1), for the reconnect jitter. */
  random(): number;
}

const browserDeps: SocketDeps = {
  dial: (url) => new WebSocket(url),
  clock: browserClock,
  random: () => Math.random(),
};

// WebSocket.readyState values.
const OPEN = 1;
const CLOSED = 3;

export const BACKOFF_MS = [500, 1_000, 2_000, 4_000, 8_000, 15_000];
export const PING_EVERY_MS = 15_000;
// The kline channel sends every second; this long without a frame means the link is dead.
const SILENCE_LIMIT_MS = 30_000;

export class LiveSocket {
  private ws: WebSocketLike | null = null;
  private attempt = 0;
  private lastFrameAt = 0;
  private retryTimer: number | undefined;
  private heartbeatTimer: number | undefined;
  private kline: { symbol: string; interval: Interval } | null = null;
  private tickers: string[] = [];

  constructor(
    private readonly url: string,
    private readonly events: SocketEvents,
    private readonly deps: SocketDeps = browserDeps,
  ) {}

  start(): void {
    this.connect();
  }

  /** Follow one symbol's candles of one interval, replacing the previous subscription. */
  followKlines(symbol: string, interval: Interval): void {
    const previous = this.kline;
    if (previous?.symbol === symbol && previous.interval === interval) return;
    this.kline = { symbol, interval };
    if (previous) {
      this.send({
        op: "unsubscribe",
        channel: "kline",
        symbols: [previous.symbol],
        interval: previous.interval,
      });
    }
    this.send({ op: "subscribe", channel: "kline", symbols: [symbol], interval });
  }

  /** Follow the 24h tickers of these symbols (the sidebar's rows). */
  followTickers(symbols: readonly string[]): void {
    const added = symbols.filter((s) => !this.tickers.includes(s));
    this.tickers = [...symbols];
    if (added.length > 0) this.send({ op: "subscribe", channel: "ticker", symbols: added });
  }

  private connect(): void {
    this.events.connection("connecting", null);
    let ws: WebSocketLike;
    try {
      ws = this.deps.dial(this.url);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.lastFrameAt = this.deps.clock.now();
      this.resubscribe();
      this.startHeartbeat();
      this.events.connection("open", null);
    };
    ws.onmessage = (event: MessageEvent) => {
      this.lastFrameAt = this.deps.clock.now();
      const message = parse(event.data);
      if (message) this.events.message(message);
    };
    ws.onclose = () => {
      if (this.ws === ws) this.drop();
    };
    // An error is always followed by close, which does the retrying.
    ws.onerror = () => undefined;
  }

  /** Forget the current socket (a dead one may take minutes to report close) and retry. */
  private drop(): void {
    const ws = this.ws;
    this.ws = null;
    this.stopHeartbeat();
    if (ws && ws.readyState !== CLOSED) ws.close();
    this.scheduleRetry();
  }

  private resubscribe(): void {
    if (this.kline) {
      this.send({
        op: "subscribe",
        channel: "kline",
        symbols: [this.kline.symbol],
        interval: this.kline.interval,
      });
    }
    if (this.tickers.length > 0) {
      this.send({ op: "subscribe", channel: "ticker", symbols: this.tickers });
    }
  }

  private scheduleRetry(): void {
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)]!;
    this.attempt++;
    // Jitter so that many tabs do not reconnect in lockstep after a server restart.
    const delay = Math.round(base * (0.8 + this.deps.random() * 0.4));
    const retryAt = this.deps.clock.now() + delay;
    this.events.connection("closed", retryAt);
    this.deps.clock.clearTimeout(this.retryTimer);
    this.retryTimer = this.deps.clock.setTimeout(() => this.connect(), delay);
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    this.heartbeatTimer = this.deps.clock.setInterval(() => {
      if (this.deps.clock.now() - this.lastFrameAt > SILENCE_LIMIT_MS) {
        this.drop();
        return;
      }
      this.send({ op: "ping" });
    }, PING_EVERY_MS);
  }

  private stopHeartbeat(): void {
    this.deps.clock.clearInterval(this.heartbeatTimer);
  }

  private send(message: object): void {
    if (this.ws?.readyState === OPEN) this.ws.send(JSON.stringify(message));
  }
}

function parse(data: unknown): ServerMessage | null {
  if (typeof data !== "string") return null;
  try {
    const message = JSON.parse(data) as { type?: unknown };
    return typeof message === "object" && message !== null && typeof message.type === "string"
      ? (message as ServerMessage)
      : null;
  } catch {
    return null;
  }
}
