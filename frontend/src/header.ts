/**
 * The header: what is shown, its price, the connection, the latency, and the simulated-data
 * banner.
 */
import type { Source, Ticker } from "./api.ts";
import { direction, formatChangePercent } from "./format.ts";
import type { Interval } from "./intervals.ts";
import { formatPrice, formatQuantity, UNDECLARED, type Sizes } from "./precision.ts";
import type { Connection } from "./socket.ts";

const BANNERS: Partial<Record<Source, string>> = {
  sim: "Simulated data — these prices are generated locally, not traded on an exchange.",
  replay: "Replayed data — recorded klines played back; prices are not live.",
};

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;

export class Header {
  private readonly symbol = $("view-symbol");
  private readonly interval = $("view-interval");
  private readonly price = $("view-price");
  private readonly change = $("view-change");
  private readonly stats = $("view-stats");
  private readonly statHigh = $("stat-high");
  private readonly statLow = $("stat-low");
  private readonly statVolume = $("stat-volume");
  private readonly connection = $("connection");
  private readonly connectionText = $("connection-text");
  private readonly latency = $("latency-value");
  private readonly banner = $("source-banner");
  private readonly bannerText = $("source-banner-text");
  private readonly bannerTag = $("source-banner-tag");
  private state: Connection = "connecting";
  private retryAt: number | null = null;
  /** The shown symbol's sizes, and the price and ticker as the API wrote them. */
  private sizes: Sizes = UNDECLARED;
  private lastPrice: string | undefined;
  private ticker: Ticker | undefined;

  setView(symbol: string, interval: Interval): void {
    this.symbol.textContent = symbol;
    this.interval.textContent = interval;
    this.price.textContent = "";
    this.lastPrice = undefined;
    this.change.textContent = "";
    this.stats.hidden = true;
    this.ticker = undefined;
  }

  /** The shown symbol's tick and lot size: its prices and volume are written at them. */
  setSizes(sizes: Sizes): void {
    this.sizes = sizes;
    if (this.lastPrice !== undefined) this.price.textContent = formatPrice(this.lastPrice, sizes);
    this.setStats(this.ticker);
  }

  /** The 24h high, low and volume of the shown symbol, from the API's ticker. */
  setStats(ticker: Ticker | undefined): void {
    this.ticker = ticker;
    this.stats.hidden = ticker === undefined;
    if (ticker === undefined) return;
    this.statHigh.textContent = formatPrice(ticker.highPrice, this.sizes);
    this.statLow.textContent = formatPrice(ticker.lowPrice, this.sizes);
    this.statVolume.textContent = formatQuantity(ticker.volume, this.sizes);
  }

  setQuote(price: string | undefined, changePercent: string | undefined): void {
    if (price !== undefined) {
      const move = direction(Number(price) - Number(this.lastPrice ?? price));
      this.lastPrice = price;
      this.price.textContent = formatPrice(price, this.sizes);
      if (move !== "flat") this.price.dataset.dir = move;
    }
    if (changePercent !== undefined) {
      this.change.textContent = formatChangePercent(changePercent);
      this.change.dataset.dir = direction(Number(changePercent));
    }
  }

  setConnection(state: Connection, retryAt: number | null): void {
    this.state = state;
    this.retryAt = retryAt;
    this.connection.dataset.state = state;
    this.renderConnection(Date.now());
  }

  setLatency(p50: number | null): void {
    this.latency.textContent = p50 === null ? "—" : String(Math.round(p50));
  }

  setSource(source: Source): void {
    const text = BANNERS[source];
    this.banner.hidden = text === undefined;
    this.banner.dataset.source = source;
    this.bannerText.textContent = text ?? "";
    this.bannerTag.textContent = source.toUpperCase();
  }

  /** Once a second: the reconnect countdown. */
  tick(now: number): void {
    if (this.state === "closed") this.renderConnection(now);
  }

  private renderConnection(now: number): void {
    const text =
      this.state === "open"
        ? "live"
        : this.state === "connecting"
          ? "connecting…"
          : `offline · retry in ${Math.max(0, Math.ceil(((this.retryAt ?? now) - now) / 1000))}s`;
    this.connectionText.textContent = text;
    this.connection.title =
      this.state === "open" ? "Live updates over WebSocket" : "Live updates paused; reconnecting";
  }
}
