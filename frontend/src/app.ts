/**
 * The page: the DOM views wired to the parts that hold its logic ({@link History} for the chart's
 * REST bars, {@link LiveBars} for its live ones, {@link Market} for the sidebar and header,
 * {@link LiveSocket} for the WebSocket), which get their data, clock and chart passed in.
 */
import {
  fetchKlines,
  fetchSource,
  fetchSymbols,
  fetchTickers,
  toSource,
  type Source,
} from "./api.ts";
import { BarStore } from "./bars.ts";
import { CandleChart } from "./chart.ts";
import { ChartStateView, type ChartState } from "./chart-state.ts";
import { browserClock } from "./clock.ts";
import { Drawer } from "./drawer.ts";
import { Header } from "./header.ts";
import { History } from "./history.ts";
import { IndicatorMenu } from "./indicator-menu.ts";
import type { IndicatorSpec } from "./indicators/types.ts";
import { INTERVALS, type Interval } from "./intervals.ts";
import { LatencyWindow } from "./latency.ts";
import { Legend } from "./legend.ts";
import { LiveBars } from "./live.ts";
import { Market } from "./market.ts";
import type { PriceFormat, Sizes } from "./precision.ts";
import { SymbolList } from "./sidebar.ts";
import {
  LiveSocket,
  type Connection,
  type KlineMessage,
  type ServerMessage,
  type TickerMessage,
} from "./socket.ts";
import { StatusBar } from "./statusbar.ts";
import { replaceUrl, viewFromSearch } from "./url.ts";
import { VisibleSeconds } from "./visible-seconds.ts";

/** What browser tests read from `window.__cryptochart`. */
export interface Snapshot {
  symbol: string;
  interval: Interval;
  lastPrice: Record<string, string>;
  /** `time` is the bar's open time in Unix seconds (the chart's axis); prices as drawn. */
  lastBar: { time: number; open: number; high: number; low: number; close: number } | null;
  /** The oldest bar's open time in Unix seconds. */
  firstBarTime: number | null;
  barCount: number;
  connection: Connection;
  latencyP50Ms: number | null;
  source: Source;
  symbols: string[];
  chartState: ChartState;
  /** The indicators on, as the address names them: ["sma20", "rsi14"]. */
  indicators: string[];
  /** The visible candles' stored 1s klines and the seconds they should hold (status bar). */
  visibleSeconds: { stored: number; expected: number; uncounted: number } | null;
  /** The price axis's decimals and step: the symbol's tick size, or a guess from its prices. */
  priceFormat: PriceFormat;
}

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;

export class App {
  private symbol: string;
  private interval: Interval;
  private indicators: IndicatorSpec[];
  private readonly symbolGiven: boolean;
  private connection: Connection = "connecting";
  private hoverTime: number | null = null;
  private readonly clock = browserClock;
  private readonly latency = new LatencyWindow(60_000);
  private readonly store = new BarStore();

  private readonly header = new Header();
  private readonly statusBar = new StatusBar();
  private readonly legend = new Legend($("legend"));
  private readonly chartState: ChartStateView;
  private readonly chart: CandleChart;
  private readonly sidebar: SymbolList;
  private readonly drawer = new Drawer(
    $<HTMLButtonElement>("sidebar-toggle"),
    $("sidebar"),
    $("drawer-backdrop"),
    document,
  );
  private readonly socket: LiveSocket;
  private readonly live: LiveBars;
  private readonly history: History;
  private readonly market: Market;
  private readonly indicatorMenu: IndicatorMenu;
  private readonly seconds: VisibleSeconds;
  private readonly toast = $("toast");
  private toastTimer: number | undefined;
  /** Said once the page is up: what the address asked for that could not be shown. */
  private pendingToast: string | null = null;

