import assert from "node:assert/strict";
import { test } from "node:test";
import type { RawKline } from "../src/api.ts";
import { BarStore, barFromKline, sameCandle, type Bar } from "../src/bars.ts";

const kline = (openMs: number, close = "100.50"): RawKline => [
  openMs,
  "100.00",
  "101.25",
  "99.75",
  close,
  "12.34500000",
  openMs + 59_999,
  "1240.5",
  42,
  "6.1",
  "612.2",
  "0",
];
const bar = (sec: number, close = "100.50"): Bar => barFromKline(kline(sec * 1000, close));

test("a kline becomes a bar in seconds, keeping the exchange's strings", () => {
  const b = barFromKline(kline(1_700_000_040_000, "100.10000000"));
  assert.equal(b.time, 1_700_000_040);
  assert.equal(b.close, 100.1);
  assert.equal(b.raw.close, "100.10000000");
  assert.equal(b.raw.volume, "12.34500000");
});

test("upsert replaces the newest bar, appends newer ones, refuses older ones", () => {
  const store = new BarStore();
  store.reset([bar(60), bar(120)]);
  assert.equal(store.upsert(bar(120, "105")), "replaced");
  assert.equal(store.last?.raw.close, "105");
  assert.equal(store.upsert(bar(180)), "appended");
  assert.equal(store.upsert(bar(60, "1")), "stale");
  assert.equal(store.at(60)?.raw.close, "100.50");
  assert.deepEqual(
    store.bars.map((b) => b.time),
    [60, 120, 180],
  );
});

test("reset sorts and de-duplicates", () => {
  const store = new BarStore();
  store.reset([bar(180), bar(60), bar(120), bar(60, "7")]);
  assert.deepEqual(
    store.bars.map((b) => b.time),
    [60, 120, 180],
  );
  assert.equal(store.at(60)?.raw.close, "7");
});

test("prepend keeps only bars older than the first", () => {
  const store = new BarStore();
  store.reset([bar(180), bar(240)]);
  assert.equal(store.prepend([bar(60), bar(120), bar(180, "9")]), 2);
  assert.deepEqual(
    store.bars.map((b) => b.time),
    [60, 120, 180, 240],
  );
  assert.equal(store.at(180)?.raw.close, "100.50");
  assert.equal(store.prepend([]), 0);
});

test("merge fills a hole in the middle", () => {
  const store = new BarStore();
  store.reset([bar(60), bar(240)]);
  assert.equal(store.merge([bar(120), bar(180)]), 2);
  assert.deepEqual(
    store.bars.map((b) => b.time),
    [60, 120, 180, 240],
  );
});

test("an empty store accepts its first live bar", () => {
  const store = new BarStore();
  assert.equal(store.last, undefined);
  assert.equal(store.upsert(bar(60)), "appended");
  assert.equal(store.size, 1);
});

test("every change of the bars is told; a stale live bar or nothing dropped is none", () => {
  const store = new BarStore();
  let changes = 0;
  store.onChange(() => changes++);
  store.reset([0, 1, 2].map((m) => barFromKline(kline(m * 60_000))));
  assert.equal(changes, 1);
  store.upsert(barFromKline(kline(2 * 60_000, "101.00")));
  store.upsert(barFromKline(kline(3 * 60_000)));
  assert.equal(changes, 3);
  store.upsert(barFromKline(kline(0)));
  assert.equal(changes, 3, "stale");
  store.prepend([barFromKline(kline(-60_000))]);
  store.prepend([barFromKline(kline(0))]);
  assert.equal(changes, 4, "only new bars change it");
  store.merge([barFromKline(kline(5 * 60_000))]);
  store.dropOldest(1);
  store.dropOldest(0);
  store.clear();
  assert.equal(changes, 7);
});

test("two bars carry the same candle when every value agrees, padding aside", () => {
  const rest = kline(60_000);
  rest[12] = 60;
  const same = rest.slice(0, 11) as RawKline;
  same[5] = "12.345";
  assert.ok(sameCandle(barFromKline(rest), barFromKline(same)));
  const differs = (index: number, value: string | number) => {
    const k = rest.slice(0, 11) as RawKline;
    (k as unknown[])[index] = value;
    return !sameCandle(barFromKline(rest), barFromKline(k));
  };
  assert.ok(differs(4, "100.01"), "close");
  assert.ok(differs(6, 60_000 + 58_999), "an older newest second");
  assert.ok(differs(7, "250.1"), "quote volume");
  assert.ok(differs(8, 8), "trades");
  assert.ok(differs(9, "1.1"), "taker buy base");
  assert.ok(differs(10, "100.1"), "taker buy quote");
  assert.ok(differs(0, 120_000), "another minute");
});
