/**
 * Session VWAP: Σ quote volume / Σ base volume of the UTC day's bars so far, the exact average
 * price of the day's trades (each bar's quote volume is Σ price × quantity of its trades). Resets
 * at 00:00 UTC; on daily bars every bar is its own session. No library has this (trading-signals'
 * and technicalindicators' VWAP weight the typical price (H+L+C)/3 and never reset), and it is two
 * running sums.
 */
import type { Bar } from "../bars.ts";
import type { Calculator, IndicatorKindDef } from "./types.ts";

const DAY_SECONDS = 86_400;

class SessionVwap implements Calculator {
  private day = Number.NaN;
  /** Sums over the session's bars before the newest one. */
  private quoteBefore = 0;
  private baseBefore = 0;
  /** The newest bar's part, replaced while it is forming. */
  private quoteLast = 0;
  private baseLast = 0;

  update(bar: Bar, replace: boolean): readonly (number | null)[] {
    if (!replace) {
      const day = Math.floor(bar.time / DAY_SECONDS);
      if (day === this.day) {
        this.quoteBefore += this.quoteLast;
        this.baseBefore += this.baseLast;
      } else {
        this.quoteBefore = 0;
        this.baseBefore = 0;
        this.day = day;
      }
    }
    this.quoteLast = bar.quoteVolume;
    this.baseLast = bar.volume;
    const base = this.baseBefore + this.baseLast;
    return [base > 0 ? (this.quoteBefore + this.quoteLast) / base : null];
  }
}

export const vwap: IndicatorKindDef = {
  kind: "vwap",
  title: "VWAP",
  name: "VWAP, reset at 00:00 UTC",
  period: null,
  pane: "price",
  precision: "price",
  guides: [],
  lines: (_spec, color) => [{ name: "VWAP", color, style: "solid" }],
  create: () => new SessionVwap(),
};
