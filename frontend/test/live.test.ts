import assert from "node:assert/strict";
import { test } from "node:test";
import { BarStore, barFromKline } from "../src/bars.ts";
import { BAR_CAP, DROP_BATCH, LiveBars, type BarLimits } from "../src/live.ts";
import { FakeChart, kline, series, times } from "./fakes.ts";

const T = 1_700_000_040_000;
const MINUTE = 60_000;

function setup(stored = series(T - 9 * MINUTE, 10), limits?: BarLimits) {
  const store = new BarStore();
  store.reset(stored.map(barFromKline));
  const chart = new FakeChart();
  chart.bars = [...store.bars];
  const drawn: string[] = [];
  const holes: [number, number][] = [];
  const dropped: number[] = [];
  const live = new LiveBars(
    store,
    chart,
    {
      drawn: (bar, result) => drawn.push(`${bar.time} ${result}`),
      hole: (after, before) => holes.push([after, before]),
      dropped: (count) => dropped.push(count),
    },
    limits,
  );
  return { store, chart, drawn, holes, dropped, live };
}

test("frames held back during a load apply in order on release, later ones at once", () => {
  const { store, chart, drawn, live } = setup();
  live.hold();
  live.apply(kline(T, "101.00"));
  live.apply(kline(T + MINUTE, "102.00"));
  assert.equal(store.size, 10);
  assert.equal(chart.updates, 0);
  live.release();
  assert.deepEqual(drawn, [`${T / 1000} replaced`, `${(T + MINUTE) / 1000} appended`]);
  live.apply(kline(T + MINUTE, "102.50"));
  assert.equal(store.last?.raw.close, "102.50");
  assert.equal(store.size, 11);
  assert.deepEqual(times(chart.bars), times(store.bars));
  assert.equal(chart.bars.at(-1)?.raw.close, "102.50");
});

test("a frame older than the newest bar is dropped", () => {
  const { store, chart, drawn, live } = setup();
  live.release();
  live.apply(kline(T - 3 * MINUTE, "1.00"));
  assert.equal(store.at((T - 3 * MINUTE) / 1000)?.raw.close, "100.00");
  assert.equal(chart.updates, 0);
  assert.deepEqual(drawn, []);
});

test("a bar more than one interval after the newest reports the hole", () => {
  const { holes, live } = setup();
  live.release();
  live.apply(kline(T + MINUTE));
  assert.deepEqual(holes, []);
  live.apply(kline(T + 3 * MINUTE));
  assert.deepEqual(holes, [[(T + MINUTE) / 1000, (T + 3 * MINUTE) / 1000]]);

  const fives = setup(series(T - 4 * 5 * MINUTE, 5, 5 * MINUTE));
  fives.live.interval = "5m";
  fives.live.release();
  fives.live.apply(kline(T + 5 * MINUTE, "100.00", 5 * MINUTE));
  assert.deepEqual(fives.holes, []);
});

test("the first bar of an empty view sets the price precision", () => {
  const { chart, live } = setup([]);
  live.release();
  live.apply(kline(T, "0.00012345"));
  assert.equal(chart.precision, 8);
  live.apply(kline(T + MINUTE, "0.1"));
  assert.equal(chart.precision, 8, "only the first bar sets it");
});

test("discarding forgets the held frames and applies the next ones at once", () => {
  const { store, live } = setup([]);
  live.hold();
  live.apply(kline(T));
  assert.equal(live.holding, true);
  live.discard();
  assert.equal(live.holding, false);
  live.release();
  assert.equal(store.size, 0);
  live.apply(kline(T + MINUTE));
  assert.equal(store.size, 1);
});

test("REST klines released with the held frames go first: the live ones are newer", () => {
  const { store, holes, live } = setup();
  live.hold();
  live.apply(kline(T + 4 * MINUTE, "104.00"));
  live.release([kline(T), kline(T + MINUTE), kline(T + 2 * MINUTE), kline(T + 3 * MINUTE)]);
  assert.equal(store.size, 14);
  assert.equal(store.last?.raw.close, "104.00");
  assert.deepEqual(holes, []);
});

test("past the cap and a batch, the oldest bars go at once, back to the cap", () => {
  const { store, chart, dropped, live } = setup(series(T - 9 * MINUTE, 10), { cap: 12, batch: 3 });
  live.release();
  for (let i = 1; i <= 5; i++) live.apply(kline(T + i * MINUTE));
  assert.equal(store.size, 15, "within the cap and its batch");
  assert.equal(chart.dropOlders, 0);
  live.apply(kline(T + 6 * MINUTE));
  assert.equal(store.size, 12);
  assert.deepEqual(dropped, [4]);
  assert.equal(chart.dropOlders, 1);
  assert.deepEqual(times(chart.bars), times(store.bars));
  assert.equal(store.first?.time, (T - 5 * MINUTE) / 1000);
  assert.equal(store.at((T - 9 * MINUTE) / 1000), undefined, "dropped from the index too");
  // Live updates of the newest bar never drop.
  live.apply(kline(T + 6 * MINUTE, "101.00"));
  assert.equal(store.size, 12);
});

test("bars in view, and a margin before them, are never dropped", () => {
  const { store, chart, dropped, live } = setup(series(T - 99 * MINUTE, 100), {
    cap: 10,
    batch: 5,
  });
  live.release();
  // Scrolled back: the view starts at the 61st bar, so 60 - 40 = 20 may go.
  chart.view = { from: (T - 39 * MINUTE) / 1000, to: (T - 20 * MINUTE) / 1000 };
  live.apply(kline(T + MINUTE));
  assert.deepEqual(dropped, [20]);
  assert.equal(store.first?.time, (T - 79 * MINUTE) / 1000);
  assert.equal(store.countBefore(chart.view.from), 40);
  // Nothing more may go while the view stays there.
  live.apply(kline(T + 2 * MINUTE));
  assert.deepEqual(dropped, [20]);
});

test("a 1s view left open for a day keeps at most the cap and a batch of bars", () => {
  const store = new BarStore();
  const chart = new FakeChart();
  let dropped = 0;
  const live = new LiveBars(store, chart, {
    drawn: () => undefined,
    hole: () => undefined,
    dropped: (count) => (dropped += count),
  });
  live.interval = "1s";
  live.release();
  let most = 0;
  for (let s = 0; s < 86_400; s++) {
    live.apply(kline(T + s * 1000, "100.00", 1000));
    most = Math.max(most, store.size);
  }
  assert.ok(most <= BAR_CAP + DROP_BATCH, `${most} bars at most`);
  assert.equal(store.size + dropped, 86_400);
  assert.equal(chart.bars.length, store.size);
  assert.equal(store.last?.time, (T + 86_399_000) / 1000);
});
