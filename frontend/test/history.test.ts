import assert from "node:assert/strict";
import { test } from "node:test";
import { ApiRejected, ApiUnavailable, KLINES_MAX_LIMIT, type RawKline } from "../src/api.ts";
import { BarStore } from "../src/bars.ts";
import type { ChartState, ChartStateDetail } from "../src/chart-state.ts";
import {
  HOLE_FILL_DELAY_MS,
  HOLE_FILL_SPACING_MS,
  HOLE_FILL_TRIES,
  History,
} from "../src/history.ts";
import { LiveBars, type BarLimits } from "../src/live.ts";
import {
  FakeChart,
  FakeClock,
  FakeKlinesApi,
  contiguous,
  kline,
  series,
  settle,
  times,
} from "./fakes.ts";

const MINUTE = 60_000;
/** Open time of the newest stored minute in the fake API. */
const NOW = 1_700_000_040_000 - (1_700_000_040_000 % MINUTE);

function setup(
  klines: RawKline[] = series(NOW - 2_499 * MINUTE, 2_500),
  symbols: string[] = [],
  limits?: BarLimits,
  /** Tick sizes declared per symbol; undeclared ones are guessed from the prices. */
  ticks = new Map<string, string>(),
) {
  const clock = new FakeClock(NOW + 30_000);
  const api = new FakeKlinesApi(klines);
  const store = new BarStore();
  const chart = new FakeChart();
  const states: { state: ChartState; detail: ChartStateDetail }[] = [];
  const follows: string[] = [];
  const log = { cleared: 0, loaded: 0, counted: 0 };
  // The page's live feed: its frames go through the LiveBars that History holds and releases.
  const live = new LiveBars(
    store,
    chart,
    {
      hole: (after, before) => history.fillHole(after, before),
      drawn: () => history.liveBarShown(),
      dropped: () => history.olderDropped(),
    },
    limits,
  );
  const history: History = new History({
    fetchKlines: api.fetch,
    clock,
    store,
    live,
    chart,
    symbols: () => symbols,
    tickSize: (symbol) => ticks.get(symbol) ?? null,
    events: {
      state: (state, detail) => states.push({ state, detail }),
      follow: (symbol, interval) => follows.push(`${symbol} ${interval}`),
      cleared: () => log.cleared++,
      loaded: () => log.loaded++,
      counted: () => log.counted++,
    },
  });
  return { clock, api, store, chart, states, follows, log, history, live, ticks };
}

const lastState = (states: { state: ChartState }[]): ChartState | undefined => states.at(-1)?.state;

test("a view opens with its newest page; frames that arrive meanwhile apply after it, in order", async () => {
  const { api, store, chart, states, follows, log, history, live } = setup();
  api.pause();
  const done = history.open("BTCUSDT", "1m");
  assert.equal(history.state, "loading");
  assert.deepEqual(follows, ["BTCUSDT 1m"]);
  assert.equal(log.cleared, 1);
  // While the page is on its way, the current minute moves and the next one begins.
  live.apply(kline(NOW, "101.00"));
  live.apply(kline(NOW + MINUTE, "102.00"));
  live.apply(kline(NOW - 5 * MINUTE, "1.00")); // stale by the time it applies
  assert.equal(store.size, 0);
  await api.resume();
  await done;

  assert.deepEqual(api.calls, [
    { symbol: "BTCUSDT", interval: "1m", query: { limit: KLINES_MAX_LIMIT } },
  ]);
  assert.equal(store.size, KLINES_MAX_LIMIT + 1);
  assert.ok(contiguous(store.bars, 60));
  assert.equal(store.at(NOW / 1000)?.raw.close, "101.00");
  assert.equal(store.last?.raw.close, "102.00");
  assert.equal(store.at((NOW - 5 * MINUTE) / 1000)?.raw.close, "100.00");
  assert.deepEqual(times(chart.bars), times(store.bars));
  assert.equal(chart.shows, 1);
  assert.equal(chart.precision, 2);
  assert.deepEqual(
    states.map((s) => s.state),
    ["loading", "ready"],
  );
  assert.deepEqual(states[1]?.detail, { symbol: "BTCUSDT", interval: "1m" });
  assert.equal(log.loaded, 1);
  assert.equal(history.complete, false);
});

