import assert from "node:assert/strict";
import { test } from "node:test";
import { ApiUnavailable, type Source, type SymbolInfo, type Ticker } from "../src/api.ts";
import { Market, REFRESH_MS } from "../src/market.ts";
import type { Sizes } from "../src/precision.ts";
import { FakeClock, settle } from "./fakes.ts";

const T = 1_700_000_040_000;

const info = (symbol: string, price: string, lastTime = T): SymbolInfo => ({
  symbol,
  price,
  firstTime: T - 86_400_000,
  lastTime,
});

const ticker = (symbol: string, lastPrice: string, percent: string, closeTime = T): Ticker => ({
  symbol,
  lastPrice,
  priceChange: "1.00",
  priceChangePercent: percent,
  highPrice: "110.00",
  lowPrice: "90.00",
  volume: "1234.5",
  openTime: closeTime - 86_400_000,
  closeTime,
});

function setup() {
  const clock = new FakeClock(T);
  const api = {
    symbols: [info("BTCUSDT", "100.00"), info("ETHUSDT", "10.00")] as SymbolInfo[] | Error,
    tickers: [ticker("BTCUSDT", "100.00", "1.50")] as Ticker[] | Error,
    source: "sim" as Source | Error,
    calls: 0,
  };
  const answer = <T>(value: T | Error): Promise<T> =>
    value instanceof Error ? Promise.reject(value) : Promise.resolve(value);
  const log: string[] = [];
  /** Each symbol's sizes as they were when its first price was shown. */
  const sizesAtPrice = new Map<string, Sizes>();
  const market: Market = new Market({
    fetchSymbols: () => {
      api.calls++;
      return answer(api.symbols);
    },
    fetchTickers: () => answer(api.tickers),
    fetchSource: () => answer(api.source),
    clock,
    events: {
      listed: (symbols) => log.push(`listed ${symbols.join(",")}`),
      refreshed: (symbols) => log.push(`refreshed ${symbols.join(",")}`),
      unavailable: () => log.push("unavailable"),
      price: (symbol, price) => {
        log.push(`price ${symbol} ${price}`);
        if (!sizesAtPrice.has(symbol)) sizesAtPrice.set(symbol, market.sizesOf(symbol));
      },
      change: (symbol, percent) => log.push(`change ${symbol} ${percent}`),
      stats: (t) => log.push(`stats ${t.symbol} ${t.highPrice}`),
      source: (source) => log.push(`source ${source}`),
    },
  });
  return { clock, api, log, market, sizesAtPrice };
}

test("a load lists the symbols, then their prices, tickers and the source", async () => {
  const { log, market } = setup();
  await market.load();
  assert.deepEqual(log, [
    "source sim",
    "listed BTCUSDT,ETHUSDT",
    "price BTCUSDT 100.00",
    "price ETHUSDT 10.00",
    "price BTCUSDT 100.00",
    "change BTCUSDT 1.50",
    "stats BTCUSDT 110.00",
    "refreshed BTCUSDT,ETHUSDT",
  ]);
  assert.deepEqual(market.symbols, ["BTCUSDT", "ETHUSDT"]);
  assert.deepEqual(market.lastPrices(), { BTCUSDT: "100.00", ETHUSDT: "10.00" });
  assert.equal(market.changeOf("BTCUSDT"), "1.50");
  assert.equal(market.statsOf("BTCUSDT")?.lowPrice, "90.00");
  assert.equal(market.source, "sim");
});

test("prices move with whichever frame is newest", () => {
  const { log, market } = setup();
  market.setPrice("BTCUSDT", "100.00", T);
  market.setPrice("BTCUSDT", "101.00", T + 1_000);
  market.setPrice("BTCUSDT", "99.00", T + 500); // an older frame arriving late
  market.setPrice("BTCUSDT", "101.50", T + 1_000); // same event time: the later frame wins
  assert.equal(market.priceOf("BTCUSDT"), "101.50");
  assert.deepEqual(log, ["price BTCUSDT 100.00", "price BTCUSDT 101.00", "price BTCUSDT 101.50"]);
});

