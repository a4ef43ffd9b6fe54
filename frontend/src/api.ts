/** The REST half of the backend contract (`/api/v1/*`): typed fetches and typed failures. */
import type { Interval } from "./intervals.ts";

/**
 * One kline exactly as Binance's `/api/v3/klines` returns it, decimals as strings; from our REST
 * API (`withSeconds=true`) with a 13th element, how many 1s klines are behind it. Live frames end
 * at `takerBuyQuote`.
 */
export type RawKline = [
  openTime: number,
  open: string,
  high: string,
  low: string,
  close: string,
  volume: string,
  closeTime: number,
  quoteVolume: string,
  trades: number,
  takerBuyBase: string,
  takerBuyQuote: string,
  ignore?: string,
  seconds?: number,
];

export interface SymbolInfo {
  symbol: string;
  price: string;
  firstTime: number;
  lastTime: number;
  /** Price step and quantity step ("0.01", "0.00001"), null until the source declared them. */
  tickSize?: string | null;
  lotSize?: string | null;
}

export interface Ticker {
  symbol: string;
  lastPrice: string;
  priceChange: string;
  priceChangePercent: string;
  highPrice: string;
  lowPrice: string;
  volume: string;
  openTime: number;
  closeTime: number;
}

export type Source = "sim" | "binance" | "replay" | "unknown";

export function toSource(value: unknown): Source {
  return value === "sim" || value === "binance" || value === "replay" ? value : "unknown";
}

/** A 4xx answer: the request itself is wrong (e.g. an unknown symbol); retrying will not help. */
export class ApiRejected extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly extra: unknown = undefined,
  ) {
    super(`API ${status}: ${detail}`);
  }

  /** Whether the error names this query parameter, in its detail or its `extra`. */
  names(parameter: string): boolean {
    const words = new RegExp(`\\b${parameter}\\b`, "i");
    return (
      words.test(this.detail) ||
      (this.extra !== undefined && words.test(JSON.stringify(this.extra)))
    );
  }
}

/** No answer, or a 5xx: the API is down or restarting; worth retrying. */
export class ApiUnavailable extends Error {}

export interface KlineQuery {
  startTime?: number;
  endTime?: number;
  limit?: number;
}

/** The most the API returns per klines request. */
export const KLINES_MAX_LIMIT = 1000;

async function getJson<T>(
  path: string,
  params: Record<string, string | number | undefined>,
  signal?: AbortSignal,
): Promise<T> {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined) query.set(key, String(value));
  }
  const url = query.size > 0 ? `${path}?${query}` : path;
  let response: Response;
  try {
    response = await fetch(url, {
      signal: signal ?? null,
      headers: { Accept: "application/json" },
    });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new ApiUnavailable(`${path}: ${String(error)}`);
  }
  if (response.status >= 400 && response.status < 500) {
    const { detail, extra } = await errorBody(response);
    throw new ApiRejected(response.status, detail, extra);
  }
  if (!response.ok) throw new ApiUnavailable(`${path}: HTTP ${response.status}`);
  try {
    return (await response.json()) as T;
  } catch {
    // A proxy's HTML error page while the API restarts, for instance.
    throw new ApiUnavailable(`${path}: response is not JSON`);
  }
}

/** The API's error shape, `{"status_code", "detail", "extra"}`, or the status text. */
async function errorBody(response: Response): Promise<{ detail: string; extra: unknown }> {
  const fallback = response.statusText || `HTTP ${response.status}`;
  try {
    const body = (await response.json()) as { detail?: unknown; extra?: unknown };
    return { detail: typeof body.detail === "string" ? body.detail : fallback, extra: body.extra };
  } catch {
    return { detail: fallback, extra: undefined };
  }
}

export function fetchKlines(
  symbol: string,
  interval: Interval,
  query: KlineQuery,
  signal?: AbortSignal,
): Promise<RawKline[]> {
  return getJson<RawKline[]>(
    "/api/v1/klines",
    { symbol, interval, ...query, withSeconds: "true" },
    signal,
  );
}

export function fetchSymbols(): Promise<SymbolInfo[]> {
  return getJson<SymbolInfo[]>("/api/v1/symbols", {});
}

export function fetchTickers(symbols?: readonly string[]): Promise<Ticker[]> {
  return getJson<Ticker[]>("/api/v1/ticker", { symbols: symbols?.join(",") });
}

export async function fetchSource(): Promise<Source> {
  const status = await getJson<{ source?: unknown }>("/api/v1/status", {});
  return toSource(status.source);
}
