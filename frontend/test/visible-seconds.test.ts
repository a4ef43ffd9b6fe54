import assert from "node:assert/strict";
import { test } from "node:test";
import type { RawKline } from "../src/api.ts";
import { BarStore, barFromKline } from "../src/bars.ts";
import type { Completeness } from "../src/completeness.ts";
import { LiveBars } from "../src/live.ts";
import { VisibleSeconds } from "../src/visible-seconds.ts";
import { FakeChart, kline, settle } from "./fakes.ts";

const MINUTE = 60_000;
const T = 1_709_251_200_000; // a minute boundary

/** A closed minute from REST with `seconds` 1s klines behind it (its newest the minute's last). */
function counted(openMs: number, seconds: number, close = "100.00"): RawKline {
  const k = kline(openMs, close);
  k[12] = seconds;
  return k;
}

/** The live frame of a minute: the same row without the count (and without "ignore"). */
const frame = (k: RawKline, close = k[4]): RawKline => {
  const f = k.slice(0, 11) as RawKline;
  f[4] = close;
  return f;
};

function setup() {
  const store = new BarStore();
  const chart = new FakeChart();
  const shown: (Completeness | null)[] = [];
  const live = new LiveBars(store, chart, { drawn: () => {}, hole: () => {}, dropped: () => {} });
  const seconds = new VisibleSeconds({
    store,
    chart,
    interval: () => "1m",
    now: () => T + 10 * MINUTE,
    show: (figure) => shown.push(figure),
  });
  // Three closed minutes from REST, the middle one missing 19 seconds; all in view.
  const rest = [counted(T, 60), counted(T + MINUTE, 41), counted(T + 2 * MINUTE, 60)];
  chart.view = { from: T / 1000, to: (T + 2 * MINUTE) / 1000 };
  return { store, chart, shown, live, seconds, rest };
}

test("the figure shown follows a live bar replacing a counted REST bar", async () => {
  const { store, shown, live, seconds, rest } = setup();
  store.reset(rest.map(barFromKline));
  live.release();
  await settle();
  assert.deepEqual(shown.at(-1), { stored: 161, expected: 180, uncounted: 0 });

  // The newest minute's frame with a later close: its count is unknown now, and left out.
  live.apply(frame(rest[2]!, "100.50"));
  await settle();
  assert.deepEqual(seconds.current(), { stored: 101, expected: 120, uncounted: 1 });
  assert.deepEqual(shown.at(-1), seconds.current());
});

test("a frame repeating the counted candle keeps its count", async () => {
  const { store, shown, live, seconds, rest } = setup();
  store.reset(rest.map(barFromKline));
  live.release();
  const newest = frame(rest[2]!);
  newest[5] = "2.5"; // the same volume written with another scale
  live.apply(newest);
  await settle();
  assert.equal(store.last?.seconds, 60);
  assert.deepEqual(shown.at(-1), { stored: 161, expected: 180, uncounted: 0 });
  assert.deepEqual(shown.at(-1), seconds.current());
});

test("every change of the bars is shown again, a burst of them once", async () => {
  const { store, chart, shown, live, seconds, rest } = setup();
  store.reset(rest.slice(1).map(barFromKline));
  await settle();
  assert.deepEqual(shown, [{ stored: 101, expected: 120, uncounted: 0 }]);

  store.prepend([barFromKline(rest[0]!)]); // older history loaded
  await settle();
  assert.deepEqual(shown.at(-1), { stored: 161, expected: 180, uncounted: 0 });

  const holed = [counted(T, 60), counted(T + 2 * MINUTE, 60)];
  store.reset(holed.map(barFromKline));
  await settle();
  assert.deepEqual(shown.at(-1), { stored: 120, expected: 180, uncounted: 0 }, "a missing minute");
  store.merge([barFromKline(counted(T + MINUTE, 58))]); // the hole filled
  await settle();
  assert.deepEqual(shown.at(-1), { stored: 178, expected: 180, uncounted: 0 });

  store.dropOldest(1);
  await settle();
  assert.deepEqual(shown.at(-1), { stored: 118, expected: 120, uncounted: 0 });

  // Many frames at once (held during a load, say): counted once, after the last.
  const before = shown.length;
  live.hold();
  for (const close of ["100.10", "100.20", "100.30"]) live.apply(frame(rest[2]!, close));
  live.release();
  await settle();
  assert.equal(shown.length, before + 1);
  assert.deepEqual(shown.at(-1), { stored: 58, expected: 60, uncounted: 1 });

  // Scrolled: the page says so, and the range in view is counted.
  chart.view = { from: (T + MINUTE) / 1000, to: (T + MINUTE) / 1000 };
  seconds.changed();
  await settle();
  assert.deepEqual(shown.at(-1), { stored: 58, expected: 60, uncounted: 0 });
  chart.view = null;
  seconds.changed();
  await settle();
  assert.equal(shown.at(-1), null);
});