test("a REST list older than the live frames does not move prices back", async () => {
  const { api, market } = setup();
  market.setPrice("BTCUSDT", "105.00", T + 5_000);
  api.symbols = [info("BTCUSDT", "100.00", T)];
  api.tickers = [ticker("BTCUSDT", "100.00", "1.50", T)];
  await market.load();
  assert.equal(market.priceOf("BTCUSDT"), "105.00");
  assert.equal(market.changeOf("BTCUSDT"), "1.50");
});

test("live ticker frames move the change; one without a change leaves it", () => {
  const { log, market } = setup();
  market.setChange("ETHUSDT", "-2.25");
  market.setChange("ETHUSDT", undefined);
  assert.equal(market.changeOf("ETHUSDT"), "-2.25");
  assert.deepEqual(log, ["change ETHUSDT -2.25"]);
});

test("tickers and the source are optional; the list is not", async () => {
  const { api, log, market } = setup();
  api.tickers = new ApiUnavailable("slow");
  api.source = new ApiUnavailable("slow");
  await market.load();
  assert.deepEqual(market.symbols, ["BTCUSDT", "ETHUSDT"]);
  assert.ok(log.includes("refreshed BTCUSDT,ETHUSDT"));
  assert.equal(market.source, "unknown");
});

test("without a first list: 'unavailable', retried every 5 s, then refreshed every 30 s", async () => {
  const { clock, api, log, market } = setup();
  api.symbols = new ApiUnavailable("down");
  market.start();
  await settle();
  assert.deepEqual(log, ["unavailable"]);
  clock.advance(5_000);
  await settle();
  assert.equal(api.calls, 2);
  api.symbols = [info("BTCUSDT", "100.00")];
  clock.advance(5_000);
  await settle();
  assert.equal(api.calls, 3);
  assert.deepEqual(market.symbols, ["BTCUSDT"]);
  // Listed: no more quick retries, a failed refresh keeps the list and says nothing.
  api.symbols = new ApiUnavailable("restart");
  clock.advance(REFRESH_MS - 10_000 - 1);
  await settle();
  assert.equal(api.calls, 3);
  clock.advance(1);
  await settle();
  assert.equal(api.calls, 4);
  assert.deepEqual(market.symbols, ["BTCUSDT"]);
  assert.equal(log.filter((e) => e === "unavailable").length, 2);
  assert.equal(clock.pending, 1, "only the 30 s refresh is scheduled");
});

test("a load while one is in flight asks nothing more", async () => {
  const { api, market } = setup();
  const first = market.load();
  await market.load();
  await first;
  assert.equal(api.calls, 1);
});

test("each symbol's tick and lot size as listed, before its price is shown", async () => {
  const { api, market, sizesAtPrice } = setup();
  api.symbols = [
    { ...info("BTCUSDT", "100.00"), tickSize: "0.01", lotSize: "0.00001" },
    { ...info("ETHUSDT", "10.00"), tickSize: null, lotSize: null },
    { ...info("OLDUSDT", "1.00") }, // an API that does not send them yet
    { ...info("BADUSDT", "1.00"), tickSize: "0", lotSize: "-1" },
  ];
  await market.load();
  assert.deepEqual(sizesAtPrice.get("BTCUSDT"), { tickSize: "0.01", lotSize: "0.00001" });
  assert.deepEqual(market.sizesOf("ETHUSDT"), { tickSize: null, lotSize: null });
  assert.deepEqual(market.sizesOf("OLDUSDT"), { tickSize: null, lotSize: null });
  assert.deepEqual(market.sizesOf("BADUSDT"), { tickSize: null, lotSize: null });
  assert.deepEqual(market.sizesOf("NOPEUSDT"), { tickSize: null, lotSize: null });

  // Declared later: the next listing has them.
  api.symbols = [{ ...info("ETHUSDT", "10.00"), tickSize: "0.1", lotSize: "1" }];
  await market.load();
  assert.deepEqual(market.sizesOf("ETHUSDT"), { tickSize: "0.1", lotSize: "1" });
  assert.deepEqual(
    market.sizesOf("BTCUSDT"),
    { tickSize: null, lotSize: null },
    "no longer listed",
  );
});
