/**
 * Whether candles hold every second they should: the API counts the 1s klines behind each one
 * (`withSeconds=true`). A closed candle should hold its whole interval; the one still forming
 * only the seconds up to its newest stored one (its close time), so forming is not missing.
 */
import type { Bar } from "./bars.ts";
import { INTERVAL_MS, type Interval } from "./intervals.ts";

/** The seconds `bar` should hold, as of `now` (Unix ms). */
export function expectedSeconds(bar: Bar, interval: Interval, now: number): number {
  const whole = INTERVAL_MS[interval] / 1000;
  const openMs = bar.time * 1000;
  if (openMs + INTERVAL_MS[interval] <= now) return whole;
  const upToNewest = Math.round((bar.closeTime + 1 - openMs) / 1000);
  return Math.min(whole, Math.max(0, upToNewest));
}

/** Fewer seconds than it should hold; unknown counts (live frames) are not judged. */
export function isIncomplete(bar: Bar, interval: Interval, now: number): boolean {
  return bar.seconds !== null && bar.seconds < expectedSeconds(bar, interval, now);
}

export interface Completeness {
  /** 1s klines behind the counted bars. */
  stored: number;
  /** Seconds they should hold, plus whole intervals for bars missing between them. */
  expected: number;
  /** Bars from live frames, whose counts are unknown: left out of both. */
  uncounted: number;
}

/** Completeness of ascending `bars` (the visible ones); a hole between two of them is missing. */
export function completenessOf(
  bars: readonly Bar[],
  interval: Interval,
  now: number,
): Completeness {
  const step = INTERVAL_MS[interval] / 1000;
  const result: Completeness = { stored: 0, expected: 0, uncounted: 0 };
  bars.forEach((bar, i) => {
    const previous = bars[i - 1];
    if (previous !== undefined) {
      result.expected += Math.max(0, bar.time - previous.time - step);
    }
    if (bar.seconds === null) {
      result.uncounted++;
      return;
    }
    result.stored += bar.seconds;
    result.expected += expectedSeconds(bar, interval, now);
  });
  return result;
}
