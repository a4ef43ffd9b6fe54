/** Simple moving average of closes: trading-signals' `SMA`. */
import { SMA } from "trading-signals";
import { closeSeries } from "./close-series.ts";
import type { IndicatorKindDef } from "./types.ts";

export const sma: IndicatorKindDef = {
  kind: "sma",
  title: "SMA",
  name: "Simple moving average",
  period: { default: 20, min: 2, max: 500 },
  pane: "price",
  precision: "price",
  guides: [],
  lines: (spec, color) => [{ name: `SMA ${spec.period}`, color, style: "solid" }],
  create: (spec) => closeSeries(new SMA(spec.period ?? 20)),
};