  constructor() {
    const view = viewFromSearch(location.search);
    this.symbol = view.symbol;
    this.interval = view.interval;
    this.symbolGiven = view.symbolGiven;
    this.indicators = view.indicators;

    this.chart = new CandleChart(
      $("chart"),
      {
        hover: (time) => {
          this.hoverTime = time;
          this.renderLegend();
        },
        nearOldest: () => void this.history.loadOlder(),
        scrolled: () => this.seconds.changed(),
      },
      () => this.clock.now(),
    );
    this.indicatorMenu = new IndicatorMenu(
      {
        toggle: $<HTMLButtonElement>("indicator-toggle"),
        count: $("indicator-count"),
        menu: $("indicator-menu"),
        options: $("indicator-options"),
        form: $<HTMLFormElement>("indicator-add"),
        input: $<HTMLInputElement>("indicator-input"),
        error: $("indicator-error"),
      },
      (specs) => this.setIndicators(specs),
    );
    if (view.ignoredIndicators.length > 0) {
      console.warn("indicators ignored in the address:", view.ignoredIndicators);
      this.pendingToast = `Ignored in the address: ${view.ignoredIndicators.join("; ")}`;
    }
    this.chartState = new ChartStateView($("chart-state"), {
      retryNow: () => void this.history.reload(),
      open: (symbol) => this.select(symbol, this.interval),
    });
    this.sidebar = new SymbolList(
      $("symbol-list"),
      $<HTMLInputElement>("symbol-search"),
      $("symbol-list-empty"),
      (symbol) => {
        this.drawer.set(false);
        this.select(symbol, this.interval);
      },
      (symbol) => this.sizes(symbol),
    );
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.socket = new LiveSocket(`${scheme}://${location.host}/ws`, {
      message: (message) => this.onMessage(message),
      connection: (state, retryAt) => this.onConnection(state, retryAt),
    });
    this.live = new LiveBars(this.store, this.chart, {
      hole: (after, before) => this.history.fillHole(after, before),
      dropped: () => this.history.olderDropped(),
      drawn: (bar, result) => {
        this.history.liveBarShown();
        if (result === "appended") this.renderBarCount();
        if (this.hoverTime === null || this.hoverTime === bar.time) this.renderLegend();
      },
    });
    this.history = new History({
      fetchKlines,
      clock: this.clock,
      store: this.store,
      live: this.live,
      chart: this.chart,
      symbols: () => this.market.symbols,
      tickSize: (symbol) => this.sizes(symbol).tickSize,
      events: {
        state: (state, detail) => {
          if (state !== "loading") this.chart.reveal();
          this.chartState.set(state, detail);
        },
        follow: (symbol, interval) => this.socket.followKlines(symbol, interval),
        cleared: () => {
          this.hoverTime = null;
          this.renderLegend();
          this.renderBarCount();
        },
        loaded: () => {
          this.renderLegend();
          this.renderBarCount();
        },
        counted: () => this.renderBarCount(),
      },
    });
    this.market = new Market({
      fetchSymbols,
      fetchTickers: () => fetchTickers(),
      fetchSource,
      clock: this.clock,
      events: {
        listed: (symbols) => this.sidebar.setSymbols(symbols),
        refreshed: (symbols) => this.onSymbols(symbols),
        unavailable: () => this.sidebar.setPlaceholder("Waiting for the API…"),
        price: (symbol, price) => {
          this.sidebar.setPrice(symbol, price);
          if (symbol === this.symbol) {
            this.header.setQuote(price, undefined);
            this.updateTitle();
          }
        },
        change: (symbol, percent) => {
          this.sidebar.setChange(symbol, percent);
          if (symbol === this.symbol) this.header.setQuote(undefined, percent);
        },
        stats: (ticker) => {
          if (ticker.symbol === this.symbol) this.header.setStats(ticker);
        },
        source: (source) => {
          this.header.setSource(source);
          this.statusBar.setSource(source);
        },
      },
    });
    this.seconds = new VisibleSeconds({
      store: this.store,
      chart: this.chart,
      interval: () => this.interval,
      now: () => this.clock.now(),
      show: (figure) => this.statusBar.setCompleteness(figure),
    });
  }

  start(): void {
    this.buildIntervalSwitcher();
    this.bindKeys();
    this.setIndicators(this.indicators);
    this.showView();
    if (this.pendingToast !== null) this.showToast(this.pendingToast);
    this.socket.start();
    void this.history.open(this.symbol, this.interval);
    this.market.start();
    const tick = () => {
      const now = this.clock.now();
      this.header.setLatency(this.latency.p50(now));
      this.header.tick(now);
      this.chartState.tick(now);
      this.statusBar.tick(now);
      // The forming candle closes with time: what it should hold grows to its whole interval.
      this.seconds.changed();
    };
    tick();
    this.clock.setInterval(tick, 1000);
  }

