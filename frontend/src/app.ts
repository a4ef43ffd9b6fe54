/** The page's controller: what is shown, where its data comes from, and what the views say. */
import {
  ApiRejected,
  KLINES_MAX_LIMIT,
  fetchKlines,
  fetchSource,
  fetchSymbols,
  fetchTickers,
  toSource,
  type RawKline,
  type Source,
  type Ticker,
} from "./api.ts";
import { BarStore, barFromKline } from "./bars.ts";
import { CandleChart } from "./chart.ts";
import { ChartStateView, type ChartState } from "./chart-state.ts";
import { pricePrecision } from "./format.ts";
import { Header } from "./header.ts";
import { INTERVAL_MS, INTERVALS, type Interval } from "./intervals.ts";
import { LatencyWindow } from "./latency.ts";
import { Legend } from "./legend.ts";
import { SymbolList } from "./sidebar.ts";
import {
  LiveSocket,
  type Connection,
  type KlineMessage,
  type ServerMessage,
  type TickerMessage,
} from "./socket.ts";
import { StatusBar } from "./statusbar.ts";
import { DEFAULT_SYMBOL, replaceUrl, viewFromSearch } from "./url.ts";

/** What browser tests read from `window.__cryptochart`. */
export interface Snapshot {
  symbol: string;
  interval: Interval;
  lastPrice: Record<string, string>;
  /** `time` is the bar's open time in Unix seconds (the chart's axis); prices as drawn. */
  lastBar: { time: number; open: number; high: number; low: number; close: number } | null;
  barCount: number;
  connection: Connection;
  latencyP50Ms: number | null;
  source: Source;
  symbols: string[];
  chartState: ChartState;
}

const RETRY_MS = [1_000, 2_000, 4_000, 8_000, 15_000];
const META_RETRY_MS = 5_000;
const OLDER_RETRY_MS = 5_000;
// Live ticker frames carry price and change only; high, low, volume and new symbols come from REST.
const META_REFRESH_MS = 30_000;
// The REST side is fed from the database, a moment behind the live stream; let it catch up.
const HOLE_FILL_DELAY_MS = 1_500;
// Quiet markets can leave real holes at 1s; do not ask about each one.
const HOLE_FILL_SPACING_MS = 5_000;

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;

export class App {
  private symbol: string;
  private interval: Interval;
  private readonly symbolGiven: boolean;
  private symbols: string[] = [];
  /** Newest known price per symbol, from whichever frame was newest. */
  private readonly prices = new Map<string, { price: string; at: number }>();
  private readonly changes = new Map<string, string>();
  private readonly stats = new Map<string, Ticker>();
  private metaLoading = false;
  private source: Source = "unknown";
  private connection: Connection = "connecting";
  private readonly latency = new LatencyWindow(60_000);
  private readonly store = new BarStore();

  /** Bumped on every switch, so answers for what is no longer shown are dropped. */
  private generation = 0;
  /** While a REST load for the chart is in flight, live klines wait here, then apply in order. */
  private buffering = true;
  private pending: RawKline[] = [];
  private loadingOlder = false;
  private olderExhausted = false;
  private olderRetryAt = 0;
  private loadAttempt = 0;
  private retryTimer: number | undefined;
  private hoverTime: number | null = null;
  private holeFilling = false;
  private lastHoleFillAt = 0;

  private readonly header = new Header();
  private readonly statusBar = new StatusBar();
  private readonly legend = new Legend($("legend"));
  private readonly chartState: ChartStateView;
  private readonly chart: CandleChart;
  private readonly sidebar: SymbolList;
  private readonly socket: LiveSocket;
  private readonly toast = $("toast");
  private toastTimer: number | undefined;

