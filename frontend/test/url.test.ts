import assert from "node:assert/strict";
import { test } from "node:test";
import { parseIndicatorList } from "../src/indicators/registry.ts";
import { searchFromView, viewFromSearch } from "../src/url.ts";

test("symbol and interval come from the address", () => {
  assert.deepEqual(viewFromSearch("?symbol=ethusdt&interval=5m"), {
    symbol: "ETHUSDT",
    interval: "5m",
    symbolGiven: true,
    indicators: [],
    ignoredIndicators: [],
  });
});

test("missing or invalid values fall back to defaults", () => {
  assert.deepEqual(viewFromSearch(""), {
    symbol: "BTCUSDT",
    interval: "1m",
    symbolGiven: false,
    indicators: [],
    ignoredIndicators: [],
  });
  const view = viewFromSearch("?symbol=SOLUSDT&interval=7m");
  assert.equal(view.symbol, "SOLUSDT");
  assert.equal(view.interval, "1m");
});

test("the address keeps unrelated parameters", () => {
  assert.equal(
    searchFromView("ETHUSDT", "1h", [], "?debug=1&symbol=BTCUSDT&ind=sma20"),
    "?debug=1&symbol=ETHUSDT&interval=1h",
  );
});

test("indicators come from `ind`, canonical, in order, repeats dropped", () => {
  const view = viewFromSearch("?ind=sma20,EMA50,bb20,vwap,rsi,macd,sma20");
  assert.deepEqual(
    view.indicators.map((s) => s.id),
    ["sma20", "ema50", "bb20", "vwap", "rsi14", "macd"],
  );
  assert.deepEqual(view.ignoredIndicators, []);
  assert.deepEqual(view.indicators[1], { kind: "ema", period: 50, id: "ema50" });
  assert.deepEqual(view.indicators[3], { kind: "vwap", period: null, id: "vwap" });
});

test("invalid indicators are left out, each with its reason", () => {
  const view = viewFromSearch("?ind=sma1,foo,vwap3,rsi14,ema9999,,sma-5,bb20");
  assert.deepEqual(
    view.indicators.map((s) => s.id),
    ["rsi14", "bb20"],
  );
  assert.deepEqual(view.ignoredIndicators, [
    "SMA period must be 2–500, not 1",
    "“foo” is not an indicator",
    "VWAP takes no period",
    "EMA period must be 2–500, not 9999",
    "“sma-5” is not an indicator",
  ]);
});

test("at most eight indicators; the rest are named as ignored", () => {
  const { specs, ignored } = parseIndicatorList(
    "sma10,sma20,sma30,sma40,sma50,sma60,sma70,sma80,sma90,sma100",
  );
  assert.equal(specs.length, 8);
  assert.deepEqual(ignored, ["sma90: at most 8", "sma100: at most 8"]);
});

test("the address writes the indicators with plain commas, and drops `ind` when none", () => {
  const { specs } = parseIndicatorList("sma20,rsi14,macd");
  assert.equal(
    searchFromView("BTCUSDT", "1m", specs, ""),
    "?symbol=BTCUSDT&interval=1m&ind=sma20,rsi14,macd",
  );
  assert.equal(searchFromView("BTCUSDT", "1m", [], "?ind=sma20"), "?symbol=BTCUSDT&interval=1m");
  const round = viewFromSearch(searchFromView("BTCUSDT", "1m", specs));
  assert.deepEqual(round.indicators, specs);
});
