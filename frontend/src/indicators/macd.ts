/**
 * MACD 12/26/9 of closes: trading-signals' `MACD` over its `EMA`s (seeded with the first close);
 * the line, its signal and their difference as a histogram, from the 26th bar on.
 */
import { EMA, MACD } from "trading-signals";
import { theme } from "../theme.ts";
import type { IndicatorKindDef } from "./types.ts";

export const MACD_PERIODS = { fast: 12, slow: 26, signal: 9 } as const;

export const macd: IndicatorKindDef = {
  kind: "macd",
  title: "MACD",
  name: "MACD 12/26/9",
  period: null,
  pane: "own",
  precision: "price",
  guides: [],
  lines: () => [
    { name: "MACD", color: theme.macd, style: "solid" },
    { name: "signal", color: theme.macdSignal, style: "solid" },
    { name: "histogram", color: theme.muted, style: "histogram" },
  ],
  create() {
    const { fast, slow, signal } = MACD_PERIODS;
    const indicator = new MACD(new EMA(fast), new EMA(slow), new EMA(signal));
    return {
      update(bar, replace) {
        const r = indicator.update(bar.close, replace);
        return r === null ? [null, null, null] : [r.macd, r.signal, r.histogram];
      },
    };
  },
};
