/**
 * What the sidebar and the header know about every symbol: the list, its tick and lot size, the
 * newest price (from
 * whichever frame is newest), the 24h change and stats, and the data source. Read from REST at
 * start and every 30 s (retried every 5 s until a first list arrives), moved by live frames.
 */
import type { Source, SymbolInfo, Ticker } from "./api.ts";
import type { Clock } from "./clock.ts";
import { sizesOf, UNDECLARED, type Sizes } from "./precision.ts";

export interface MarketEvents {
  /** The listed symbols, before their prices and tickers. */
  listed(symbols: readonly string[]): void;
  /** A REST refresh is applied: the list, its sizes, prices, tickers and the source. */
  refreshed(symbols: readonly string[]): void;
  /** No list could be read and none is known yet. */
  unavailable(): void;
  price(symbol: string, price: string): void;
  change(symbol: string, percent: string): void;
  stats(ticker: Ticker): void;
  source(source: Source): void;
}

export interface MarketDeps {
  fetchSymbols(): Promise<SymbolInfo[]>;
  fetchTickers(): Promise<Ticker[]>;
  fetchSource(): Promise<Source>;
  clock: Clock;
  events: MarketEvents;
}

const RETRY_MS = 5_000;
// Live ticker frames carry price and change only; high, low, volume and new symbols come from REST.
export const REFRESH_MS = 30_000;

export class Market {
  private list: string[] = [];
  /** Newest known price per symbol, from whichever frame was newest. */
  private readonly prices = new Map<string, { price: string; at: number }>();
  private readonly changes = new Map<string, string>();
  private readonly stats = new Map<string, Ticker>();
  private sizes = new Map<string, Sizes>();
  private loading = false;
  private current: Source = "unknown";

  constructor(private readonly deps: MarketDeps) {}

  get symbols(): readonly string[] {
    return this.list;
  }

  get source(): Source {
    return this.current;
  }

  priceOf(symbol: string): string | undefined {
    return this.prices.get(symbol)?.price;
  }

  changeOf(symbol: string): string | undefined {
    return this.changes.get(symbol);
  }

  statsOf(symbol: string): Ticker | undefined {
    return this.stats.get(symbol);
  }

  /** A symbol's tick and lot size as last listed; undeclared (null) until then. */
  sizesOf(symbol: string): Sizes {
    return this.sizes.get(symbol) ?? UNDECLARED;
  }

  /** Every known price, the exchange's strings. */
  lastPrices(): Record<string, string> {
    return Object.fromEntries([...this.prices].map(([symbol, p]) => [symbol, p.price]));
  }

  /** Load now and then every 30 s. */
  start(): void {
    void this.load();
    this.deps.clock.setInterval(() => void this.load(), REFRESH_MS);
  }

  /** Symbols, their tickers and the data source; retried soon until a first list arrives. */
  async load(): Promise<void> {
    if (this.loading) return;
    this.loading = true;
    const { events } = this.deps;
    // Only the symbol list is essential; tickers and the source also arrive over the socket.
    const optional = <T>(promise: Promise<T>): Promise<T | undefined> =>
      promise.catch(() => undefined);
    try {
      const [symbols, tickers, source] = await Promise.all([
        this.deps.fetchSymbols(),
        optional(this.deps.fetchTickers()),
        optional(this.deps.fetchSource()),
      ]);
      if (source !== undefined) this.setSource(source);
      this.list = symbols.map((s) => s.symbol);
      // Before any price is shown: prices are written at their symbol's tick size.
      this.sizes = new Map(symbols.map((s) => [s.symbol, sizesOf(s)]));
      events.listed(this.list);
      for (const s of symbols) this.setPrice(s.symbol, s.price, s.lastTime);
      for (const t of tickers ?? []) this.setTicker(t);
      events.refreshed(this.list);
    } catch {
      if (this.list.length === 0) events.unavailable();
    } finally {
      this.loading = false;
    }
    if (this.list.length === 0) this.deps.clock.setTimeout(() => void this.load(), RETRY_MS);
  }

  /** A 24h ticker from REST: stats, price and change. */
  setTicker(ticker: Ticker): void {
    this.stats.set(ticker.symbol, ticker);
    this.setPrice(ticker.symbol, ticker.lastPrice, ticker.closeTime);
    this.setChange(ticker.symbol, ticker.priceChangePercent);
    this.deps.events.stats(ticker);
  }

  /** A price as of `at` (ms); one older than the newest known is ignored. */
  setPrice(symbol: string, price: string, at: number): void {
    const known = this.prices.get(symbol);
    if (known !== undefined && at < known.at) return;
    this.prices.set(symbol, { price, at });
    this.deps.events.price(symbol, price);
  }

  setChange(symbol: string, percent: string | undefined): void {
    if (percent === undefined) return;
    this.changes.set(symbol, percent);
    this.deps.events.change(symbol, percent);
  }

  setSource(source: Source): void {
    this.current = source;
    this.deps.events.source(source);
  }
}