  constructor() {
    const view = viewFromSearch(location.search);
    this.symbol = view.symbol;
    this.interval = view.interval;
    this.symbolGiven = view.symbolGiven;

    this.chart = new CandleChart($("chart"), {
      hover: (time) => {
        this.hoverTime = time;
        this.renderLegend();
      },
      nearOldest: () => void this.loadOlder(),
    });
    this.chartState = new ChartStateView($("chart-state"), {
      retryNow: () => void this.loadChart(),
      open: (symbol) => this.select(symbol, this.interval),
    });
    this.sidebar = new SymbolList(
      $("symbol-list"),
      $<HTMLInputElement>("symbol-search"),
      $("symbol-list-empty"),
      (symbol) => this.select(symbol, this.interval),
    );
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.socket = new LiveSocket(`${scheme}://${location.host}/ws`, {
      message: (message) => this.onMessage(message),
      connection: (state, retryAt) => this.onConnection(state, retryAt),
    });
  }

  start(): void {
    this.buildIntervalSwitcher();
    this.bindKeys();
    this.showView();
    this.socket.start();
    void this.loadChart();
    void this.loadMeta();
    const tick = () => {
      const now = Date.now();
      this.header.setLatency(this.latency.p50(now));
      this.header.tick(now);
      this.chartState.tick(now);
      this.statusBar.tick(now);
    };
    tick();
    window.setInterval(tick, 1000);
    window.setInterval(() => void this.loadMeta(), META_REFRESH_MS);
  }

  snapshot(): Snapshot {
    const last = this.store.last;
    const p50 = this.latency.p50(Date.now());
    return {
      symbol: this.symbol,
      interval: this.interval,
      lastPrice: Object.fromEntries([...this.prices].map(([symbol, p]) => [symbol, p.price])),
      lastBar: last
        ? { time: last.time, open: last.open, high: last.high, low: last.low, close: last.close }
        : null,
      barCount: this.store.size,
      connection: this.connection,
      latencyP50Ms: p50 === null ? null : Math.round(p50),
      source: this.source,
      symbols: [...this.symbols],
      chartState: this.chartState.current,
    };
  }

  /** Switch what the chart shows; the address bar follows. */
  select(symbol: string, interval: Interval): void {
    if (
      symbol === this.symbol &&
      interval === this.interval &&
      this.chartState.current !== "unknown-symbol"
    ) {
      return;
    }
    this.symbol = symbol;
    this.interval = interval;
    this.showView();
    void this.loadChart();
  }

  private showView(): void {
    replaceUrl(this.symbol, this.interval);
    this.header.setView(this.symbol, this.interval);
    this.header.setQuote(this.prices.get(this.symbol)?.price, this.changes.get(this.symbol));
    this.header.setStats(this.stats.get(this.symbol));
    this.sidebar.setSelected(this.symbol);
    for (const button of document.querySelectorAll<HTMLButtonElement>("[data-interval]")) {
      const on = button.dataset.interval === this.interval;
      button.classList.toggle("active", on);
      button.setAttribute("aria-pressed", String(on));
    }
    this.updateTitle();
  }

  // ---- chart data -------------------------------------------------------------------------

  /** Load the newest candles of the current view from REST; live klines are held until then. */
  private async loadChart(): Promise<void> {
    const generation = ++this.generation;
    const { symbol, interval } = this;
    window.clearTimeout(this.retryTimer);
    this.buffering = true;
    this.pending = [];
    this.loadingOlder = false;
    this.olderExhausted = false;
    this.olderRetryAt = 0;
    this.hoverTime = null;
    this.store.clear();
    this.chart.clear();
    this.renderLegend();
    this.renderBarCount();
    this.chartState.set("loading", { symbol, interval });
    this.socket.followKlines(symbol, interval);

    let klines: RawKline[];
    try {
      klines = await fetchKlines(symbol, interval, { limit: KLINES_MAX_LIMIT });
    } catch (error) {
      if (generation !== this.generation) return;
      this.onLoadFailed(error, generation);
      return;
    }
    if (generation !== this.generation) return;
    this.loadAttempt = 0;
    const bars = klines.map(barFromKline);
    this.store.reset(bars);
    this.olderExhausted = klines.length < KLINES_MAX_LIMIT;
    this.chart.show(
      this.store.bars,
      interval,
      pricePrecision(klines.slice(-200).flatMap((k) => [k[1], k[2], k[3], k[4]])),
    );
    this.flushPending();
    this.chartState.set(this.store.size > 0 ? "ready" : "empty", { symbol, interval });
    this.renderLegend();
    this.renderBarCount();
  }

