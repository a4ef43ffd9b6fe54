import assert from "node:assert/strict";
import { test } from "node:test";
import type { RawKline } from "../src/api.ts";
import { BarStore, barFromKline, type Bar } from "../src/bars.ts";
import { completenessOf, expectedSeconds, isIncomplete } from "../src/completeness.ts";
import { formatCompleteness } from "../src/format.ts";
import { kline } from "./fakes.ts";

const MINUTE = 60_000;
const T = 1_709_251_200_000; // a minute boundary

/** A minute bar opening at `openMs` with `seconds` 1s klines, its newest one at `lastSecondMs`. */
function minute(openMs: number, seconds: number | null, lastSecondMs = openMs + 59_000): Bar {
  const k: RawKline = kline(openMs);
  k[6] = lastSecondMs + 999;
  if (seconds !== null) k[12] = seconds;
  return barFromKline(k);
}

test("a REST kline's 13th element is its count of seconds; a live frame has none", () => {
  assert.equal(minute(T, 41).seconds, 41);
  assert.equal(minute(T, 41).closeTime, T + 59_999);
  const live = kline(T).slice(0, 11) as RawKline;
  assert.equal(barFromKline(live).seconds, null);
});

test("a closed candle should hold its whole interval", () => {
  const now = T + 5 * MINUTE;
  assert.equal(expectedSeconds(minute(T, 60), "1m", now), 60);
  assert.equal(isIncomplete(minute(T, 60), "1m", now), false);
  assert.equal(isIncomplete(minute(T, 41, T + 40_000), "1m", now), true);
  assert.equal(expectedSeconds(minute(T, 41, T + 40_000), "1m", now), 60);
});

test("the forming candle should hold only the seconds up to its newest one", () => {
  // 17 s into the minute, the newest stored second is the 15th (the database lags a little).
  const now = T + 17_000;
  const forming = minute(T, 15, T + 14_000);
  assert.equal(expectedSeconds(forming, "1m", now), 15);
  assert.equal(isIncomplete(forming, "1m", now), false);
  // A second missing in between is missing, forming or not.
  assert.equal(isIncomplete(minute(T, 14, T + 14_000), "1m", now), true);
  // Once the minute is over, it is judged whole.
  assert.equal(isIncomplete(forming, "1m", T + MINUTE), true);
});

test("unknown counts are not judged", () => {
  assert.equal(isIncomplete(minute(T, null), "1m", T + 5 * MINUTE), false);
});

test("completeness of a range: stored / expected, holes missing, live bars left out", () => {
  const now = T + 10 * MINUTE + 30_000;
  const bars = [
    minute(T, 60),
    minute(T + MINUTE, 41, T + MINUTE + 40_000),
    // two minutes missing
    minute(T + 4 * MINUTE, 60),
    minute(T + 5 * MINUTE, null),
    minute(T + 10 * MINUTE, 20, T + 10 * MINUTE + 19_000),
  ];
  assert.deepEqual(completenessOf(bars, "1m", now), {
    stored: 60 + 41 + 60 + 20,
    expected: 60 + 60 + 120 + 60 + 4 * 60 + 20,
    uncounted: 1,
  });
});

test("the percentage never rounds a gap up to 100%", () => {
  assert.equal(formatCompleteness(99_999, 100_000), "99.99%");
  assert.equal(formatCompleteness(41, 60), "68.33%");
  assert.equal(formatCompleteness(60, 60), "100.00%");
  assert.equal(formatCompleteness(0, 0), "—");
});

test("the store gives the bars of a time range", () => {
  const store = new BarStore();
  store.reset([0, 1, 2, 3, 5].map((m) => minute(T + m * MINUTE, 60)));
  const between = (from: number, to: number) =>
    store.between((T + from * MINUTE) / 1000, (T + to * MINUTE) / 1000).map((b) => b.time);
  assert.deepEqual(
    between(1, 3),
    [1, 2, 3].map((m) => (T + m * MINUTE) / 1000),
  );
  assert.deepEqual(between(4, 4), []);
  assert.equal(between(-10, 10).length, 5);
});
