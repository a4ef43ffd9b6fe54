/** The bars of the chart on screen: numbers for drawing, the exchange's strings for reading. */
import type { RawKline } from "./api.ts";

export interface Bar {
  /** Open time in Unix seconds, the chart's time axis. */
  time: number;
  /** Close time in Unix ms as the API writes it: for a candle of stored seconds, its newest one's. */
  closeTime: number;
  /**
   * How many 1s klines are behind the bar, from REST; null from a live frame, which does not say
   * (unless it repeats a candle REST counted: see `LiveBars`).
   */
  seconds: number | null;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  /** Traded value in the quote asset (Σ price × quantity), for the session VWAP. */
  quoteVolume: number;
  trades: number;
  /** The exchange's decimal strings, shown in the legend and compared exactly. */
  raw: {
    open: string;
    high: string;
    low: string;
    close: string;
    volume: string;
    quoteVolume: string;
    takerBuyBase: string;
    takerBuyQuote: string;
  };
}

export function barFromKline(k: RawKline): Bar {
  return {
    time: Math.floor(k[0] / 1000),
    closeTime: k[6],
    seconds: typeof k[12] === "number" ? k[12] : null,
    open: Number(k[1]),
    high: Number(k[2]),
    low: Number(k[3]),
    close: Number(k[4]),
    volume: Number(k[5]),
    quoteVolume: Number(k[7]),
    trades: k[8],
    raw: {
      open: k[1],
      high: k[2],
      low: k[3],
      close: k[4],
      volume: k[5],
      quoteVolume: k[7],
      takerBuyBase: k[9],
      takerBuyQuote: k[10],
    },
  };
}

/** A decimal string without its padding, for comparing values: "2.50000000" and "2.5" agree. */
const unpadded = (value: string): string =>
  value.includes(".") ? value.replace(/0+$/, "").replace(/\.$/, "") : value;

/**
 * Whether two bars of one open time carry the same candle: the same newest second, prices,
 * volumes and trades (decimals by value). Then they stand on the same seconds, and a count of
 * them given for one holds for the other.
 */
export function sameCandle(a: Bar, b: Bar): boolean {
  const keys = Object.keys(a.raw) as (keyof Bar["raw"])[];
  return (
    a.time === b.time &&
    a.closeTime === b.closeTime &&
    a.trades === b.trades &&
    keys.every((key) => unpadded(a.raw[key]) === unpadded(b.raw[key]))
  );
}

export type UpsertResult = "appended" | "replaced" | "stale";

/** Bars in ascending time order, one per time; live updates may only touch the newest. */
export class BarStore {
  private list: Bar[] = [];
  private byTime = new Map<number, Bar>();
  private readonly listeners: (() => void)[] = [];

  /** Call `listener` after every change of the bars (any added, replaced or dropped). */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  get bars(): readonly Bar[] {
    return this.list;
  }

  get size(): number {
    return this.list.length;
  }

  get first(): Bar | undefined {
    return this.list[0];
  }

  get last(): Bar | undefined {
    return this.list[this.list.length - 1];
  }

  at(time: number): Bar | undefined {
    return this.byTime.get(time);
  }

  /** The bars opening from `from` to `to` (Unix seconds, both included), ascending. */
  between(from: number, to: number): readonly Bar[] {
    return this.list.slice(this.countBefore(from), this.countBefore(to + 1));
  }

  /** How many bars open before `time`. */
  countBefore(time: number): number {
    let lo = 0;
    let hi = this.list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.list[mid]!.time < time) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Forget the `count` oldest bars; returns how many went. */
  dropOldest(count: number): number {
    const dropped = this.list.splice(0, Math.max(0, count));
    for (const bar of dropped) this.byTime.delete(bar.time);
    if (dropped.length > 0) this.changed();
    return dropped.length;
  }

  /** Replace everything; input is sorted and de-duplicated defensively. */
  reset(bars: readonly Bar[]): void {
    // Later bars win: a merge passes the fresher copies last.
    this.byTime = new Map(bars.map((b) => [b.time, b]));
    this.list = [...this.byTime.values()].sort((a, b) => a.time - b.time);
    this.changed();
  }

  clear(): void {
    this.reset([]);
  }

  /** Add bars older than the first one; returns how many were new. */
  prepend(older: readonly Bar[]): number {
    const first = this.first?.time ?? Infinity;
    const fresh = older.filter((b) => b.time < first && !this.byTime.has(b.time));
    if (fresh.length === 0) return 0;
    this.reset([...fresh, ...this.list]);
    return fresh.length;
  }

  /**
   * Bars from anywhere in time (a hole being filled); same-time bars are replaced. Returns how
   * many.
   */
  merge(bars: readonly Bar[]): number {
    if (bars.length === 0) return 0;
    this.reset([...this.list, ...bars]);
    return bars.length;
  }

  /** A live bar: replaces the newest bar, appends a newer one, and refuses anything older. */
  upsert(bar: Bar): UpsertResult {
    const last = this.last;
    if (last !== undefined && bar.time < last.time) return "stale";
    if (last !== undefined && bar.time === last.time) {
      this.list[this.list.length - 1] = bar;
      this.byTime.set(bar.time, bar);
      this.changed();
      return "replaced";
    }
    this.list.push(bar);
    this.byTime.set(bar.time, bar);
    this.changed();
    return "appended";
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }
}
