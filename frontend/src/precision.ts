/**
 * A symbol's own precision: its tick size (price step) and lot size (quantity step) as
 * /api/v1/symbols declares them, and what the page shows by them. A symbol whose source has not
 * declared them yet falls back to the decimals its data shows.
 */
import type { SymbolInfo } from "./api.ts";
import type { Bar } from "./bars.ts";
import {
  decimalsOf,
  formatAtStep,
  formatDecimal,
  priceFormatOfTick,
  pricePrecision,
} from "./format.ts";

/** The chart's price scale: decimals shown and the smallest step between prices. */
export interface PriceFormat {
  precision: number;
  minMove: number;
}

/** Tick and lot size; null while undeclared. */
export interface Sizes {
  tickSize: string | null;
  lotSize: string | null;
}

export const UNDECLARED: Sizes = { tickSize: null, lotSize: null };

const PLAIN_DECIMAL = /^[+-]?\d+(\.\d*)?$/;

/** A step as given, if it is one (a positive plain decimal: "0.01", "10"); otherwise null. */
export function stepOf(value: unknown): string | null {
  if (typeof value !== "string" || !/^\d+(\.\d+)?$/.test(value)) return null;
  return /[1-9]/.test(value) ? value : null;
}

/** A listed symbol's sizes; anything that is not a step counts as undeclared. */
export function sizesOf(info: SymbolInfo): Sizes {
  return { tickSize: stepOf(info.tickSize), lotSize: stepOf(info.lotSize) };
}

/**
 * The chart's price format: the tick size's decimals and step when declared ("0.01" → 2, 0.01;
 * "10" → 0, 10); otherwise the decimals `prices` show (2 to 8), stepping by one of the last.
 */
export function chartPriceFormat(tickSize: string | null, prices: Iterable<string>): PriceFormat {
  if (tickSize !== null) return priceFormatOfTick(tickSize);
  const precision = pricePrecision(prices);
  return { precision, minMove: 10 ** -precision };
}

/** The newest bars' prices, for guessing a price format when no tick size is declared. */
export function recentPrices(bars: readonly Bar[], count = 200): string[] {
  return bars.slice(-count).flatMap((b) => [b.raw.open, b.raw.high, b.raw.low, b.raw.close]);
}

/** "1", "0.1", "0.01", …: the step of `places` decimals. */
const unitOf = (places: number): string => (places === 0 ? "1" : `0.${"0".repeat(places - 1)}1`);

/**
 * A decimal string at a step's decimals: padding dropped, zeros added ("61130.99000000" at
 * "0.01" → "61130.99", "5" at "0.1" → "5.0"). Digits finer than the step, which a value on the
 * step's grid never has, are kept rather than rounded away: the text stays exact. No step (or
 * not a plain decimal): the exchange's string without padding ({@link formatDecimal}).
 */
export function formatAtSize(value: string, step: string | null): string {
  if (step === null || !PLAIN_DECIMAL.test(value)) return formatDecimal(value);
  return formatAtStep(value, unitOf(Math.max(decimalsOf(step), decimalsOf(value))));
}

/** A price as the symbol's tick size writes it. */
export const formatPrice = (value: string, sizes: Sizes): string =>
  formatAtSize(value, sizes.tickSize);

/** A quantity (volume) as the symbol's lot size writes it. */
export const formatQuantity = (value: string, sizes: Sizes): string =>
  formatAtSize(value, sizes.lotSize);
