/**
 * The indicators shown on the chart ("studies") and their points, kept in step with the bars:
 * all at once for a new set of bars, the tail for a live one (the newest bar again replaces the
 * last value, a newer bar appends one), the head dropped when old bars are. Draws through a
 * {@link StudySink} (lightweight-charts line series in the page, a recorder in the tests).
 */
import type { Bar } from "../bars.ts";
import { theme } from "../theme.ts";
import { INDICATOR_KINDS } from "./registry.ts";
import type { Calculator, IndicatorKindDef, IndicatorSpec, LineSpec } from "./types.ts";

/** A value of a line at a bar's open time (Unix seconds). */
export interface LinePoint {
  time: number;
  value: number;
}

export interface Study {
  readonly spec: IndicatorSpec;
  readonly def: IndicatorKindDef;
  readonly lines: readonly LineSpec[];
  readonly color: string;
}

export interface StudySink {
  /** The studies changed: drop every line drawn and make these, in this order. */
  layout(studies: readonly Study[]): void;
  /** Every point of one line. */
  setLine(study: number, line: number, points: readonly LinePoint[]): void;
  /** The newest point of one line: a later time appends, the same time replaces, null blanks it. */
  updateLine(study: number, line: number, time: number, value: number | null): void;
}

interface Active {
  study: Study;
  calculator: Calculator;
  /** Per line, ascending by time; bars where a line has no value yet have no point. */
  points: LinePoint[][];
}

/** The first index whose time is at or after `time`. */
function lowerBound(points: readonly LinePoint[], time: number): number {
  let lo = 0;
  let hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (points[mid]!.time < time) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class StudySet {
  private active: Active[] = [];
  private readonly colors = new Map<string, string>();
  private lastTime: number | null = null;

  constructor(private readonly sink: StudySink) {}

  get studies(): readonly Study[] {
    return this.active.map((a) => a.study);
  }

  /** Show these indicators (and only these), computed over `bars`. */
  configure(specs: readonly IndicatorSpec[], bars: readonly Bar[]): void {
    for (const id of this.colors.keys()) {
      if (!specs.some((s) => s.id === id)) this.colors.delete(id);
    }
    const studies = specs.map((spec): Study => {
      const def = INDICATOR_KINDS[spec.kind];
      const color = this.colorOf(spec.id);
      return { spec, def, color, lines: def.lines(spec, color) };
    });
    this.active = studies.map((study) => this.fresh(study));
    this.sink.layout(studies);
    this.reset(bars);
  }

  /** Recompute every study over these bars, oldest first. */
  reset(bars: readonly Bar[]): void {
    this.lastTime = bars.at(-1)?.time ?? null;
    this.active = this.active.map((a) => this.fresh(a.study));
    this.active.forEach((a, s) => {
      for (const bar of bars) {
        a.calculator.update(bar, false).forEach((value, line) => {
          if (value !== null) a.points[line]!.push({ time: bar.time, value });
        });
      }
      a.points.forEach((points, line) => this.sink.setLine(s, line, points));
    });
  }

  /** A live bar: the newest one again (its values replaced) or a newer one (values appended). */
  update(bar: Bar): void {
    if (this.lastTime !== null && bar.time < this.lastTime) return;
    const replace = bar.time === this.lastTime;
    this.lastTime = bar.time;
    this.active.forEach((a, s) => {
      a.calculator.update(bar, replace).forEach((value, line) => {
        const points = a.points[line]!;
        const last = points.at(-1);
        if (last?.time === bar.time) {
          if (value === null) points.pop();
          else points[points.length - 1] = { time: bar.time, value };
        } else if (value !== null) points.push({ time: bar.time, value });
        else return;
        this.sink.updateLine(s, line, bar.time, value);
      });
    });
  }

  /** The bars before `time` were dropped: drop their points too; the rest stay as computed. */
  trimBefore(time: number): void {
    this.active.forEach((a, s) => {
      a.points.forEach((points, line) => {
        const cut = lowerBound(points, time);
        if (cut === 0) return;
        points.splice(0, cut);
        this.sink.setLine(s, line, points);
      });
    });
  }

  /** Each study's line values at the bar opening at `time`, null where a line has none. */
  valuesAt(time: number): { study: Study; values: (number | null)[] }[] {
    return this.active.map((a) => ({
      study: a.study,
      values: a.points.map((points) => {
        const point = points[lowerBound(points, time)];
        return point?.time === time ? point.value : null;
      }),
    }));
  }

  private fresh(study: Study): Active {
    return {
      study,
      calculator: study.def.create(study.spec),
      points: study.lines.map(() => []),
    };
  }

  /** A colour per indicator, kept while it stays on; new ones take the first unused. */
  private colorOf(id: string): string {
    let color = this.colors.get(id);
    if (color === undefined) {
      const used = new Set(this.colors.values());
      color = theme.studies.find((c) => !used.has(c)) ?? theme.studies[0];
      this.colors.set(id, color);
    }
    return color;
  }
}
