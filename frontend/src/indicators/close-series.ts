/** A trading-signals indicator of closing prices as a one-line {@link Calculator}. */
import type { Bar } from "../bars.ts";
import type { Calculator } from "./types.ts";

/** The part of a trading-signals indicator (SMA, EMA, RSI, …) that is used here. */
export interface ClosePriceIndicator {
  update(price: number, replace: boolean): number | null;
  /** False until the indicator has seen enough prices to mean anything. */
  readonly isStable: boolean;
}

export function closeSeries(indicator: ClosePriceIndicator): Calculator {
  return {
    update(bar: Bar, replace: boolean) {
      const value = indicator.update(bar.close, replace);
      return [indicator.isStable ? value : null];
    },
  };
}