test("a short first page is all the history; a view with none is empty until a live bar", async () => {
  const short = setup(series(NOW - 9 * MINUTE, 10));
  await short.history.open("BTCUSDT", "1m");
  assert.equal(short.store.size, 10);
  assert.equal(short.history.complete, true);
  await short.history.loadOlder();
  assert.equal(short.api.calls.length, 1, "no older page is asked for");

  const none = setup([]);
  await none.history.open("NEWUSDT", "1s");
  assert.equal(none.history.state, "empty");
  assert.equal(none.history.complete, false);
  none.live.apply(kline(NOW, "3.14159", 1_000));
  assert.equal(none.history.state, "ready");
  assert.equal(none.chart.precision, 5);
  assert.equal(none.store.size, 1);
});

test("the API down: api-down with a countdown, retried 1, 2, 4 s later until it answers", async () => {
  const { clock, api, store, states, history } = setup();
  api.error = new ApiUnavailable("connection refused");
  await history.open("BTCUSDT", "1m");
  assert.equal(history.state, "api-down");
  assert.equal(states.at(-1)?.detail.retryAt, clock.now() + 1_000);

  clock.advance(999);
  await settle();
  assert.equal(api.calls.length, 1);
  clock.advance(1);
  await settle();
  assert.equal(api.calls.length, 2);
  assert.equal(states.at(-1)?.detail.retryAt, clock.now() + 2_000);
  clock.advance(2_000);
  await settle();
  assert.equal(api.calls.length, 3);
  assert.equal(states.at(-1)?.detail.retryAt, clock.now() + 4_000);

  api.error = undefined;
  clock.advance(4_000);
  await settle();
  assert.equal(history.state, "ready");
  assert.equal(store.size, KLINES_MAX_LIMIT);
  // Answered: the next failure starts the backoff over.
  api.error = new ApiUnavailable("restart");
  await history.reload();
  assert.equal(states.at(-1)?.detail.retryAt, clock.now() + 1_000);
});

test("a reconnect while the API was down loads at once", async () => {
  const { clock, api, history } = setup();
  api.error = new ApiUnavailable("down");
  await history.open("BTCUSDT", "1m");
  api.error = undefined;
  history.reconnected();
  await settle();
  assert.equal(history.state, "ready");
  assert.equal(api.calls.length, 2);
  clock.advance(60_000);
  await settle();
  assert.equal(api.calls.length, 2, "the pending retry was cancelled");
});

test("an unknown symbol is explained with another to open, and not retried", async () => {
  const { clock, api, states, history } = setup([], ["ETHUSDT", "NOPEUSDT"]);
  api.error = new ApiRejected(400, "Unknown symbol: NOPEUSDT");
  await history.open("NOPEUSDT", "1m");
  assert.equal(lastState(states), "unknown-symbol");
  assert.deepEqual(states.at(-1)?.detail, {
    symbol: "NOPEUSDT",
    interval: "1m",
    detail: "Unknown symbol: NOPEUSDT",
    suggestion: "ETHUSDT",
  });
  clock.advance(60_000);
  await settle();
  assert.equal(api.calls.length, 1);

  api.error = new ApiRejected(400, "interval is not supported", { parameter: "interval" });
  await history.open("ETHUSDT", "1m");
  assert.equal(lastState(states), "rejected");
});

test("a switch drops the answer for the view no longer shown", async () => {
  const { api, store, follows, history } = setup();
  api.pause();
  const first = history.open("BTCUSDT", "1m");
  api.klines = series(NOW - 4 * MINUTE, 5);
  const second = history.open("ETHUSDT", "5m");
  await api.resume();
  await Promise.all([first, second]);
  assert.deepEqual(follows, ["BTCUSDT 1m", "ETHUSDT 5m"]);
  // Both answers computed when asked: the first (1000 bars) was dropped, the second shown.
  assert.equal(store.size, 5);
  assert.equal(history.state, "ready");
});

