/**
 * The header: what is shown, its price, the connection, the latency, and the simulated-data
 * banner.
 */
import type { Source, Ticker } from "./api.ts";
import { direction, formatChangePercent, formatDecimal } from "./format.ts";
import type { Interval } from "./intervals.ts";
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

  setView(symbol: string, interval: Interval): void {
    this.symbol.textContent = symbol;
    this.interval.textContent = interval;
    this.price.textContent = "";
    this.change.textContent = "";
    this.stats.hidden = true;
  }

  /** The 24h high, low and volume of the shown symbol, as the API's ticker wrote them. */
  setStats(ticker: Ticker | undefined): void {
    this.stats.hidden = ticker === undefined;
    if (ticker === undefined) return;
    this.statHigh.textContent = formatDecimal(ticker.highPrice);
    this.statLow.textContent = formatDecimal(ticker.lowPrice);
    this.statVolume.textContent = formatDecimal(ticker.volume);
  }

  setQuote(price: string | undefined, changePercent: string | undefined): void {
    if (price !== undefined) {
      const move = direction(Number(price) - Number(this.price.textContent || price));
      this.price.textContent = formatDecimal(price);
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
