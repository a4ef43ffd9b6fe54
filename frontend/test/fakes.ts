/** Fakes for the page's parts: a manual clock, a klines API over a series, a recording chart. */
import type { KlineQuery, RawKline } from "../src/api.ts";
import type { Bar } from "../src/bars.ts";
import type { Clock } from "../src/clock.ts";
import type { LinePoint, Study, StudySink } from "../src/indicators/studies.ts";
import type { Interval } from "../src/intervals.ts";
import type { PriceFormat } from "../src/precision.ts";

/** Let every settled promise's callbacks run (the fakes answer with resolved promises). */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A kline opening at `openMs`, `intervalMs` long, closing at `close`. */
export function kline(openMs: number, close = "100.00", intervalMs = 60_000): RawKline {
  return [
    openMs,
    "100.00",
    "101.00",
    "99.00",
    close,
    "2.50000000",
    openMs + intervalMs - 1,
    "250.0",
    7,
    "1.0",
    "100.0",
    "0",
  ];
}

/** `count` consecutive klines, the first opening at `firstMs`. */
export function series(firstMs: number, count: number, intervalMs = 60_000): RawKline[] {
  return Array.from({ length: count }, (_, i) =>
    kline(firstMs + i * intervalMs, "100.00", intervalMs),
  );
}

interface Timer {
  id: number;
  at: number;
  callback: () => void;
  every: number | undefined;
}

/** Time stands still until `advance` moves it, running the timers that fall due on the way. */
export class FakeClock implements Clock {
  private timers: Timer[] = [];
  private frames: (() => void)[] = [];
  private nextId = 1;

  constructor(public time = 1_700_000_000_000) {}

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): number {
    return this.add(callback, ms, undefined);
  }

  setInterval(callback: () => void, ms: number): number {
    return this.add(callback, ms, ms);
  }

  clearTimeout(handle: number | undefined): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  clearInterval(handle: number | undefined): void {
    this.clearTimeout(handle);
  }

  nextFrame(callback: () => void): void {
    this.frames.push(callback);
  }

  /** Timers still to run. */
  get pending(): number {
    return this.timers.length;
  }

  /** Move `ms` forward, running due timers in time order. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const due = this.timers
        .filter((t) => t.at <= end)
        .sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (due === undefined) break;
      this.time = due.at;
      if (due.every === undefined) this.clearTimeout(due.id);
      else due.at += due.every;
      due.callback();
    }
    this.time = end;
  }

  /** Run the callbacks waiting for the next frame; returns how many. */
  runFrames(): number {
    const frames = this.frames;
    this.frames = [];
    for (const callback of frames) callback();
    return frames.length;
  }

  private add(callback: () => void, ms: number, every: number | undefined): number {
    const id = this.nextId++;
    this.timers.push({ id, at: this.time + ms, callback, every });
    return id;
  }
}

export interface KlinesCall {
  symbol: string;
  interval: Interval;
  query: KlineQuery;
}

/**
 * `/api/v1/klines` over a stored series, answering as the API does: with startTime the first
 * `limit` klines opening at or after it, otherwise the newest `limit` opening at or before
 * endTime. Answers are computed when asked; `pause` holds them until `resume`.
 */
export class FakeKlinesApi {
  readonly calls: KlinesCall[] = [];
  /** Thrown (as a rejection) by every call while set. */
  error: unknown = undefined;
  private paused = false;
  private held: (() => void)[] = [];

  constructor(public klines: RawKline[] = []) {}

  readonly fetch = (symbol: string, interval: Interval, query: KlineQuery): Promise<RawKline[]> => {
    this.calls.push({ symbol, interval, query });
    const error: unknown = this.error;
    const answer = error === undefined ? this.answer(query) : [];
    if (!this.paused) {
      return error === undefined ? Promise.resolve(answer) : Promise.reject(toError(error));
    }
    return new Promise((resolve, reject) => {
      this.held.push(() => (error === undefined ? resolve(answer) : reject(toError(error))));
    });
  };

  /** Hold answers back from now on. */
  pause(): void {
    this.paused = true;
  }

  /** Send the held answers, oldest first, and answer at once from now on. */
  async resume(): Promise<void> {
    this.paused = false;
    const held = this.held;
    this.held = [];
    for (const send of held) send();
    await settle();
  }

  private answer({ startTime, endTime, limit = 500 }: KlineQuery): RawKline[] {
    const inRange = this.klines.filter(
      (k) =>
        (startTime === undefined || k[0] >= startTime) &&
        (endTime === undefined || k[0] <= endTime),
    );
    return startTime !== undefined ? inRange.slice(0, limit) : inRange.slice(-limit);
  }
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** The chart, keeping what it would draw: `bars` is the candles series' data. */
export class FakeChart {
  bars: Bar[] = [];
  /** The price axis's format, and how many times it was set. */
  format: PriceFormat | undefined;
  formats = 0;
  nearOldest = false;
  /** What `visibleRange` answers: null, nothing in view. */
  view: { from: number; to: number } | null = null;
  dropOlders = 0;
  shows = 0;
  setAlls = 0;
  updates = 0;

  get precision(): number | undefined {
    return this.format?.precision;
  }

  show(bars: readonly Bar[], _interval: Interval, format: PriceFormat): void {
    this.shows++;
    this.format = format;
    this.bars = [...bars];
  }

  setAll(bars: readonly Bar[]): void {
    this.setAlls++;
    this.bars = [...bars];
  }

  update(bar: Bar): void {
    // lightweight-charts: the same time replaces the last point, a later one appends.
    this.updates++;
    const last = this.bars[this.bars.length - 1];
    if (last !== undefined && bar.time < last.time) throw new Error("update older than the last");
    if (last !== undefined && bar.time === last.time) this.bars[this.bars.length - 1] = bar;
    else this.bars.push(bar);
  }

  setPriceFormat(format: PriceFormat): void {
    this.formats++;
    this.format = format;
  }

  clear(): void {
    this.bars = [];
  }

  isNearOldest(): boolean {
    return this.nearOldest;
  }

  dropOlder(bars: readonly Bar[]): void {
    this.dropOlders++;
    this.bars = [...bars];
  }

  visibleRange(): { from: number; to: number } | null {
    return this.view;
  }
}

/** Open times in seconds, for comparing bar lists. */
export const times = (bars: readonly Bar[]): number[] => bars.map((b) => b.time);

/** Whether the open times step by exactly `seconds`, with no repeat and no hole. */
export function contiguous(bars: readonly Bar[], seconds: number): boolean {
  return bars.every((b, i) => i === 0 || b.time - bars[i - 1]!.time === seconds);
}

/** The indicator lines as lightweight-charts would hold them, and how they were drawn. */
export class FakeStudySink implements StudySink {
  /** Per study, per line: the points drawn. */
  lines: LinePoint[][][] = [];
  layouts: string[][] = [];
  setLines = 0;
  updates = 0;

  layout(studies: readonly Study[]): void {
    this.layouts.push(studies.map((s) => s.spec.id));
    this.lines = studies.map((s) => s.lines.map(() => []));
  }

  setLine(study: number, line: number, points: readonly LinePoint[]): void {
    this.setLines++;
    this.lines[study]![line] = [...points];
  }

  updateLine(study: number, line: number, time: number, value: number | null): void {
    // As a series' update(): the same time replaces the last point, a later one appends.
    this.updates++;
    const points = this.lines[study]![line]!;
    const last = points.at(-1);
    if (last !== undefined && time < last.time) throw new Error("update older than the last");
    if (last?.time === time) points.pop();
    if (value !== null) points.push({ time, value });
  }
}