test("scrolling back pages older history: endTime just before the first bar, no seam", async () => {
  const { api, store, chart, log, history } = setup();
  await history.open("BTCUSDT", "1m");
  const first = store.first!.time;

  api.pause();
  const older = history.loadOlder();
  assert.equal(history.loadingOlder, true);
  void history.loadOlder(); // scrolling on while it loads asks nothing more
  await api.resume();
  await older;
  assert.equal(history.loadingOlder, false);
  assert.deepEqual(api.calls[1]?.query, { endTime: first * 1000 - 1, limit: KLINES_MAX_LIMIT });
  assert.equal(api.calls.length, 2);
  assert.equal(store.size, 2 * KLINES_MAX_LIMIT);
  assert.ok(contiguous(store.bars, 60), "no duplicate or missing bar where the pages meet");
  assert.equal(store.at(first - 60)?.time, first - 60);
  assert.deepEqual(times(chart.bars), times(store.bars));
  assert.equal(chart.setAlls, 1);
  assert.ok(log.counted >= 2, "the status bar showed 'loading older' and then the count");
  assert.equal(history.complete, false);

  // The last page is short: all history, and no further requests.
  await history.loadOlder();
  assert.equal(store.size, 2_500);
  assert.ok(contiguous(store.bars, 60));
  assert.equal(store.first?.time, (NOW - 2_499 * MINUTE) / 1000);
  assert.equal(history.complete, true);
  await history.loadOlder();
  assert.equal(api.calls.length, 3);
});

test("zoomed far out, older pages follow one another while the view stays near the oldest", async () => {
  const { clock, api, chart, history } = setup();
  await history.open("BTCUSDT", "1m");
  chart.nearOldest = true;
  await history.loadOlder();
  assert.equal(api.calls.length, 2);
  clock.runFrames();
  await settle();
  assert.equal(api.calls.length, 3);
  chart.nearOldest = false;
  clock.runFrames();
  await settle();
  assert.equal(api.calls.length, 3);
});

test("a failed older page is retried by scrolling only after 5 s", async () => {
  const { clock, api, store, history } = setup();
  await history.open("BTCUSDT", "1m");
  api.error = new ApiUnavailable("blip");
  await history.loadOlder();
  api.error = undefined;
  await history.loadOlder();
  assert.equal(api.calls.length, 2);
  clock.advance(5_000);
  await history.loadOlder();
  assert.equal(api.calls.length, 3);
  assert.equal(store.size, 2 * KLINES_MAX_LIMIT);
});

test("no older page while the newest is loading", async () => {
  const { api, history } = setup();
  api.pause();
  const opening = history.open("BTCUSDT", "1m");
  await history.loadOlder();
  await api.resume();
  await opening;
  assert.equal(api.calls.length, 1);
});

test("after a reconnect the bars missed are fetched once and merged with the live ones", async () => {
  const { clock, api, store, chart, history, live } = setup(series(NOW - 999 * MINUTE, 1_000));
  await history.open("BTCUSDT", "1m");
  // Live for a while: the current minute, then the next.
  live.apply(kline(NOW, "100.50"));
  live.apply(kline(NOW + MINUTE, "100.75"));
  const lastBeforeDisconnect = store.last!.time;

  // Disconnected for eight minutes; the API stored them all.
  api.klines = series(NOW - 999 * MINUTE, 1_010);
  clock.advance(8 * MINUTE);
  api.pause();
  history.reconnected();
  assert.ok(live.holding);
  // The resubscribed channel sends the current minute while the gap is on its way.
  const current = NOW + 10 * MINUTE;
  live.apply(kline(current, "104.00"));
  await api.resume();
  clock.advance(HOLE_FILL_DELAY_MS + 10_000);
  await settle();

  assert.deepEqual(
    api.calls.slice(1).map((c) => c.query),
    [{ startTime: lastBeforeDisconnect * 1000, limit: KLINES_MAX_LIMIT }],
    "one request for the gap, none for a hole afterwards",
  );
  assert.ok(!live.holding);
  assert.equal(store.last?.time, current / 1000);
  assert.equal(store.last?.raw.close, "104.00", "the live frame is newer than the REST bar");
  assert.ok(contiguous(store.bars, 60), "every missed minute is there, once");
  assert.equal(store.size, 1_010);
  assert.deepEqual(times(chart.bars), times(store.bars));
});

test("a gap longer than a page reloads the view", async () => {
  const { clock, api, store, history } = setup(series(NOW - 999 * MINUTE, 1_000));
  await history.open("BTCUSDT", "1m");
  api.klines = series(NOW - 999 * MINUTE, 2_500);
  clock.advance(1_500 * MINUTE);
  history.reconnected();
  await settle();
  await settle();
  assert.deepEqual(
    api.calls.map((c) => c.query),
    [
      { limit: KLINES_MAX_LIMIT },
      { startTime: NOW, limit: KLINES_MAX_LIMIT },
      { limit: KLINES_MAX_LIMIT },
    ],
  );
  assert.equal(store.last?.time, (NOW + 1_500 * MINUTE) / 1000);
  assert.ok(contiguous(store.bars, 60));
});

