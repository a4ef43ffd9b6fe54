/** What every indicator is made of: its lines, where they are drawn, and how bars move them. */
import type { Bar } from "../bars.ts";

export type IndicatorKind = "sma" | "ema" | "bb" | "vwap" | "rsi" | "macd";

/** One indicator as the page address names it: `sma20`, `vwap`, `macd`. */
export interface IndicatorSpec {
  kind: IndicatorKind;
  /** The look-back in bars, for the kinds that take one. */
  period: number | null;
  /** The address token, canonical: `sma20`. */
  id: string;
}

export interface LineSpec {
  /** Shown in the legend and on the price axis: "SMA 20", "upper". */
  name: string;
  color: string;
  style: "solid" | "dashed" | "histogram";
}

/** The indicator's state over the bars fed so far, one bar at a time. */
export interface Calculator {
  /**
   * Feed a bar: a newer one (`replace` false) or the newest one again, changed (`replace` true).
   * Returns one value per line, null while too few bars are in.
   */
  update(bar: Bar, replace: boolean): readonly (number | null)[];
}

/** How values are shown: with the candles' price precision, or with fixed decimals. */
export type Precision = "price" | number;

/** One kind of indicator, registered by name in `registry.ts`. */
export interface IndicatorKindDef {
  kind: IndicatorKind;
  /** Short, for the legend and the address errors: "SMA", "BB". */
  title: string;
  /** Long, for the menu: "Simple moving average". */
  name: string;
  /** The look-back the kind takes (none for VWAP and MACD's fixed 12/26/9). */
  period: { default: number; min: number; max: number } | null;
  /** On the candles, or in a pane of its own below the volume. */
  pane: "price" | "own";
  precision: Precision;
  /** Horizontal guide levels in its pane (RSI's 30 and 70). */
  guides: readonly number[];
  /** Its lines, the first coloured `color` where the kind has no colours of its own. */
  lines(spec: IndicatorSpec, color: string): LineSpec[];
  create(spec: IndicatorSpec): Calculator;
}
