import assert from "node:assert/strict";
import { test } from "node:test";
import { LatencyWindow } from "../src/latency.ts";

test("no samples gives no median", () => {
  assert.equal(new LatencyWindow(60_000).p50(1_000), null);
});

test("median of an odd and an even number of samples", () => {
  const w = new LatencyWindow(60_000);
  for (const ms of [30, 10, 20]) w.add(ms, 1_000);
  assert.equal(w.p50(1_000), 20);
  w.add(40, 1_000);
  assert.equal(w.p50(1_000), 25);
});

test("samples older than the window are forgotten", () => {
  const w = new LatencyWindow(60_000);
  w.add(900, 0);
  w.add(10, 30_000);
  w.add(20, 50_000);
  assert.equal(w.p50(50_000), 20);
  assert.equal(w.p50(61_000), 15);
  assert.equal(w.count, 2);
  assert.equal(w.p50(200_000), null);
});

test("non-finite latencies are ignored", () => {
  const w = new LatencyWindow(60_000);
  w.add(Number.NaN, 0);
  assert.equal(w.p50(0), null);
});