test("a live bar after a hole fetches the bars in between once, 1.5 s later", async () => {
  const stored = series(NOW - 999 * MINUTE, 1_000);
  const { clock, api, store, chart, log, history, live } = setup(stored);
  await history.open("BTCUSDT", "1m");
  // The REST side has three more minutes that the live side skipped.
  api.klines = series(NOW - 999 * MINUTE, 1_004);
  live.apply(kline(NOW + 4 * MINUTE, "105.00"));
  live.apply(kline(NOW + 4 * MINUTE, "105.50"));
  assert.equal(api.calls.length, 1);
  const counted = log.counted;
  clock.advance(HOLE_FILL_DELAY_MS);
  await settle();
  assert.deepEqual(api.calls[1]?.query, {
    startTime: NOW + MINUTE,
    endTime: NOW + 5 * MINUTE - 1, // the live bar after the hole too
    limit: KLINES_MAX_LIMIT,
  });
  assert.ok(contiguous(store.bars, 60));
  assert.equal(store.size, 1_004);
  assert.equal(store.last?.raw.close, "105.50");
  assert.deepEqual(times(chart.bars), times(store.bars));
  assert.equal(log.counted, counted + 1);

  // Holes within 5 s of the last fill wait for those 5 s, and are then fetched together.
  api.klines = series(NOW - 999 * MINUTE, 1_009);
  live.apply(kline(NOW + 6 * MINUTE));
  clock.advance(HOLE_FILL_DELAY_MS);
  await settle();
  assert.equal(api.calls.length, 2);
  live.apply(kline(NOW + 8 * MINUTE));
  clock.advance(5_000 - 2 * HOLE_FILL_DELAY_MS);
  await settle();
  assert.equal(api.calls.length, 2, "not before 5 s since the last fill");
  clock.advance(HOLE_FILL_DELAY_MS);
  await settle();
  assert.deepEqual(
    api.calls.slice(2).map((c) => c.query),
    [{ startTime: NOW + 5 * MINUTE, endTime: NOW + 9 * MINUTE - 1, limit: KLINES_MAX_LIMIT }],
  );
  assert.ok(contiguous(store.bars, 60), "both holes filled");
  assert.equal(store.last?.time, (NOW + 8 * MINUTE) / 1000);
});

test("a hole seen while a fill is on its way is fetched after it, not forgotten", async () => {
  const { clock, api, store, history, live } = setup(series(NOW - 999 * MINUTE, 1_000));
  await history.open("BTCUSDT", "1m");
  api.klines = series(NOW - 999 * MINUTE, 1_008);
  live.apply(kline(NOW + 3 * MINUTE));
  api.pause();
  clock.advance(HOLE_FILL_DELAY_MS);
  await settle();
  assert.equal(api.calls.length, 2);
  live.apply(kline(NOW + 7 * MINUTE)); // while the first fill is still on its way
  await api.resume();
  await settle();
  clock.advance(5_000);
  await settle();
  assert.deepEqual(
    api.calls.slice(1).map((c) => c.query),
    [
      { startTime: NOW + MINUTE, endTime: NOW + 4 * MINUTE - 1, limit: KLINES_MAX_LIMIT },
      { startTime: NOW + 4 * MINUTE, endTime: NOW + 8 * MINUTE - 1, limit: KLINES_MAX_LIMIT },
    ],
  );
  assert.ok(contiguous(store.bars, 60));
  assert.equal(store.size, 1_007, "every minute up to the live one, once");
});

