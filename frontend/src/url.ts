/** The shareable page address: `/?symbol=ETHUSDT&interval=1m&ind=sma20,ema50,rsi14`. */
import { parseIndicatorList } from "./indicators/registry.ts";
import type { IndicatorSpec } from "./indicators/types.ts";
import { DEFAULT_INTERVAL, isInterval, type Interval } from "./intervals.ts";

export const DEFAULT_SYMBOL = "BTCUSDT";

export interface View {
  symbol: string;
  interval: Interval;
  /** False when the address named no symbol, so the first listed one may stand in. */
  symbolGiven: boolean;
  indicators: IndicatorSpec[];
  /** Why each `ind` entry that is not an indicator was left out, to tell the user. */
  ignoredIndicators: string[];
}

export function viewFromSearch(search: string): View {
  const params = new URLSearchParams(search);
  const symbol = (params.get("symbol") ?? "").trim().toUpperCase();
  const interval = params.get("interval") ?? "";
  const { specs, ignored } = parseIndicatorList(params.get("ind") ?? "");
  return {
    symbol: symbol || DEFAULT_SYMBOL,
    interval: isInterval(interval) ? interval : DEFAULT_INTERVAL,
    symbolGiven: symbol !== "",
    indicators: specs,
    ignoredIndicators: ignored,
  };
}

export function searchFromView(
  symbol: string,
  interval: Interval,
  indicators: readonly IndicatorSpec[],
  current = "",
): string {
  const params = new URLSearchParams(current);
  params.set("symbol", symbol);
  params.set("interval", interval);
  if (indicators.length > 0) params.set("ind", indicators.map((s) => s.id).join(","));
  else params.delete("ind");
  // The list reads better with its commas as they are.
  return `?${params}`.replace(/%2C/g, ",");
}

/** Keep the address bar in step with what is shown, without adding history entries. */
export function replaceUrl(
  symbol: string,
  interval: Interval,
  indicators: readonly IndicatorSpec[],
): void {
  const search = searchFromView(symbol, interval, indicators, location.search);
  if (search !== location.search) {
    history.replaceState(history.state, "", `${location.pathname}${search}${location.hash}`);
  }
}
