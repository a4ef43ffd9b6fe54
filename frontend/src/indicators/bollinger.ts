/** Bollinger bands of closes: trading-signals' `BollingerBands`, SMA ± 2 population σ. */
import { BollingerBands } from "trading-signals";
import type { IndicatorKindDef } from "./types.ts";

const DEVIATIONS = 2;

export const bollinger: IndicatorKindDef = {
  kind: "bb",
  title: "BB",
  name: "Bollinger bands (2σ)",
  period: { default: 20, min: 2, max: 500 },
  pane: "price",
  precision: "price",
  guides: [],
  lines: (spec, color) => [
    { name: `BB ${spec.period} upper`, color, style: "solid" },
    { name: `BB ${spec.period} basis`, color, style: "dashed" },
    { name: `BB ${spec.period} lower`, color, style: "solid" },
  ],
  create(spec) {
    const bands = new BollingerBands(spec.period ?? 20, DEVIATIONS);
    return {
      update(bar, replace) {
        const r = bands.update(bar.close, replace);
        return r === null ? [null, null, null] : [r.upper, r.middle, r.lower];
      },
    };
  },
};
