/**
 * Every indicator kind by its address name; adding one is adding a module and a row here. Also
 * reads and writes the address tokens (`sma20`, `vwap`, `macd`).
 */
import { bollinger } from "./bollinger.ts";
import { ema } from "./ema.ts";
import { macd } from "./macd.ts";
import { rsi } from "./rsi.ts";
import { sma } from "./sma.ts";
import type { IndicatorKind, IndicatorKindDef, IndicatorSpec } from "./types.ts";
import { vwap } from "./vwap.ts";

export const INDICATOR_KINDS: Readonly<Record<IndicatorKind, IndicatorKindDef>> = {
  sma,
  ema,
  bb: bollinger,
  vwap,
  rsi,
  macd,
};

/** "SMA 20", "VWAP": how the legend and the menu name an indicator. */
export function indicatorLabel(spec: IndicatorSpec): string {
  const { title } = INDICATOR_KINDS[spec.kind];
  return spec.period === null ? title : `${title} ${spec.period}`;
}

/** Decimals an indicator's values are shown with, given the candles' price precision. */
export function indicatorDecimals(def: IndicatorKindDef, pricePrecision: number): number {
  return def.precision === "price" ? pricePrecision : def.precision;
}

/** More than this many indicators would bury the candles; the rest of a long list is ignored. */
export const MAX_INDICATORS = 8;

/** The choices offered in the toolbar menu, in its order. */
export const PRESET_INDICATORS = [
  "sma20",
  "sma50",
  "ema20",
  "ema50",
  "ema200",
  "bb20",
  "vwap",
  "rsi14",
  "macd",
] as const;

const isKind = (name: string): name is IndicatorKind => Object.hasOwn(INDICATOR_KINDS, name);

/**
 * An address token as an indicator, or the reason it is not one. A kind with a period takes it
 * as digits (`ema50`; bare `ema` is its default); VWAP and MACD take none.
 */
export function parseIndicator(token: string): IndicatorSpec | string {
  const match = /^([a-z]+)(\d*)$/.exec(token.trim().toLowerCase());
  const name = match?.[1] ?? "";
  if (match === null || !isKind(name)) return `“${token}” is not an indicator`;
  const def = INDICATOR_KINDS[name];
  const digits = match[2] ?? "";
  if (def.period === null) {
    return digits === "" ? { kind: name, period: null, id: name } : `${def.title} takes no period`;
  }
  const period = digits === "" ? def.period.default : Number(digits);
  if (period < def.period.min || period > def.period.max) {
    return `${def.title} period must be ${def.period.min}–${def.period.max}, not ${digits}`;
  }
  return { kind: name, period, id: `${name}${period}` };
}

export interface ParsedIndicators {
  specs: IndicatorSpec[];
  /** Why each ignored token was ignored, for telling the user. */
  ignored: string[];
}

/** A comma-separated list: repeats dropped, at most {@link MAX_INDICATORS}. */
export function parseIndicatorList(list: string): ParsedIndicators {
  const specs: IndicatorSpec[] = [];
  const ignored: string[] = [];
  for (const token of list.split(",")) {
    if (token.trim() === "") continue;
    const spec = parseIndicator(token);
    if (typeof spec === "string") ignored.push(spec);
    else if (specs.some((s) => s.id === spec.id)) continue;
    else if (specs.length >= MAX_INDICATORS) ignored.push(`${spec.id}: at most ${MAX_INDICATORS}`);
    else specs.push(spec);
  }
  return { specs, ignored };
}
