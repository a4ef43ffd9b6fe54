/**
 * The indicators as the chart shows them (trading-signals through StudySet, rounded as the legend
 * and the price axis round them) against a second, independent library, technicalindicators, on
 * three real Binance days per data set (shared/data/binance). Where the two libraries start an
 * average differently the reference is fed so as to start it as trading-signals does (noted at
 * each place). VWAP is checked against exact decimal arithmetic on the exchange's strings, as
 * neither library has the session quote-volume VWAP.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { BollingerBands, EMA, MACD, RSI, SMA } from "technicalindicators";
import type { RawKline } from "../src/api.ts";
import { barFromKline, type Bar } from "../src/bars.ts";
import { formatIndicatorValue, pricePrecision } from "../src/format.ts";
import { MACD_PERIODS } from "../src/indicators/macd.ts";
import {
  INDICATOR_KINDS,
  indicatorDecimals,
  parseIndicatorList,
} from "../src/indicators/registry.ts";
import { StudySet } from "../src/indicators/studies.ts";
import type { IndicatorSpec } from "../src/indicators/types.ts";
import { binanceDays, binanceKlines } from "./binance-data.ts";
import { FakeStudySink } from "./fakes.ts";

const DAYS = ["2024-03-01", "2024-03-02", "2024-03-03"];
const DATA_SETS = ["1m", "15m", "1h"].flatMap((interval) =>
  ["BTCUSDT", "ETHUSDT"].map((symbol) => ({ symbol, interval })),
);
const SPECS = parseIndicatorList("sma20,sma50,ema20,ema50,bb20,vwap,rsi14,macd").specs;

type Lines = (number | null)[][];

/** `values` (one per bar from `from` on) placed at their bars, null before. */
function aligned(count: number, from: number, values: readonly (number | undefined)[]) {
  return Array.from({ length: count }, (_, i) => (i < from ? null : (values[i - from] ?? null)));
}

/** `n - 1` copies of the first value first: an SMA-started average then starts at that value. */
const seededWithFirst = (values: readonly number[], n: number): number[] => [
  ...Array<number>(n - 1).fill(values[0]!),
  ...values,
];

/** An exchange decimal string as an integer count of 1e-8. */
function units(value: string): bigint {
  const [whole, fraction = ""] = value.split(".");
  return BigInt(`${whole}${fraction.padEnd(8, "0")}`);
}

/** `a / b` rounded half up to `decimals`, as text. */
function divide(a: bigint, b: bigint, decimals: number): string {
  const scale = 10n ** BigInt(decimals);
  const digits = ((2n * a * scale + b) / (2n * b)).toString().padStart(decimals + 1, "0");
  return decimals === 0 ? digits : `${digits.slice(0, -decimals)}.${digits.slice(-decimals)}`;
}

/** The reference values of one indicator, per line, per bar. */
function reference(spec: IndicatorSpec, klines: readonly RawKline[]): Lines {
  const closes = klines.map((k) => Number(k[4]));
  const count = closes.length;
  const n = spec.period ?? 0;
  switch (spec.kind) {
    case "sma":
      return [aligned(count, n - 1, SMA.calculate({ period: n, values: closes }))];
    case "ema":
      // technicalindicators starts an EMA at the SMA of its first n values; trading-signals at
      // the first close. Fed n - 1 copies of that close first, the SMA is that close.
      return [
        aligned(count, 0, EMA.calculate({ period: n, values: seededWithFirst(closes, n) })).map(
          (v, i) => (i < n - 1 ? null : v),
        ),
      ];
    case "bb": {
      const bands = BollingerBands.calculate({ period: n, stdDev: 2, values: closes });
      return [
        aligned(
          count,
          n - 1,
          bands.map((b) => b.upper),
        ),
        aligned(
          count,
          n - 1,
          bands.map((b) => b.middle),
        ),
        aligned(
          count,
          n - 1,
          bands.map((b) => b.lower),
        ),
      ];
    }
    case "rsi":
      // Both use Wilder's smoothing started at the SMA of the first n changes; the reference
      // rounds to 2 decimals, the decimals RSI is shown with.
      return [aligned(count, n, RSI.calculate({ period: n, values: closes }))];
    case "macd": {
      const { fast, slow, signal } = MACD_PERIODS;
      // Both EMAs started at the first close (as above), the line from the slow EMA's 26th bar.
      const line = MACD.calculate({
        values: seededWithFirst(closes, slow),
        fastPeriod: fast,
        slowPeriod: slow,
        signalPeriod: signal,
        SimpleMAOscillator: false,
        SimpleMASignal: false,
      })
        .map((r) => r.MACD!)
        .slice(slow - 1);
      // trading-signals starts the signal EMA at the first MACD value.
      const signalLine = EMA.calculate({ period: signal, values: seededWithFirst(line, signal) });
      return [
        aligned(count, slow - 1, line),
        aligned(count, slow - 1, signalLine),
        aligned(
          count,
          slow - 1,
          line.map((m, i) => m - signalLine[i]!),
        ),
      ];
    }
    case "vwap":
      throw new Error("VWAP is checked in decimals, see below");
  }
}

