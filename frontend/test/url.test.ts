import assert from "node:assert/strict";
import { test } from "node:test";
import { searchFromView, viewFromSearch } from "../src/url.ts";

test("symbol and interval come from the address", () => {
  assert.deepEqual(viewFromSearch("?symbol=ethusdt&interval=5m"), {
    symbol: "ETHUSDT",
    interval: "5m",
    symbolGiven: true,
  });
});

test("missing or invalid values fall back to defaults", () => {
  assert.deepEqual(viewFromSearch(""), { symbol: "BTCUSDT", interval: "1m", symbolGiven: false });
  assert.deepEqual(viewFromSearch("?symbol=SOLUSDT&interval=7m"), {
    symbol: "SOLUSDT",
    interval: "1m",
    symbolGiven: true,
  });
});

test("the address keeps unrelated parameters", () => {
  assert.equal(
    searchFromView("ETHUSDT", "1h", "?debug=1&symbol=BTCUSDT"),
    "?debug=1&symbol=ETHUSDT&interval=1h",
  );
});
