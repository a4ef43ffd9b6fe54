/** The shareable page address: `/?symbol=ETHUSDT&interval=1m`. */
import { DEFAULT_INTERVAL, isInterval, type Interval } from "./intervals.ts";

export const DEFAULT_SYMBOL = "BTCUSDT";

export interface View {
  symbol: string;
  interval: Interval;
  /** False when the address named no symbol, so the first listed one may stand in. */
  symbolGiven: boolean;
}

export function viewFromSearch(search: string): View {
  const params = new URLSearchParams(search);
  const symbol = (params.get("symbol") ?? "").trim().toUpperCase();
  const interval = params.get("interval") ?? "";
  return {
    symbol: symbol || DEFAULT_SYMBOL,
    interval: isInterval(interval) ? interval : DEFAULT_INTERVAL,
    symbolGiven: symbol !== "",
  };
}

export function searchFromView(symbol: string, interval: Interval, current = ""): string {
  const params = new URLSearchParams(current);
  params.set("symbol", symbol);
  params.set("interval", interval);
  return `?${params}`;
}

/** Keep the address bar in step with what is shown, without adding history entries. */
export function replaceUrl(symbol: string, interval: Interval): void {
  const search = searchFromView(symbol, interval, location.search);
  if (search !== location.search) {
    history.replaceState(history.state, "", `${location.pathname}${search}${location.hash}`);
  }
}
