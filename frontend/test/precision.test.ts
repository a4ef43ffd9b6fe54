import assert from "node:assert/strict";
import { test } from "node:test";
import { barFromKline } from "../src/bars.ts";
import {
  chartPriceFormat,
  formatAtSize,
  formatPrice,
  formatQuantity,
  recentPrices,
  sizesOf,
  stepOf,
  UNDECLARED,
} from "../src/precision.ts";
import { kline, series } from "./fakes.ts";

const BTC = { tickSize: "0.01", lotSize: "0.00001" };

test("a declared tick size is the price scale; undeclared, the prices' decimals (2 to 8)", () => {
  assert.deepEqual(chartPriceFormat("0.01", ["61000.1"]), { precision: 2, minMove: 0.01 });
  assert.deepEqual(chartPriceFormat("0.05", []), { precision: 2, minMove: 0.05 });
  assert.deepEqual(chartPriceFormat("10", ["61000.00000000"]), { precision: 0, minMove: 10 });
  // Declared, the tick size wins over whatever digits the prices show.
  assert.deepEqual(chartPriceFormat("0.1", ["9.48506000"]), { precision: 1, minMove: 0.1 });
  assert.deepEqual(chartPriceFormat(null, ["9.48506000", "9.485"]), {
    precision: 5,
    minMove: 10 ** -5,
  });
  assert.deepEqual(chartPriceFormat(null, ["61000.00000000"]), { precision: 2, minMove: 0.01 });
  assert.deepEqual(chartPriceFormat(null, []), { precision: 2, minMove: 0.01 });
});

test("the guess reads the newest bars' open, high, low and close", () => {
  const bars = series(0, 300).map(barFromKline);
  bars.push(barFromKline(kline(300 * 60_000, "100.123")));
  const prices = recentPrices(bars);
  assert.equal(prices.length, 200 * 4);
  assert.deepEqual(prices.slice(-4), ["100.00", "101.00", "99.00", "100.123"]);
  assert.equal(chartPriceFormat(null, prices).precision, 3);
});

test("prices are written at the tick size, volumes at the lot size", () => {
  assert.equal(formatPrice("61130.99000000", BTC), "61130.99");
  assert.equal(formatPrice("61131.00000000", BTC), "61131.00");
  assert.equal(formatPrice("61131", BTC), "61131.00");
  assert.equal(formatQuantity("0.25000000", BTC), "0.25000");
  assert.equal(formatQuantity("12", BTC), "12.00000");
  assert.equal(formatPrice("1234", { tickSize: "10", lotSize: "1" }), "1234");
  assert.equal(formatQuantity("7.00000000", { tickSize: "10", lotSize: "1" }), "7");
  assert.equal(formatPrice("0.00001234", { tickSize: "0.00000001", lotSize: null }), "0.00001234");
});

test("undeclared sizes keep today's reading: padding dropped, at least 2 decimals", () => {
  assert.equal(formatPrice("61130.99000000", UNDECLARED), "61130.99");
  assert.equal(formatPrice("0.45246900", UNDECLARED), "0.452469");
  assert.equal(formatQuantity("2.50000000", UNDECLARED), "2.50");
  assert.equal(formatQuantity("2.50000000", { tickSize: "0.01", lotSize: null }), "2.50");
});

test("a digit finer than the step is kept, never rounded away", () => {
  // A price from before the exchange coarsened its tick, say: the text stays exact.
  assert.equal(formatAtSize("61130.995", "0.01"), "61130.995");
  assert.equal(formatAtSize("0.1235", "0.001"), "0.1235");
  assert.equal(formatAtSize("1234.5", "10"), "1234.5");
  assert.equal(formatAtSize("-1.50", "0.001"), "-1.500");
  // 26 digits stay exact (no float on the way).
  assert.equal(formatAtSize("123456789012345678.12345678", "0.01"), "123456789012345678.12345678");
  // Not a plain decimal: left as the exchange wrote it.
  assert.equal(formatAtSize("nope", "0.01"), "nope");
});

test("only a positive plain decimal is a step", () => {
  assert.equal(stepOf("0.01"), "0.01");
  assert.equal(stepOf("10"), "10");
  for (const bad of [null, undefined, "", "0", "0.000", "-0.01", "1e-8", ".01", "0.01 ", 0.01]) {
    assert.equal(stepOf(bad), null, String(bad));
  }
  const info = { symbol: "X", price: "1", firstTime: 0, lastTime: 0 };
  assert.deepEqual(sizesOf({ ...info, tickSize: "0.01", lotSize: "0.1" }), {
    tickSize: "0.01",
    lotSize: "0.1",
  });
  assert.deepEqual(sizesOf(info), UNDECLARED);
  assert.deepEqual(sizesOf({ ...info, tickSize: "abc", lotSize: null }), UNDECLARED);
});