/** Each study's lines per bar, as the chart holds them. */
function ours(specs: readonly IndicatorSpec[], bars: readonly Bar[]): Lines[] {
  const set = new StudySet(new FakeStudySink());
  set.configure(specs, bars);
  const atBar = bars.map((b) => set.valuesAt(b.time));
  return specs.map((_, s) =>
    set.studies[s]!.lines.map((_line, l) => atBar.map((rows) => rows[s]!.values[l]!)),
  );
}

/** The first bar where two lines read differently at `decimals`, or null. */
function firstDifference(a: (number | null)[], b: (string | number | null)[], decimals: number) {
  for (let i = 0; i < a.length; i++) {
    const mine = formatIndicatorValue(a[i]!, decimals);
    const theirs =
      typeof b[i] === "string" ? (b[i] as string) : formatIndicatorValue(b[i] as number, decimals);
    if (mine !== theirs) return { bar: i, mine, theirs, exact: a[i], reference: b[i] };
  }
  return null;
}

for (const { symbol, interval } of DATA_SETS) {
  test(`${symbol} ${interval}: every indicator matches technicalindicators to the shown digit`, () => {
    const klines = binanceDays(symbol, interval, DAYS);
    assert.ok(klines.length >= 72, `${klines.length} klines`);
    const bars = klines.map(barFromKline);
    const precision = pricePrecision(klines.flatMap((k) => [k[1], k[2], k[3], k[4]]));
    const mine = ours(SPECS, bars);
    SPECS.forEach((spec, s) => {
      if (spec.kind === "vwap") return;
      const decimals = indicatorDecimals(INDICATOR_KINDS[spec.kind], precision);
      reference(spec, klines).forEach((line, l) => {
        assert.equal(line.length, bars.length);
        const shown = mine[s]![l]!.filter((v) => v !== null).length;
        assert.ok(shown > 0 || bars.length < 50, `${spec.id} line ${l} shows nothing`);
        assert.deepEqual(
          firstDifference(mine[s]![l]!, line, decimals),
          null,
          `${spec.id} line ${l}`,
        );
      });
    });
  });
}

test("VWAP equals Σ quote volume / Σ volume of the UTC day, in exact decimals", () => {
  for (const { symbol, interval } of DATA_SETS) {
    const klines = binanceDays(symbol, interval, DAYS);
    const precision = pricePrecision(klines.flatMap((k) => [k[1], k[2], k[3], k[4]]));
    const [vwap] = ours(parseIndicatorList("vwap").specs, klines.map(barFromKline))[0]!;
    let day = -1;
    let quote = 0n;
    let base = 0n;
    const exact = klines.map((k) => {
      if (Math.floor(k[0] / 86_400_000) !== day) {
        day = Math.floor(k[0] / 86_400_000);
        quote = 0n;
        base = 0n;
      }
      quote += units(k[7]);
      base += units(k[5]);
      return base > 0n ? divide(quote, base, precision) : "—";
    });
    assert.deepEqual(firstDifference(vwap!, exact, precision), null, `${symbol} ${interval}`);
  }
});

test("fed live, a forming bar and then its final state, the values equal the batch ones", () => {
  const klines = binanceDays("BTCUSDT", "1m", DAYS);
  const batch = new FakeStudySink();
  new StudySet(batch).configure(SPECS, klines.map(barFromKline));

  const live = new FakeStudySink();
  const set = new StudySet(live);
  set.configure(SPECS, []);
  const drawnWhole = live.setLines;
  for (const k of klines) {
    const forming: RawKline = [...k];
    forming[2] = forming[3] = forming[4] = k[1];
    forming[5] = "0.00100000";
    forming[7] = (Number(k[1]) / 1000).toFixed(8);
    set.update(barFromKline(forming));
    set.update(barFromKline(k));
  }
  assert.equal(live.setLines, drawnWhole, "live bars never redraw a whole line");
  assert.deepEqual(live.lines, batch.lines);
});

test("a missing reference file fails loudly instead of skipping", () => {
  assert.throws(() => binanceKlines("BTCUSDT-1m-1999-01-01"), /missing reference data .*1999/);
});