  snapshot(): Snapshot {
    const last = this.store.last;
    const p50 = this.latency.p50(this.clock.now());
    return {
      symbol: this.symbol,
      interval: this.interval,
      lastPrice: this.market.lastPrices(),
      lastBar: last
        ? { time: last.time, open: last.open, high: last.high, low: last.low, close: last.close }
        : null,
      firstBarTime: this.store.first?.time ?? null,
      barCount: this.store.size,
      connection: this.connection,
      latencyP50Ms: p50 === null ? null : Math.round(p50),
      source: this.market.source,
      symbols: [...this.market.symbols],
      chartState: this.chartState.current,
      indicators: this.indicators.map((s) => s.id),
      visibleSeconds: this.seconds.current(),
      priceFormat: this.chart.priceFormat,
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
    void this.history.open(symbol, interval);
  }

  /** Show these indicators (a menu change, or the address at start); the address follows. */
  setIndicators(specs: IndicatorSpec[]): void {
    this.indicators = specs;
    this.chart.setIndicators(specs, this.store.bars);
    this.indicatorMenu.set(specs);
    replaceUrl(this.symbol, this.interval, specs);
    this.renderLegend();
  }

  private showView(): void {
    replaceUrl(this.symbol, this.interval, this.indicators);
    this.header.setView(this.symbol, this.interval);
    this.header.setSizes(this.sizes(this.symbol));
    this.header.setQuote(this.market.priceOf(this.symbol), this.market.changeOf(this.symbol));
    this.header.setStats(this.market.statsOf(this.symbol));
    this.sidebar.setSelected(this.symbol);
    for (const button of document.querySelectorAll<HTMLButtonElement>("[data-interval]")) {
      const on = button.dataset.interval === this.interval;
      button.classList.toggle("active", on);
      button.setAttribute("aria-pressed", String(on));
    }
    this.updateTitle();
  }

  /**
   * A REST refresh of the symbol list is in: their sizes applied, their tickers followed; no
   * symbol asked, the first.
   */
  private onSymbols(symbols: readonly string[]): void {
    // The sizes were read again: a tick or lot size declared (or changed) since is applied.
    this.header.setSizes(this.sizes(this.symbol));
    this.sidebar.rewritePrices();
    this.history.sizesChanged();
    this.renderLegend();
    this.socket.followTickers(symbols);
    $("symbol-count").textContent = String(symbols.length);
    if (!this.symbolGiven && !symbols.includes(this.symbol) && symbols[0] !== undefined) {
      this.select(symbols[0], this.interval);
    }
  }

  // ---- socket -----------------------------------------------------------------------------

  private onConnection(state: Connection, retryAt: number | null): void {
    this.connection = state;
    this.header.setConnection(state, retryAt);
    if (state !== "open") return;
    this.history.reconnected();
    if (this.market.symbols.length === 0) void this.market.load();
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
        this.market.setSource(toSource(message.source));
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
    this.market.setPrice(message.symbol, message.k[4], message.eventTime);
    if (message.symbol === this.symbol && message.interval === this.interval) {
      this.live.apply(message.k);
    }
  }

  private onTicker(message: TickerMessage): void {
    this.sampleLatency(message);
    this.market.setPrice(message.symbol, message.lastPrice, message.eventTime);
    this.market.setChange(message.symbol, message.priceChangePercent);
  }

  private sampleLatency(message: KlineMessage | TickerMessage): void {
    if (!message.snapshot) this.latency.add(this.clock.now() - message.eventTime, this.clock.now());
  }

  // ---- small views ------------------------------------------------------------------------

  private renderLegend(): void {
    const hovered = this.hoverTime !== null ? this.store.at(this.hoverTime) : undefined;
    const bar = hovered ?? this.store.last;
    const sizes = this.sizes(this.symbol);
    this.legend.show(bar, this.interval, hovered !== undefined, this.clock.now(), sizes);
    const studies = bar === undefined ? [] : this.chart.studies.valuesAt(bar.time);
    this.legend.showStudies(studies, this.chart.pricePrecision);
  }

  private renderBarCount(): void {
    this.statusBar.setBars(this.store.size, this.history.loadingOlder, this.history.complete);
  }

  /** A symbol's tick and lot size as last listed (undeclared until then). */
  private sizes(symbol: string): Sizes {
    return this.market.sizesOf(symbol);
  }

  private updateTitle(): void {
    const price = this.market.priceOf(this.symbol);
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