  private onLoadFailed(error: unknown, generation: number): void {
    const { symbol, interval } = this;
    this.buffering = false;
    if (error instanceof ApiRejected) {
      const unknownSymbol = (error.status === 400 || error.status === 404) && error.names("symbol");
      const suggestion =
        this.symbols.find((s) => s !== symbol) ??
        (symbol !== DEFAULT_SYMBOL ? DEFAULT_SYMBOL : undefined);
      this.chartState.set(unknownSymbol ? "unknown-symbol" : "rejected", {
        symbol,
        interval,
        detail: error.detail,
        ...(suggestion !== undefined && { suggestion }),
      });
      return;
    }
    const delay = RETRY_MS[Math.min(this.loadAttempt, RETRY_MS.length - 1)]!;
    this.loadAttempt++;
    this.chartState.set("api-down", { symbol, interval, retryAt: Date.now() + delay });
    this.retryTimer = window.setTimeout(() => {
      if (generation === this.generation) void this.loadChart();
    }, delay);
  }

  /**
   * After the socket (re)opens: fetch what was missed while it was down, from the newest bar on.
   */
  private async fillGap(): Promise<void> {
    const last = this.store.last;
    if (this.buffering || last === undefined) return;
    const generation = this.generation;
    const { symbol, interval } = this;
    this.buffering = true;
    this.pending = [];
    let klines: RawKline[];
    try {
      klines = await fetchKlines(symbol, interval, {
        startTime: last.time * 1000,
        limit: KLINES_MAX_LIMIT,
      });
    } catch {
      klines = [];
    }
    if (generation !== this.generation) return;
    if (klines.length >= KLINES_MAX_LIMIT) {
      // Down for longer than one page of bars: start over rather than page forwards.
      void this.loadChart();
      return;
    }
    for (const k of klines) this.applyKline(k);
    this.flushPending();
  }

  /**
   * A live bar arrived more than one interval after the newest one: fetch the bars in between,
   * once. Quiet markets may really have no bar there, so an empty answer is left alone.
   */
  private scheduleHoleFill(afterTime: number, beforeTime: number): void {
    if (this.holeFilling || Date.now() - this.lastHoleFillAt < HOLE_FILL_SPACING_MS) return;
    this.holeFilling = true;
    this.lastHoleFillAt = Date.now();
    const generation = this.generation;
    const { symbol, interval } = this;
    const fill = async (): Promise<void> => {
      try {
        const klines = await fetchKlines(symbol, interval, {
          startTime: afterTime * 1000 + INTERVAL_MS[interval],
          endTime: beforeTime * 1000 - 1,
          limit: KLINES_MAX_LIMIT,
        });
        const missing = klines.map(barFromKline).filter((b) => this.store.at(b.time) === undefined);
        if (generation === this.generation && this.store.merge(missing) > 0) {
          this.chart.setAll(this.store.bars);
          this.renderBarCount();
        }
      } catch {
        // The gap stays; the next reconnect or reload fills it.
      } finally {
        this.holeFilling = false;
      }
    };
    window.setTimeout(() => void fill(), HOLE_FILL_DELAY_MS);
  }

  private flushPending(): void {
    this.buffering = false;
    const pending = this.pending;
    this.pending = [];
    for (const k of pending) this.applyKline(k);
  }

