/**
 * The status bar's completeness figure: the visible candles' stored seconds against those they
 * should hold. Recomputed on every change of the bars (a live bar replacing a REST one, history
 * loaded, prepended or filled, old bars dropped) and whenever the page says the range in view or
 * the time moved, so what it shows is always what {@link VisibleSeconds.current} says.
 */
import type { BarStore } from "./bars.ts";
import { completenessOf, type Completeness } from "./completeness.ts";
import type { Interval } from "./intervals.ts";

/** Where the figure's bars are seen: the chart (`CandleChart` in the page). */
export interface VisibleRange {
  /** Open times (Unix seconds) of the first and last bar in view, or null with none. */
  visibleRange(): { from: number; to: number } | null;
}

export interface VisibleSecondsDeps {
  store: BarStore;
  chart: VisibleRange;
  /** The shown interval (the one the store's bars are of). */
  interval(): Interval;
  /** Unix ms now. */
  now(): number;
  /** Show the figure (null: no bar in view). */
  show(figure: Completeness | null): void;
  /** Run a task once the current one is done; a burst of changes is counted once. */
  schedule?: (task: () => void) => void;
}

export class VisibleSeconds {
  private queued = false;

  constructor(private readonly deps: VisibleSecondsDeps) {
    deps.store.onChange(() => this.changed());
  }

  /** The figure as of now. */
  current(): Completeness | null {
    const { store, chart } = this.deps;
    const range = chart.visibleRange();
    const bars = range === null ? [] : store.between(range.from, range.to);
    return bars.length === 0 ? null : completenessOf(bars, this.deps.interval(), this.deps.now());
  }

  /** What the figure counts may have changed: it is shown again once the current task is done. */
  changed(): void {
    if (this.queued) return;
    this.queued = true;
    const schedule = this.deps.schedule ?? queueMicrotask;
    schedule(() => {
      this.queued = false;
      this.deps.show(this.current());
    });
  }
}
