/**
 * The REST side of the shown view's bars: its newest page (retried while the API is down), older
 * pages as the user scrolls back, the gap after a reconnect, and holes seen among live bars.
 */
import { ApiRejected, KLINES_MAX_LIMIT, type KlineQuery, type RawKline } from "./api.ts";
import { barFromKline, type Bar, type BarStore } from "./bars.ts";
import type { ChartState, ChartStateDetail } from "./chart-state.ts";
import type { Clock } from "./clock.ts";
import { DEFAULT_INTERVAL, INTERVAL_MS, type Interval } from "./intervals.ts";
import type { LiveBars } from "./live.ts";
import { chartPriceFormat, recentPrices, type PriceFormat } from "./precision.ts";
import { DEFAULT_SYMBOL } from "./url.ts";

export type FetchKlines = (
  symbol: string,
  interval: Interval,
  query: KlineQuery,
) => Promise<RawKline[]>;

/** What history draws on: the chart (`CandleChart` in the page). */
export interface HistoryChart {
  /** A new view: all bars at once, scrolled to the newest, prices in `format`. */
  show(bars: readonly Bar[], interval: Interval, format: PriceFormat): void;
  /** The price axis's format changed (the symbol's tick size was declared or changed). */
  setPriceFormat(format: PriceFormat): void;
  /** The same view with more bars, keeping the scroll position. */
  setAll(bars: readonly Bar[]): void;
  clear(): void;
  /** Whether the view reaches within a margin of the oldest bar. */
  isNearOldest(): boolean;
}

export interface HistoryEvents {
  /** What the chart area says (loading, ready, empty, api-down, unknown-symbol, rejected). */
  state(state: ChartState, detail: ChartStateDetail): void;
  /** Follow this view's live klines (a load began). */
  follow(symbol: string, interval: Interval): void;
  /** A load began: the bars and the chart are empty. */
  cleared(): void;
  /** The newest page is shown. */
  loaded(): void;
  /** The number of bars, or whether older ones are loading or all there, changed. */
  counted(): void;
}

export interface HistoryDeps {
  fetchKlines: FetchKlines;
  clock: Clock;
  store: BarStore;
  live: LiveBars;
  chart: HistoryChart;
  /** The listed symbols: one of them is offered in place of an unknown symbol. */
  symbols(): readonly string[];
  /** A symbol's tick size, null while undeclared (its prices then set the chart's format). */
  tickSize(symbol: string): string | null;
  events: HistoryEvents;
}

const RETRY_MS = [1_000, 2_000, 4_000, 8_000, 15_000];
const OLDER_RETRY_MS = 5_000;
// The REST side is fed from the database, a moment behind the live stream; let it catch up.
export const HOLE_FILL_DELAY_MS = 1_500;
// Quiet markets can leave real holes at 1s; do not ask about each one.
export const HOLE_FILL_SPACING_MS = 5_000;
// A fill whose answer lacks the live bar after the hole came before the database had caught up
// with the stream: asked again, spaced as above, this many times in all.
export const HOLE_FILL_TRIES = 4;

export class History {
  private symbol = DEFAULT_SYMBOL;
  private interval: Interval = DEFAULT_INTERVAL;
  private shown: ChartState = "loading";
  /** Bumped on every load, so answers for what is no longer shown are dropped. */
  private generation = 0;
  private loadAttempt = 0;
  private retryTimer: number | undefined;
  private olderLoading = false;
  private olderExhausted = false;
  private olderRetryAt = 0;
  private holeFilling = false;
  private lastHoleFillAt = 0;
  /** Holes seen and not fetched yet, as one span of bar times (seconds). */
  private holeSpan: { after: number; before: number } | null = null;
  /** Fills of the span so far whose answer did not reach its live bar. */
  private holeTries = 0;
  private holeTimer: number | undefined;

  constructor(private readonly deps: HistoryDeps) {}

  get state(): ChartState {
    return this.shown;
  }

  /** Whether a page of older bars is being fetched. */
  get loadingOlder(): boolean {
    return this.olderLoading;
  }

  /** Whether every bar back to the first one is loaded. */
  get complete(): boolean {
    return this.olderExhausted && this.deps.store.size > 0;
  }

  /** Show this view: its newest bars from REST; its live klines are held until they are in. */
  open(symbol: string, interval: Interval): Promise<void> {
    this.symbol = symbol;
    this.interval = interval;
    return this.reload();
  }

