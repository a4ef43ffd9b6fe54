import assert from "node:assert/strict";
import { test } from "node:test";
import {
  decimalsOf,
  formatDecimal,
  formatBarTime,
  formatCrosshairTime,
  formatChangePercent,
  formatCount,
  formatIndicatorValue,
  formatAtStep,
  formatTick,
  priceFormatOfTick,
  pricePrecision,
  splitSymbol,
  TickKind,
} from "../src/format.ts";

test("decimals ignore trailing zeros", () => {
  assert.equal(decimalsOf("61000.10000000"), 1);
  assert.equal(decimalsOf("0.00001234"), 8);
  assert.equal(decimalsOf("42"), 0);
  assert.equal(decimalsOf("42.000"), 0);
});

test("price precision covers every price, between 2 and 8", () => {
  assert.equal(pricePrecision(["61000.10000000", "61000.00"]), 2);
  assert.equal(pricePrecision(["0.12345", "0.1"]), 5);
  assert.equal(pricePrecision(["0.000000001"]), 8);
  assert.equal(pricePrecision([]), 2);
});

test("change percent is signed and otherwise unchanged", () => {
  assert.equal(formatChangePercent("1.230"), "+1.230%");
  assert.equal(formatChangePercent("-0.50"), "-0.50%");
  assert.equal(formatChangePercent("0.000"), "0.000%");
  assert.equal(formatChangePercent("nope"), "—");
});

test("bar times in UTC at the interval's precision", () => {
  const ms = Date.UTC(2024, 10, 26, 14, 32, 5);
  assert.equal(formatBarTime(ms, "1s", true), "2024-11-26 14:32:05");
  assert.equal(formatBarTime(ms, "15m", true), "2024-11-26 14:32");
  assert.equal(formatBarTime(ms, "1d", true), "2024-11-26");
});

test("tick labels follow the tick kind", () => {
  const ms = new Date(2024, 10, 26, 9, 5, 7).getTime();
  assert.equal(formatTick(ms, TickKind.Year), "2024");
  assert.equal(formatTick(ms, TickKind.Month), "Nov");
  assert.equal(formatTick(ms, TickKind.DayOfMonth), "26 Nov");
  assert.equal(formatTick(ms, TickKind.Time), "09:05");
  assert.equal(formatTick(ms, TickKind.TimeWithSeconds), "09:05:07");
});

test("symbols split into base and quote", () => {
  assert.deepEqual(splitSymbol("BTCUSDT"), ["BTC", "USDT"]);
  assert.deepEqual(splitSymbol("ETHBTC"), ["ETH", "BTC"]);
  assert.deepEqual(splitSymbol("USDT"), ["USDT", ""]);
  assert.deepEqual(splitSymbol("FOO"), ["FOO", ""]);
});

test("daily bars are labelled by their UTC day", () => {
  const ms = Date.UTC(2024, 10, 26);
  assert.equal(formatTick(ms, TickKind.DayOfMonth, true), "26 Nov");
  assert.equal(formatCrosshairTime(ms, "1d"), "Tue 26 Nov '24 UTC");
});

test("formatDecimal drops the exchange's padding zeros, keeps 2 decimals, never rounds", () => {
  assert.equal(formatDecimal("60151.88000000"), "60151.88");
  assert.equal(formatDecimal("0.45246900"), "0.452469");
  assert.equal(formatDecimal("61000.00000000"), "61000.00");
  assert.equal(formatDecimal("0.00001234"), "0.00001234");
  assert.equal(formatDecimal("12345.67891234"), "12345.67891234");
  assert.equal(formatDecimal("42"), "42");
  assert.equal(formatDecimal("1.5"), "1.50");
});

test("indicator values round half away from zero as written, despite binary noise", () => {
  assert.equal(formatIndicatorValue(61400.634999999995, 2), "61400.64");
  assert.equal(formatIndicatorValue(61400.63500000001, 2), "61400.64");
  assert.equal(formatIndicatorValue(62036.16499981568, 2), "62036.16");
  assert.equal(formatIndicatorValue(-12.345, 2), "-12.35");
  assert.equal(formatIndicatorValue(-0.001, 2), "0.00");
  assert.equal(formatIndicatorValue(55.5, 0), "56");
  assert.equal(formatIndicatorValue(0.000012345, 8), "0.00001235");
  assert.equal(formatIndicatorValue(null, 2), "—");
  assert.equal(formatIndicatorValue(Number.NaN, 2), "—");
});

test("a tick size gives the price scale's decimals and step", () => {
  assert.deepEqual(priceFormatOfTick("0.01000000"), { precision: 2, minMove: 0.01 });
  assert.deepEqual(priceFormatOfTick("0.05"), { precision: 2, minMove: 0.05 });
  assert.deepEqual(priceFormatOfTick("0.00000001"), { precision: 8, minMove: 1e-8 });
  assert.deepEqual(priceFormatOfTick("10"), { precision: 0, minMove: 10 });
});

test("values are written at a step's decimals, exactly", () => {
  assert.equal(formatAtStep("61130.99000000", "0.01"), "61130.99"); // on the grid: padding goes
  assert.equal(formatAtStep("9.48506000", "0.00001"), "9.48506");
  assert.equal(formatAtStep("5", "0.1"), "5.0");
  assert.equal(formatAtStep("0.00001234", "0.00000001"), "0.00001234");
  assert.equal(formatAtStep("0.123456", "0.001"), "0.123");
  assert.equal(formatAtStep("0.1235", "0.001"), "0.124"); // half away from zero
  assert.equal(formatAtStep("-0.1235", "0.001"), "-0.124");
  assert.equal(formatAtStep("-0.0004", "0.001"), "0.000");
  assert.equal(formatAtStep("99.995", "0.01"), "100.00");
  assert.equal(formatAtStep("1234.5", "1"), "1235");
  assert.equal(formatAtStep("1234.5", "10"), "1235"); // a step above 1 keeps whole units
  assert.equal(
    formatAtStep("123456789012345678.123456789", "0.00000001"),
    "123456789012345678.12345679",
  );
});

test("counts are grouped by thousands as en-US writes them", () => {
  for (const n of [0, 7, 999, 1000, 20335, 86400, 1234567, -1000, -999, 10 ** 12]) {
    assert.equal(formatCount(n), n.toLocaleString("en-US"));
  }
});