  /** Scrolled near the oldest bar: prepend the page before it. */
  private async loadOlder(): Promise<void> {
    const first = this.store.first;
    if (this.loadingOlder || this.olderExhausted || this.buffering || first === undefined) return;
    if (Date.now() < this.olderRetryAt) return;
    const generation = this.generation;
    const { symbol, interval } = this;
    this.loadingOlder = true;
    this.renderBarCount();
    try {
      const klines = await fetchKlines(symbol, interval, {
        endTime: first.time * 1000 - 1,
        limit: KLINES_MAX_LIMIT,
      });
      if (generation !== this.generation) return;
      if (klines.length < KLINES_MAX_LIMIT) this.olderExhausted = true;
      if (this.store.prepend(klines.map(barFromKline)) > 0) this.chart.setAll(this.store.bars);
    } catch {
      // Scrolling again retries, a little later; the live chart is unaffected.
      this.olderRetryAt = Date.now() + OLDER_RETRY_MS;
    } finally {
      if (generation === this.generation) {
        this.loadingOlder = false;
        this.renderBarCount();
        // Zoomed far out, one page may not reach past the margin: keep going while it does not.
        requestAnimationFrame(() => {
          if (generation === this.generation && this.chart.isNearOldest()) void this.loadOlder();
        });
      }
    }
  }

  /** One live or gap-fill kline of the current view: update the last bar or append a new one. */
  private applyKline(k: RawKline): void {
    if (this.buffering) {
      this.pending.push(k);
      return;
    }
    const bar = barFromKline(k);
    const previous = this.store.last;
    const result = this.store.upsert(bar);
    if (result === "stale") return;
    if (previous !== undefined && bar.time - previous.time > INTERVAL_MS[this.interval] / 1000) {
      this.scheduleHoleFill(previous.time, bar.time);
    }
    this.chart.update(bar);
    if (this.store.size === 1) this.chart.setPrecision(pricePrecision([k[1], k[2], k[3], k[4]]));
    if (this.chartState.current === "empty") {
      this.chartState.set("ready", { symbol: this.symbol, interval: this.interval });
    }
    if (result === "appended") this.renderBarCount();
    if (this.hoverTime === null || this.hoverTime === bar.time) this.renderLegend();
  }

  // ---- sidebar data -----------------------------------------------------------------------

  /** Symbols, their tickers and the data source; retried soon until a first list arrives. */
  private async loadMeta(): Promise<void> {
    if (this.metaLoading) return;
    this.metaLoading = true;
    // Only the symbol list is essential; tickers and the source also arrive over the socket.
    const optional = <T>(promise: Promise<T>): Promise<T | undefined> =>
      promise.catch(() => undefined);
    try {
      const [symbols, tickers, source] = await Promise.all([
        fetchSymbols(),
        optional(fetchTickers()),
        optional(fetchSource()),
      ]);
      if (source !== undefined) this.setSource(source);
      this.symbols = symbols.map((s) => s.symbol);
      this.sidebar.setSymbols(this.symbols);
      for (const s of symbols) this.setPrice(s.symbol, s.price, s.lastTime);
      for (const t of tickers ?? []) this.setTicker(t);
      this.socket.followTickers(this.symbols);
      $("symbol-count").textContent = String(this.symbols.length);
      if (
        !this.symbolGiven &&
        !this.symbols.includes(this.symbol) &&
        this.symbols[0] !== undefined
      ) {
        this.select(this.symbols[0], this.interval);
      }
    } catch {
      if (this.symbols.length === 0) this.sidebar.setPlaceholder("Waiting for the API…");
    } finally {
      this.metaLoading = false;
    }
    if (this.symbols.length === 0) window.setTimeout(() => void this.loadMeta(), META_RETRY_MS);
  }

  private setTicker(ticker: Ticker): void {
    this.stats.set(ticker.symbol, ticker);
    this.setPrice(ticker.symbol, ticker.lastPrice, ticker.closeTime);
    this.setChange(ticker.symbol, ticker.priceChangePercent);
    if (ticker.symbol === this.symbol) this.header.setStats(ticker);
  }

