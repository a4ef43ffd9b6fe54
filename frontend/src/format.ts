/** Text shown to the user: times in the local zone (UTC on request) and the exchange's decimals. */
import type { Interval } from "./intervals.ts";

const pad = (n: number, width = 2): string => String(n).padStart(width, "0");

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** Date parts of an instant, either in the browser's zone or in UTC. */
function parts(ms: number, utc: boolean) {
  const d = new Date(ms);
  return utc
    ? {
        y: d.getUTCFullYear(),
        mo: d.getUTCMonth(),
        d: d.getUTCDate(),
        h: d.getUTCHours(),
        mi: d.getUTCMinutes(),
        s: d.getUTCSeconds(),
      }
    : {
        y: d.getFullYear(),
        mo: d.getMonth(),
        d: d.getDate(),
        h: d.getHours(),
        mi: d.getMinutes(),
        s: d.getSeconds(),
      };
}

/** A bar's open time at the precision its interval needs: "2024-11-26 14:32:05". */
export function formatBarTime(ms: number, interval: Interval, utc = false): string {
  const p = parts(ms, utc);
  const date = `${p.y}-${pad(p.mo + 1)}-${pad(p.d)}`;
  if (interval === "1d") return date;
  const time = `${pad(p.h)}:${pad(p.mi)}`;
  return interval === "1s" ? `${date} ${time}:${pad(p.s)}` : `${date} ${time}`;
}

/** A clock reading, "14:32:05". */
export function formatClock(ms: number, utc = false): string {
  const p = parts(ms, utc);
  return `${pad(p.h)}:${pad(p.mi)}:${pad(p.s)}`;
}

const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/** Crosshair label on the time axis: "Tue 26 Nov '24 14:32"; daily bars are UTC days. */
export function formatCrosshairTime(ms: number, interval: Interval): string {
  const utc = interval === "1d";
  const p = parts(ms, utc);
  const weekday = WEEKDAYS[utc ? new Date(ms).getUTCDay() : new Date(ms).getDay()];
  const day = `${weekday} ${p.d} ${MONTHS[p.mo]} '${pad(p.y % 100)}`;
  if (utc) return `${day} UTC`;
  const time = `${pad(p.h)}:${pad(p.mi)}`;
  return interval === "1s" ? `${day} ${time}:${pad(p.s)}` : `${day} ${time}`;
}

/** Kinds of time-axis tick mark, numbered as lightweight-charts' TickMarkType. */
export const TickKind = { Year: 0, Month: 1, DayOfMonth: 2, Time: 3, TimeWithSeconds: 4 } as const;
export type TickKind = (typeof TickKind)[keyof typeof TickKind];

/** A time-axis tick label, in the local zone unless `utc`. */
export function formatTick(ms: number, kind: TickKind, utc = false): string {
  const p = parts(ms, utc);
  switch (kind) {
    case TickKind.Year:
      return String(p.y);
    case TickKind.Month:
      return MONTHS[p.mo]!;
    case TickKind.DayOfMonth:
      return `${p.d} ${MONTHS[p.mo]}`;
    case TickKind.Time:
      return `${pad(p.h)}:${pad(p.mi)}`;
    case TickKind.TimeWithSeconds:
      return `${pad(p.h)}:${pad(p.mi)}:${pad(p.s)}`;
    default:
      return "";
  }
}