test("a fill answered before the database caught up is asked again, a few times at most", async () => {
  const { clock, api, store, history, live } = setup(series(NOW - 999 * MINUTE, 1_000));
  await history.open("BTCUSDT", "1m");
  live.apply(kline(NOW + 4 * MINUTE)); // the database still ends at NOW
  clock.advance(HOLE_FILL_DELAY_MS);
  await settle();
  assert.equal(api.calls.length, 2);
  // Two minutes of the hole are stored by the next fill, the live bar after it not yet.
  api.klines = series(NOW - 999 * MINUTE, 1_002);
  clock.advance(HOLE_FILL_SPACING_MS);
  await settle();
  assert.equal(api.calls.length, 3);
  assert.equal(store.size, 1_003);
  api.klines = series(NOW - 999 * MINUTE, 1_005);
  clock.advance(HOLE_FILL_SPACING_MS);
  await settle();
  assert.equal(api.calls.length, 4);
  assert.ok(contiguous(store.bars, 60), "the hole filled once the database caught up");
  clock.advance(10 * HOLE_FILL_SPACING_MS);
  await settle();
  assert.equal(api.calls.length, 4, "an answer holding the live bar is final");

  // A database that never catches up is asked HOLE_FILL_TRIES times, then left alone.
  live.apply(kline(NOW + 7 * MINUTE));
  for (let i = 0; i < HOLE_FILL_TRIES + 3; i++) {
    clock.advance(HOLE_FILL_SPACING_MS);
    await settle();
  }
  assert.equal(api.calls.length, 4 + HOLE_FILL_TRIES);
});

test("a hole of the view before a switch is not fetched for the new one", async () => {
  const { clock, api, history, live } = setup(series(NOW - 999 * MINUTE, 1_000));
  await history.open("BTCUSDT", "1m");
  live.apply(kline(NOW + 3 * MINUTE));
  await history.open("ETHUSDT", "1m");
  const calls = api.calls.length;
  clock.advance(HOLE_FILL_DELAY_MS + 5_000);
  await settle();
  assert.equal(api.calls.length, calls);
});

test("bars dropped for the cap load again when scrolled back to", async () => {
  const { api, store, chart, history, live } = setup(series(NOW - 29 * MINUTE, 30), [], {
    cap: 25,
    batch: 5,
  });
  await history.open("BTCUSDT", "1m");
  assert.equal(history.complete, true);
  live.apply(kline(NOW + MINUTE));
  assert.equal(store.size, 25, "31 bars: back to the cap");
  const first = store.bars[0]!.time;
  assert.equal(history.complete, false, "older bars exist again");

  chart.nearOldest = true;
  await history.loadOlder();
  assert.deepEqual(api.calls.at(-1)?.query, {
    endTime: first * 1000 - 1,
    limit: KLINES_MAX_LIMIT,
  });
  assert.equal(store.size, 31);
  assert.ok(contiguous(store.bars, 60));
  assert.deepEqual(times(chart.bars), times(store.bars));
  assert.equal(history.complete, true);
});

test("a declared tick size sets the price scale; undeclared, the prices guess it", async () => {
  const { chart, history, ticks } = setup(
    series(NOW - 9 * MINUTE, 10),
    [],
    undefined,
    new Map([["BTCUSDT", "0.05"]]),
  );
  await history.open("BTCUSDT", "1m");
  assert.deepEqual(chart.format, { precision: 2, minMove: 0.05 });
  await history.open("ETHUSDT", "1m"); // none declared: the prices' 2 decimals
  assert.deepEqual(chart.format, { precision: 2, minMove: 0.01 });

  // The symbols are listed again with ETHUSDT's tick size declared: the shown chart follows.
  ticks.set("ETHUSDT", "0.001");
  history.sizesChanged();
  assert.deepEqual(chart.format, { precision: 3, minMove: 0.001 });
  const formats = chart.formats;
  history.sizesChanged(); // unchanged: not set again
  assert.equal(chart.formats, formats);
  // Another symbol's size is no concern of this view.
  ticks.set("BTCUSDT", "1");
  history.sizesChanged();
  assert.equal(chart.formats, formats);
});

test("a first live bar of an empty view takes the declared tick size over its prices", async () => {
  const none = setup([], [], undefined, new Map([["NEWUSDT", "10"]]));
  await none.history.open("NEWUSDT", "1s");
  none.live.apply(kline(NOW, "3.14159", 1_000));
  assert.deepEqual(none.chart.format, { precision: 0, minMove: 10 });

  // Declared while the view is still empty: the first bar reads it.
  const later = setup([]);
  await later.history.open("NEWUSDT", "1s");
  later.ticks.set("NEWUSDT", "0.0001");
  later.history.sizesChanged();
  assert.equal(later.chart.formats, 0, "no bar yet, nothing to set");
  later.live.apply(kline(NOW, "3.14159", 1_000));
  assert.deepEqual(later.chart.format, { precision: 4, minMove: 0.0001 });
});
