import assert from "node:assert/strict";
import { test } from "node:test";
import {
  BACKOFF_MS,
  LiveSocket,
  PING_EVERY_MS,
  type Connection,
  type ServerMessage,
  type WebSocketLike,
} from "../src/socket.ts";
import { FakeClock } from "./fakes.ts";

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 3;

/** A WebSocket whose server side the test plays: `accept`, `receive`, `lose`. */
class FakeWebSocket implements WebSocketLike {
  readyState = CONNECTING;
  onopen: ((event: Event) => void) | null = null;
  onmessage: ((event: MessageEvent) => void) | null = null;
  onclose: ((event: CloseEvent) => void) | null = null;
  onerror: ((event: Event) => void) | null = null;
  readonly sent: unknown[] = [];
  closedByClient = false;

  constructor(readonly url: string) {}

  send(data: string): void {
    if (this.readyState !== OPEN) throw new Error("send on a socket that is not open");
    this.sent.push(JSON.parse(data));
  }

  close(): void {
    this.closedByClient = true;
    this.readyState = 2; // CLOSING; the close event comes later, if ever
  }

  accept(): void {
    this.readyState = OPEN;
    this.onopen?.({} as Event);
  }

  receive(data: unknown): void {
    this.onmessage?.({ data } as MessageEvent);
  }

  lose(): void {
    this.readyState = CLOSED;
    this.onerror?.({} as Event);
    this.onclose?.({} as CloseEvent);
  }
}

function setup(random = 0.5) {
  const clock = new FakeClock();
  const sockets: FakeWebSocket[] = [];
  const states: [Connection, number | null][] = [];
  const messages: ServerMessage[] = [];
  let refuse = false;
  const socket = new LiveSocket(
    "ws://cryptochart.test/ws",
    {
      message: (message) => messages.push(message),
      connection: (state, retryAt) => states.push([state, retryAt]),
    },
    {
      dial: (url) => {
        if (refuse) throw new SyntaxError("blocked");
        const ws = new FakeWebSocket(url);
        sockets.push(ws);
        return ws;
      },
      clock,
      random: () => random,
    },
  );
  const current = (): FakeWebSocket => sockets.at(-1)!;
  const refuseDialling = (on: boolean) => (refuse = on);
  return { clock, sockets, states, messages, socket, current, refuseDialling };
}

const subscribeKline = (symbol: string, interval: string) => ({
  op: "subscribe",
  channel: "kline",
  symbols: [symbol],
  interval,
});

test("on open the subscriptions asked for while connecting are sent, then 'open'", () => {
  const { states, socket, current } = setup();
  socket.start();
  assert.deepEqual(states, [["connecting", null]]);
  assert.equal(current().url, "ws://cryptochart.test/ws");
  socket.followKlines("BTCUSDT", "1m");
  socket.followTickers(["BTCUSDT", "ETHUSDT"]);
  assert.deepEqual(current().sent, []);
  current().accept();
  assert.deepEqual(current().sent, [
    subscribeKline("BTCUSDT", "1m"),
    { op: "subscribe", channel: "ticker", symbols: ["BTCUSDT", "ETHUSDT"] },
  ]);
  assert.deepEqual(states.at(-1), ["open", null]);
});

test("switching views unsubscribes the previous kline channel; new tickers only are added", () => {
  const { socket, current } = setup();
  socket.start();
  current().accept();
  socket.followKlines("BTCUSDT", "1m");
  socket.followKlines("BTCUSDT", "1m");
  socket.followKlines("ETHUSDT", "5m");
  socket.followTickers(["BTCUSDT"]);
  socket.followTickers(["BTCUSDT", "ETHUSDT"]);
  assert.deepEqual(current().sent, [
    subscribeKline("BTCUSDT", "1m"),
    { op: "unsubscribe", channel: "kline", symbols: ["BTCUSDT"], interval: "1m" },
    subscribeKline("ETHUSDT", "5m"),
    { op: "subscribe", channel: "ticker", symbols: ["BTCUSDT"] },
    { op: "subscribe", channel: "ticker", symbols: ["ETHUSDT"] },
  ]);
});