  private setPrice(symbol: string, price: string, at: number): void {
    const known = this.prices.get(symbol);
    if (known !== undefined && at < known.at) return;
    this.prices.set(symbol, { price, at });
    this.sidebar.setPrice(symbol, price);
    if (symbol === this.symbol) {
      this.header.setQuote(price, undefined);
      this.updateTitle();
    }
  }

  private setChange(symbol: string, percent: string | undefined): void {
    if (percent === undefined) return;
    this.changes.set(symbol, percent);
    this.sidebar.setChange(symbol, percent);
    if (symbol === this.symbol) this.header.setQuote(undefined, percent);
  }

  private setSource(source: Source): void {
    this.source = source;
    this.header.setSource(source);
    this.statusBar.setSource(source);
  }

  // ---- socket -----------------------------------------------------------------------------

  private onConnection(state: Connection, retryAt: number | null): void {
    this.connection = state;
    this.header.setConnection(state, retryAt);
    if (state !== "open") return;
    const shown = this.chartState.current;
    if (shown === "ready" || shown === "empty") void this.fillGap();
    else if (shown === "api-down") void this.loadChart();
    if (this.symbols.length === 0) void this.loadMeta();
  }

  private onMessage(message: ServerMessage): void {
    switch (message.type) {
      case "kline":
        this.onKline(message);
        break;
      case "ticker":
        this.onTicker(message);
        break;
      case "status":
        this.setSource(toSource(message.source));
        break;
      case "error":
        console.warn("server error", message);
        // While the chart explains a failed load itself, a second voice would only repeat it.
        if (this.chartState.current === "ready" || this.chartState.current === "empty") {
          this.showToast(message.detail ? `${message.error}: ${message.detail}` : message.error);
        }
        break;
      case "pong":
        break;
    }
  }

  private onKline(message: KlineMessage): void {
    this.sampleLatency(message);
    this.setPrice(message.symbol, message.k[4], message.eventTime);
    if (message.symbol === this.symbol && message.interval === this.interval) {
      this.applyKline(message.k);
    }
  }

  private onTicker(message: TickerMessage): void {
    this.sampleLatency(message);
    this.setPrice(message.symbol, message.lastPrice, message.eventTime);
    this.setChange(message.symbol, message.priceChangePercent);
  }

  private sampleLatency(message: KlineMessage | TickerMessage): void {
    if (!message.snapshot) this.latency.add(Date.now() - message.eventTime, Date.now());
  }

  // ---- small views ------------------------------------------------------------------------

  private renderLegend(): void {
    const hovered = this.hoverTime !== null ? this.store.at(this.hoverTime) : undefined;
    this.legend.show(hovered ?? this.store.last, this.interval, hovered !== undefined);
  }

  private renderBarCount(): void {
    this.statusBar.setBars(
      this.store.size,
      this.loadingOlder,
      this.olderExhausted && this.store.size > 0,
    );
  }

  private updateTitle(): void {
    const price = this.prices.get(this.symbol)?.price;
    document.title = price
      ? `${price} · ${this.symbol} · cryptochart`
      : `${this.symbol} · cryptochart`;
  }

  private showToast(text: string): void {
    this.toast.textContent = text;
    this.toast.hidden = false;
    window.clearTimeout(this.toastTimer);
    this.toastTimer = window.setTimeout(() => (this.toast.hidden = true), 6000);
  }

  private buildIntervalSwitcher(): void {
    const bar = $("intervals");
    for (const interval of INTERVALS) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "interval";
      button.textContent = interval;
      button.dataset.interval = interval;
      button.dataset.testid = `interval-${interval}`;
      button.title = `${interval} candles`;
      button.addEventListener("click", () => this.select(this.symbol, interval));
      bar.append(button);
    }
  }

  private bindKeys(): void {
    document.addEventListener("keydown", (event) => {
      const typing = event.target instanceof HTMLInputElement;
      if (event.key === "/" && !typing) {
        event.preventDefault();
        this.sidebar.focusSearch();
      }
    });
  }
}