/** The browser's zone as "Europe/Berlin UTC+01:00". */
export function zoneLabel(now = new Date()): string {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const offset = -now.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const abs = Math.abs(offset);
  return `${zone} UTC${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** Significant decimals of a decimal string: "61000.10000000" → 1. */
export function decimalsOf(value: string): number {
  const dot = value.indexOf(".");
  if (dot < 0) return 0;
  return value.slice(dot + 1).replace(/0+$/, "").length;
}

/** A decimal string for reading: the exchange's padding zeros dropped, at least 2 decimals
 * kept ("60151.88000000" → "60151.88", "0.45246900" → "0.452469"); the value stays exact. */
export function formatDecimal(value: string): string {
  const dot = value.indexOf(".");
  if (dot < 0) return value;
  const keep = Math.max(2, decimalsOf(value));
  return value.slice(0, dot + 1 + keep).padEnd(dot + 1 + keep, "0");
}

/** Price-axis precision that shows every given price exactly: at least 2, at most 8. */
export function pricePrecision(prices: Iterable<string>): number {
  let most = 0;
  for (const p of prices) most = Math.max(most, decimalsOf(p));
  return Math.min(8, Math.max(2, most));
}

/** The chart's price format for a symbol's tick size (from /api/v1/symbols): its decimals and
 * its step ("0.01000000" → 2 and 0.01, "0.05" → 2 and 0.05, "10" → 0 and 10). */
export function priceFormatOfTick(tick: string): { precision: number; minMove: number } {
  return { precision: decimalsOf(tick), minMove: Number(tick) };
}

/** A decimal string at a step's decimals, exactly (BigInt, no float), half away from zero:
 * ("61130.99000000", "0.01") → "61130.99", ("0.123456", "0.001") → "0.123", ("5", "0.1") →
 * "5.0". Prices on the step's grid only lose their padding. */
export function formatAtStep(value: string, step: string): string {
  const places = decimalsOf(step);
  const negative = value.startsWith("-");
  const [whole, fraction = ""] = value.replace(/^[-+]/, "").split(".");
  // The kept digits and the first dropped one: half away from zero needs no more.
  const digits = BigInt(whole + fraction.padEnd(places + 1, "0").slice(0, places + 1));
  const scaled = digits / 10n + (digits % 10n >= 5n ? 1n : 0n);
  const text = scaled.toString().padStart(places + 1, "0");
  const body = places === 0 ? text : `${text.slice(0, -places)}.${text.slice(-places)}`;
  return negative && scaled !== 0n ? `-${body}` : body;
}

/** A 24h change percentage as the exchange gave it, signed: "1.234" → "+1.234%". */
export function formatChangePercent(value: string): string {
  const n = Number(value);
  if (!Number.isFinite(n)) return "—";
  return `${n > 0 && !value.startsWith("+") ? "+" : ""}${value}%`;
}

/** "up", "down" or "flat" for colouring a signed decimal string. */
export function direction(value: number): "up" | "down" | "flat" {
  return value > 0 ? "up" : value < 0 ? "down" : "flat";
}

const QUOTES = ["USDT", "USDC", "FDUSD", "TUSD", "BUSD", "DAI", "EUR", "TRY", "BTC", "ETH", "BNB"];

/** "BTCUSDT" → ["BTC", "USDT"]; a symbol with no known quote asset is all base. */
export function splitSymbol(symbol: string): [base: string, quote: string] {
  for (const quote of QUOTES) {
    if (symbol.length > quote.length && symbol.endsWith(quote)) {
      return [symbol.slice(0, -quote.length), quote];
    }
  }
  return [symbol, ""];
}

/** Digits kept below the shown ones before rounding: see {@link formatIndicatorValue}. */
const GUARD_DIGITS = 6;

/**
 * An indicator value rounded half away from zero to the decimals it is shown with ("61400.64");
 * none yet: "—". Averages of the exchange's decimals often end in an exact half (an SMA 20 of
 * 2-decimal prices: 61400.635) that binary arithmetic lands either side of (61400.634999999995);
 * cut to a few guard digits first, the half is seen as one and rounds the way it is written.
 */
export function formatIndicatorValue(value: number | null, decimals: number): string {
  if (value === null || !Number.isFinite(value)) return "—";
  const guarded = BigInt(
    Math.abs(value)
      .toFixed(decimals + GUARD_DIGITS)
      .replace(".", ""),
  );
  const unit = 10n ** BigInt(GUARD_DIGITS);
  const rounded = (guarded + unit / 2n) / unit;
  const digits = rounded.toString().padStart(decimals + 1, "0");
  const text = decimals === 0 ? digits : `${digits.slice(0, -decimals)}.${digits.slice(-decimals)}`;
  // A value that rounds to zero is shown without a sign: "-0.00" reads as a fault.
  return value < 0 && rounded !== 0n ? `-${text}` : text;
}

/** `part` of `whole` as a percentage that only reads 100% when nothing is missing: "99.98%". */
export function formatCompleteness(part: number, whole: number): string {
  if (whole <= 0) return "—";
  const hundredths = Math.floor((part / whole) * 10_000);
  return `${(Math.min(hundredths, part >= whole ? 10_000 : 9_999) / 100).toFixed(2)}%`;
}

/** A count with thousands separated, "86,400": as `toLocaleString("en-US")` gives it, without
 * `Intl`, whose first use in a fresh page costs tens of milliseconds before the first candles. */
export function formatCount(n: number): string {
  const digits = String(Math.trunc(Math.abs(n)));
  const grouped = digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return n < 0 && digits !== "0" ? `-${grouped}` : grouped;
}
