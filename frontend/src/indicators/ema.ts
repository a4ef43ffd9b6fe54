/**
 * Exponential moving average of closes: trading-signals' `EMA`, seeded with the first close
 * (as TradingView's `ta.ema`) and shown once it has seen `period` closes.
 */
import { EMA } from "trading-signals";
import { closeSeries } from "./close-series.ts";
import type { IndicatorKindDef } from "./types.ts";

export const ema: IndicatorKindDef = {
  kind: "ema",
  title: "EMA",
  name: "Exponential moving average",
  period: { default: 50, min: 2, max: 500 },
  pane: "price",
  precision: "price",
  guides: [],
  lines: (spec, color) => [{ name: `EMA ${spec.period}`, color, style: "solid" }],
  create: (spec) => closeSeries(new EMA(spec.period ?? 50)),
};
