/** The symbol and interval a page address names (`?symbol=ETHUSDT&interval=1m`), or the defaults. */
import { DEFAULT_INTERVAL, isInterval, type Interval } from "./intervals.ts";

export const DEFAULT_SYMBOL = "BTCUSDT";

/** The symbol the address names, upper-cased; "" when it names none. */
export function namedSymbol(params: URLSearchParams): string {
  return (params.get("symbol") ?? "").trim().toUpperCase();
}

export function symbolIn(params: URLSearchParams): string {
  return namedSymbol(params) || DEFAULT_SYMBOL;
}

export function intervalIn(params: URLSearchParams): Interval {
  const interval = params.get("interval") ?? "";
  return isInterval(interval) ? interval : DEFAULT_INTERVAL;
}