test("a lost connection is redialled with growing backoff and resubscribed", () => {
  const { clock, sockets, states, socket, current } = setup();
  socket.start();
  current().accept();
  socket.followKlines("BTCUSDT", "1m");
  socket.followTickers(["BTCUSDT", "ETHUSDT"]);
  socket.followKlines("ETHUSDT", "1s");

  current().lose();
  assert.deepEqual(states.at(-1), ["closed", clock.now() + BACKOFF_MS[0]!]);
  // Refused again and again: each wait longer than the last, up to 15 s.
  const waits: number[] = [];
  for (let i = 0; i < 7; i++) {
    const [, retryAt] = states.at(-1)!;
    waits.push(retryAt! - clock.now());
    clock.advance(retryAt! - clock.now());
    assert.deepEqual(states.at(-1), ["connecting", null]);
    current().lose();
  }
  assert.deepEqual(waits, [500, 1_000, 2_000, 4_000, 8_000, 15_000, 15_000]);
  assert.equal(sockets.length, 8);

  const [, retryAt] = states.at(-1)!;
  clock.advance(retryAt! - clock.now());
  current().accept();
  assert.deepEqual(current().sent, [
    subscribeKline("ETHUSDT", "1s"),
    { op: "subscribe", channel: "ticker", symbols: ["BTCUSDT", "ETHUSDT"] },
  ]);
  // Open again: the next loss starts from the shortest wait.
  current().lose();
  assert.deepEqual(states.at(-1), ["closed", clock.now() + 500]);
});

test("the retry is jittered by ±20 %", () => {
  const low = setup(0);
  low.socket.start();
  low.current().lose();
  assert.equal(low.states.at(-1)![1], low.clock.now() + 400);
  const high = setup(0.999);
  high.socket.start();
  high.current().lose();
  assert.equal(high.states.at(-1)![1], high.clock.now() + 600);
});

test("a socket that cannot even be created is retried", () => {
  const { clock, sockets, states, socket, refuseDialling } = setup();
  refuseDialling(true);
  socket.start();
  assert.deepEqual(states, [
    ["connecting", null],
    ["closed", clock.now() + 500],
  ]);
  refuseDialling(false);
  clock.advance(500);
  assert.equal(sockets.length, 1);
});

test("pings every 15 s; 30 s without a frame drops the link and redials", () => {
  const { clock, sockets, states, socket, current } = setup();
  socket.start();
  current().accept();
  clock.advance(PING_EVERY_MS);
  assert.deepEqual(current().sent, [{ op: "ping" }]);
  current().receive(JSON.stringify({ type: "pong" }));
  clock.advance(PING_EVERY_MS);
  assert.equal(current().sent.length, 2);

  // Silent from the pong on: still there at 30 s of silence, dropped by the check after it.
  clock.advance(PING_EVERY_MS);
  assert.equal(sockets.length, 1);
  assert.equal(current().sent.length, 3);
  assert.equal(states.at(-1)?.[0], "open");
  clock.advance(PING_EVERY_MS);
  const dead = current();
  assert.ok(dead.closedByClient);
  assert.equal(states.at(-1)?.[0], "closed");
  // Its late close event changes nothing; the redial goes ahead.
  dead.lose();
  assert.equal(states.filter(([s]) => s === "closed").length, 1);
  clock.advance(500);
  assert.equal(sockets.length, 2);
  assert.equal(states.at(-1)?.[0], "connecting");
  // The old heartbeat is stopped: no ping goes to the new socket before it opens.
  clock.advance(PING_EVERY_MS * 2);
  assert.deepEqual(current().sent, []);
});

test("frames are passed on parsed; anything that is not a typed JSON object is ignored", () => {
  const { messages, socket, current } = setup();
  socket.start();
  current().accept();
  current().receive(JSON.stringify({ type: "status", source: "sim" }));
  current().receive("not json");
  current().receive(JSON.stringify({ kind: "kline" }));
  current().receive(JSON.stringify(42));
  current().receive(new ArrayBuffer(4));
  assert.deepEqual(messages, [{ type: "status", source: "sim" }]);
});