  /** Load the newest bars of the current view again, from scratch. */
  async reload(): Promise<void> {
    const { store, live, chart, events, clock } = this.deps;
    const generation = ++this.generation;
    const { symbol, interval } = this;
    clock.clearTimeout(this.retryTimer);
    clock.clearTimeout(this.holeTimer);
    this.holeSpan = null; // holes of the view before
    this.holeTries = 0;
    live.interval = interval;
    live.tickSize = this.deps.tickSize(symbol);
    live.hold();
    this.olderLoading = false;
    this.olderExhausted = false;
    this.olderRetryAt = 0;
    store.clear();
    chart.clear();
    events.cleared();
    this.setState("loading");
    events.follow(symbol, interval);

    let klines: RawKline[];
    try {
      klines = await this.deps.fetchKlines(symbol, interval, { limit: KLINES_MAX_LIMIT });
    } catch (error) {
      if (generation !== this.generation) return;
      this.onLoadFailed(error, generation);
      return;
    }
    if (generation !== this.generation) return;
    this.loadAttempt = 0;
    store.reset(klines.map(barFromKline));
    this.olderExhausted = klines.length < KLINES_MAX_LIMIT;
    chart.show(store.bars, interval, chartPriceFormat(live.tickSize, recentPrices(store.bars)));
    live.release();
    this.setState(store.size > 0 ? "ready" : "empty");
    events.loaded();
  }

  /** The socket (re)opened: fetch what was missed, or retry a load that found the API down. */
  reconnected(): void {
    if (this.shown === "ready" || this.shown === "empty") void this.fillGap();
    else if (this.shown === "api-down") void this.reload();
  }

  /**
   * The listed symbols' sizes were read again: when the shown symbol's tick size was declared or
   * changed, the chart's price format follows (with bars; a first live bar reads it itself).
   */
  sizesChanged(): void {
    const { live, store, chart } = this.deps;
    const tickSize = this.deps.tickSize(this.symbol);
    if (tickSize === live.tickSize) return;
    live.tickSize = tickSize;
    if (store.size > 0) chart.setPriceFormat(chartPriceFormat(tickSize, recentPrices(store.bars)));
  }

  /** The oldest bars were dropped to bound memory: scrolling back loads them again. */
  olderDropped(): void {
    this.olderExhausted = false;
    this.deps.events.counted();
  }

  /** A live bar was drawn: a chart that had none is ready now. */
  liveBarShown(): void {
    if (this.shown === "empty") this.setState("ready");
  }

  /** Fetch the bars from the newest one on (missed while the socket was down) and merge them. */
  async fillGap(): Promise<void> {
    const { store, live } = this.deps;
    const last = store.last;
    if (live.holding || last === undefined) return;
    const generation = this.generation;
    const { symbol, interval } = this;
    live.hold();
    let klines: RawKline[];
    try {
      klines = await this.deps.fetchKlines(symbol, interval, {
        startTime: last.time * 1000,
        limit: KLINES_MAX_LIMIT,
      });
    } catch {
      klines = [];
    }
    if (generation !== this.generation) return;
    if (klines.length >= KLINES_MAX_LIMIT) {
      // Down for longer than one page of bars: start over rather than page forwards.
      void this.reload();
      return;
    }
    // The gap first: a live frame held meanwhile is newer, and would make these look stale.
    live.release(klines);
  }

  /**
   * A live bar arrived more than one interval after the newest one: fetch the bars in between,
   * and that live bar with them. Quiet markets may really have no bar in between, so an answer
   * that holds the live bar is final, empty or not; one without it came from a database still
   * behind the stream, and the span is asked again (up to {@link HOLE_FILL_TRIES} fills). Fills
   * are spaced out: holes seen while one is on its way, or soon after, wait and are fetched
   * together as one span (never forgotten).
   */
  fillHole(afterTime: number, beforeTime: number): void {
    const { clock } = this.deps;
    this.keepHole({ after: afterTime, before: beforeTime });
    if (this.holeFilling) return; // the fill on its way schedules the next one when it ends
    clock.clearTimeout(this.holeTimer);
    const spacing = this.lastHoleFillAt + HOLE_FILL_SPACING_MS - clock.now();
    this.holeTimer = clock.setTimeout(
      () => void this.fillHoles(),
      Math.max(HOLE_FILL_DELAY_MS, spacing),
    );
  }

