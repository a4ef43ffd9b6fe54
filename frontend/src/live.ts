/**
 * Live kline frames of the shown view, merged into its bars: held back while a REST load is in
 * flight and then applied in order; each frame updates the newest bar or appends one. The bars
 * kept are capped (a 1s view left open for a day would pile up 86,400): past the cap the oldest
 * go, a batch at a time, never those in view; scrolling back loads them again.
 */
import type { RawKline } from "./api.ts";
import { barFromKline, sameCandle, type Bar, type BarStore } from "./bars.ts";
import { INTERVAL_MS, type Interval } from "./intervals.ts";
import { chartPriceFormat, type PriceFormat } from "./precision.ts";

/**
 * Bars kept at most, once a batch of {@link DROP_BATCH} more has piled up on top: nearly three
 * hours of 1s bars, a week of 1m ones (older ones load again when scrolled to).
 */
export const BAR_CAP = 10_000;
/**
 * Dropping is a redraw of every series (each re-set whole, garbage for the browser to collect):
 * done once per this many new bars, not per bar.
 */
export const DROP_BATCH = 2_000;
/** Bars before the first one in view that are never dropped (as History's paging margin). */
export const KEEP_BEFORE_VIEW = 40;

/** What live frames draw on: the chart (`CandleChart` in the page). */
export interface LiveChart {
  update(bar: Bar): void;
  setPriceFormat(format: PriceFormat): void;
  /** The oldest bars were dropped: these are the ones left. */
  dropOlder(bars: readonly Bar[]): void;
  /** Open times (Unix seconds) of the first and last bar in view, or null with none. */
  visibleRange(): { from: number; to: number } | null;
}

export interface LiveEvents {
  /** A bar was drawn: the newest one changed ("replaced") or a newer one began ("appended"). */
  drawn(bar: Bar, result: "appended" | "replaced"): void;
  /** A bar arrived more than one interval after the newest one (both open times, in seconds). */
  hole(afterTime: number, beforeTime: number): void;
  /** The oldest bars were dropped to keep within the cap. */
  dropped(count: number): void;
}

export interface BarLimits {
  cap: number;
  batch: number;
}

export class LiveBars {
  /** The shown interval, for telling a hole from the next bar. */
  interval: Interval = "1m";
  /** The shown symbol's tick size (null: undeclared), for the price format of a first bar. */
  tickSize: string | null = null;
  private buffering = true;
  private pending: RawKline[] = [];

  constructor(
    private readonly store: BarStore,
    private readonly chart: LiveChart,
    private readonly events: LiveEvents,
    private readonly limits: BarLimits = { cap: BAR_CAP, batch: DROP_BATCH },
  ) {}

  /** Whether frames are being held back for a REST load. */
  get holding(): boolean {
    return this.buffering;
  }

  /** Hold frames back from now on, forgetting any held so far. */
  hold(): void {
    this.buffering = true;
    this.pending = [];
  }

  /**
   * Apply `first` (REST klines older than any live frame), then the frames held back, in order;
   * from now on frames apply at once.
   */
  release(first: readonly RawKline[] = []): void {
    this.buffering = false;
    const pending = this.pending;
    this.pending = [];
    for (const k of first) this.apply(k);
    for (const k of pending) this.apply(k);
  }

  /** Stop holding and drop what was held (the load failed; the next one starts afresh). */
  discard(): void {
    this.buffering = false;
    this.pending = [];
  }

  /** One kline of the shown view: update the newest bar or append a new one; older is dropped. */
  apply(k: RawKline): void {
    if (this.buffering) {
      this.pending.push(k);
      return;
    }
    const bar = barFromKline(k);
    const previous = this.store.last;
    // A frame says nothing of the seconds behind it, but one that repeats the candle REST
    // counted (the current candle sent on subscribing) stands on the same seconds.
    if (previous !== undefined && previous.seconds !== null && sameCandle(previous, bar)) {
      bar.seconds ??= previous.seconds;
    }
    const result = this.store.upsert(bar);
    if (result === "stale") return;
    if (previous !== undefined && bar.time - previous.time > INTERVAL_MS[this.interval] / 1000) {
      this.events.hole(previous.time, bar.time);
    }
    this.chart.update(bar);
    if (this.store.size === 1) {
      this.chart.setPriceFormat(chartPriceFormat(this.tickSize, [k[1], k[2], k[3], k[4]]));
    }
    this.events.drawn(bar, result);
    if (result === "appended" && this.store.size > this.limits.cap + this.limits.batch) {
      this.dropOldest();
    }
  }

  /** Back to the cap, sparing the bars in view and a margin before them. */
  private dropOldest(): void {
    const view = this.chart.visibleRange();
    const spared = view === null ? Infinity : this.store.countBefore(view.from) - KEEP_BEFORE_VIEW;
    const count = this.store.dropOldest(Math.min(this.store.size - this.limits.cap, spared));
    if (count === 0) return;
    this.chart.dropOlder(this.store.bars);
    this.events.dropped(count);
  }
}
