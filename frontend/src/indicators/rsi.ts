/** Relative strength index of closes: trading-signals' `RSI` (Wilder's smoothing, SMA-seeded). */
import { RSI } from "trading-signals";
import { closeSeries } from "./close-series.ts";
import type { IndicatorKindDef } from "./types.ts";

export const rsi: IndicatorKindDef = {
  kind: "rsi",
  title: "RSI",
  name: "Relative strength index",
  period: { default: 14, min: 2, max: 500 },
  pane: "own",
  precision: 2,
  guides: [30, 70],
  lines: (spec, color) => [{ name: `RSI ${spec.period}`, color, style: "solid" }],
  create: (spec) => closeSeries(new RSI(spec.period ?? 14)),
};