  /** Add a span to the holes waiting for a fill. */
  private keepHole(span: { after: number; before: number }): void {
    const kept = this.holeSpan;
    this.holeSpan = {
      after: Math.min(span.after, kept?.after ?? span.after),
      before: Math.max(span.before, kept?.before ?? span.before),
    };
  }

  private async fillHoles(): Promise<void> {
    const { clock, store, chart, events } = this.deps;
    const span = this.holeSpan;
    if (span === null) return;
    this.holeSpan = null;
    this.holeFilling = true;
    this.lastHoleFillAt = clock.now();
    const generation = this.generation;
    const { symbol, interval } = this;
    try {
      const step = INTERVAL_MS[interval];
      const klines = await this.deps.fetchKlines(symbol, interval, {
        startTime: span.after * 1000 + step,
        endTime: span.before * 1000 + step - 1,
        limit: KLINES_MAX_LIMIT,
      });
      const bars = klines.map(barFromKline);
      const missing = bars.filter((b) => store.at(b.time) === undefined);
      if (generation === this.generation && store.merge(missing) > 0) {
        chart.setAll(store.bars);
        events.counted();
      }
      const caughtUp = bars.some((b) => b.time === span.before);
      if (!caughtUp && ++this.holeTries < HOLE_FILL_TRIES && generation === this.generation) {
        this.keepHole(span);
      } else {
        this.holeTries = 0;
      }
    } catch {
      // The gap stays; the next reconnect or reload fills it. A later span starts its own count.
      this.holeTries = 0;
    } finally {
      this.holeFilling = false;
    }
    const next = this.holeSpan as { after: number; before: number } | null;
    if (next !== null) this.fillHole(next.after, next.before);
  }

  /** Scrolled near the oldest bar: prepend the page before it. */
  async loadOlder(): Promise<void> {
    const { clock, store, live, chart, events } = this.deps;
    const first = store.first;
    if (this.olderLoading || this.olderExhausted || live.holding || first === undefined) return;
    if (clock.now() < this.olderRetryAt) return;
    const generation = this.generation;
    const { symbol, interval } = this;
    this.olderLoading = true;
    events.counted();
    try {
      const klines = await this.deps.fetchKlines(symbol, interval, {
        endTime: first.time * 1000 - 1,
        limit: KLINES_MAX_LIMIT,
      });
      if (generation !== this.generation) return;
      if (klines.length < KLINES_MAX_LIMIT) this.olderExhausted = true;
      if (store.prepend(klines.map(barFromKline)) > 0) chart.setAll(store.bars);
    } catch {
      // Scrolling again retries, a little later; the live chart is unaffected.
      this.olderRetryAt = clock.now() + OLDER_RETRY_MS;
    } finally {
      if (generation === this.generation) {
        this.olderLoading = false;
        events.counted();
        // Zoomed far out, one page may not reach past the margin: keep going while it does not.
        clock.nextFrame(() => {
          if (generation === this.generation && chart.isNearOldest()) void this.loadOlder();
        });
      }
    }
  }

  private onLoadFailed(error: unknown, generation: number): void {
    this.deps.live.discard();
    const { symbol } = this;
    if (error instanceof ApiRejected) {
      const unknownSymbol = (error.status === 400 || error.status === 404) && error.names("symbol");
      const suggestion =
        this.deps.symbols().find((s) => s !== symbol) ??
        (symbol !== DEFAULT_SYMBOL ? DEFAULT_SYMBOL : undefined);
      this.setState(unknownSymbol ? "unknown-symbol" : "rejected", {
        detail: error.detail,
        ...(suggestion !== undefined && { suggestion }),
      });
      return;
    }
    const delay = RETRY_MS[Math.min(this.loadAttempt, RETRY_MS.length - 1)]!;
    this.loadAttempt++;
    const { clock } = this.deps;
    this.setState("api-down", { retryAt: clock.now() + delay });
    this.retryTimer = clock.setTimeout(() => {
      if (generation === this.generation) void this.reload();
    }, delay);
  }

  private setState(
    state: ChartState,
    extra: Omit<ChartStateDetail, "symbol" | "interval"> = {},
  ): void {
    this.shown = state;
    this.deps.events.state(state, { symbol: this.symbol, interval: this.interval, ...extra });
  }
}
