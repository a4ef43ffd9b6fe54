import assert from "node:assert/strict";
import { test } from "node:test";
import { barFromKline, type Bar } from "../src/bars.ts";
import { parseIndicatorList } from "../src/indicators/registry.ts";
import { StudySet } from "../src/indicators/studies.ts";
import { FakeStudySink, kline } from "./fakes.ts";

const MINUTE = 60_000;
const T0 = 1_709_251_200_000; // 2024-03-01 00:00 UTC

/** Minute bars closing at these prices, the first opening at T0 + `fromMinute`. */
function bars(closes: readonly number[], fromMinute = 0): Bar[] {
  return closes.map((c, i) =>
    barFromKline(kline(T0 + (fromMinute + i) * MINUTE, c.toFixed(2), MINUTE)),
  );
}

const specs = (list: string) => parseIndicatorList(list).specs;

test("configure lays the studies out in order and draws each line whole", () => {
  const sink = new FakeStudySink();
  const set = new StudySet(sink);
  set.configure(specs("sma3,bb3,macd"), bars([1, 2, 3, 4, 5]));
  assert.deepEqual(sink.layouts, [["sma3", "bb3", "macd"]]);
  assert.deepEqual(
    sink.lines[0]![0]!.map((p) => p.value),
    [2, 3, 4],
  );
  assert.equal(sink.lines[1]!.length, 3, "upper, basis, lower");
  assert.deepEqual(
    sink.lines[1]![1]!.map((p) => p.value),
    [2, 3, 4],
  );
  assert.deepEqual(sink.lines[2], [[], [], []], "MACD needs 26 bars");
});

test("a live update of the newest bar redraws only the tail; a new bar appends", () => {
  const sink = new FakeStudySink();
  const set = new StudySet(sink);
  const history = bars([10, 11, 12, 13]);
  set.configure(specs("sma2,ema2,rsi2,vwap"), history);
  const setLines = sink.setLines;

  const [forming, formed, next] = [bars([20], 3)[0]!, bars([14], 3)[0]!, bars([15], 4)[0]!];
  set.update(forming);
  set.update(formed);
  set.update(next);
  assert.equal(sink.setLines, setLines, "no line was redrawn whole");
  assert.equal(sink.updates, 4 * 3, "each line got one update per live bar");

  // The same values as computing the final bars from scratch.
  const fresh = new FakeStudySink();
  new StudySet(fresh).configure(specs("sma2,ema2,rsi2,vwap"), [...bars([10, 11, 12, 14]), next]);
  assert.deepEqual(sink.lines, fresh.lines);
  assert.deepEqual(
    sink.lines[0]![0]!.map((p) => p.value),
    [10.5, 11.5, 13, 14.5],
  );
});

test("a bar older than the newest is ignored", () => {
  const sink = new FakeStudySink();
  const set = new StudySet(sink);
  set.configure(specs("sma2"), bars([1, 2, 3]));
  set.update(bars([100], 0)[0]!);
  assert.equal(sink.updates, 0);
  assert.deepEqual(set.valuesAt(bars([0], 2)[0]!.time)[0]!.values, [2.5]);
});

test("values at a bar: null before a line has any", () => {
  const set = new StudySet(new FakeStudySink());
  const history = bars([1, 2, 3, 4]);
  set.configure(specs("sma3,ema2"), history);
  assert.deepEqual(
    set.valuesAt(history[1]!.time).map((r) => r.values),
    [[null], [2 * (2 / 3) + 1 / 3]],
  );
  assert.deepEqual(
    set.valuesAt(history[3]!.time).map((r) => r.values[0]),
    [3, set.valuesAt(history[3]!.time)[1]!.values[0]],
  );
  assert.deepEqual(
    set.valuesAt(T0 / 1000 + 3600).map((r) => r.values),
    [[null], [null]],
  );
});

test("dropping old bars drops their points and leaves the rest as computed", () => {
  const sink = new FakeStudySink();
  const set = new StudySet(sink);
  const history = bars([1, 2, 3, 4, 5, 6]);
  set.configure(specs("ema3"), history);
  const before = sink.lines[0]![0]!.filter((p) => p.time >= history[3]!.time);
  set.trimBefore(history[3]!.time);
  assert.deepEqual(sink.lines[0]![0], before);
  set.update(bars([7], 6)[0]!);
  assert.equal(sink.lines[0]![0].length, 4);
});

test("an indicator keeps its colour while others come and go", () => {
  const set = new StudySet(new FakeStudySink());
  set.configure(specs("sma20,ema50"), []);
  const ema = set.studies[1]!.color;
  set.configure(specs("ema50"), []);
  assert.equal(set.studies[0]!.color, ema);
  set.configure(specs("ema50,rsi14"), []);
  assert.notEqual(set.studies[1]!.color, ema);
});

test("session VWAP is Σ quote volume / Σ volume, starting again at 00:00 UTC", () => {
  const set = new StudySet(new FakeStudySink());
  const at = (ms: number, quote: string, volume: string): Bar => {
    const k = kline(ms);
    k[5] = volume;
    k[7] = quote;
    return barFromKline(k);
  };
  const day = 86_400_000;
  const list = [
    at(T0 - MINUTE, "999", "1"),
    at(T0, "100", "2"),
    at(T0 + MINUTE, "50", "0.5"),
    at(T0 + 2 * MINUTE, "0", "0"),
    at(T0 + day, "7", "0.1"),
  ];
  set.configure(specs("vwap"), list);
  const vwap = (bar: Bar) => set.valuesAt(bar.time)[0]!.values[0];
  assert.equal(vwap(list[0]!), 999);
  assert.equal(vwap(list[1]!), 50, "a new day: the day before does not count");
  assert.equal(vwap(list[2]!), 150 / 2.5);
  assert.equal(vwap(list[3]!), 150 / 2.5, "a bar without trades keeps the session's price");
  assert.equal(vwap(list[4]!), 70);
});
