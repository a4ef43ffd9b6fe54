/** The bottom bar, editor-style: data source, bars loaded, the clocks, and the chart's credit. */
import type { Source } from "./api.ts";
import type { Completeness } from "./completeness.ts";
import { formatClock, formatCompleteness, formatCount, zoneLabel } from "./format.ts";

const SOURCE_NAMES: Record<Source, string> = {
  sim: "simulated",
  binance: "binance",
  replay: "replay",
  unknown: "unknown",
};

const $ = (id: string): HTMLElement => document.getElementById(id) as HTMLElement;

export class StatusBar {
  private readonly source = $("status-source");
  private readonly bars = $("status-bars");
  private readonly seconds = $("status-seconds");
  private readonly local = $("status-local");
  private readonly utc = $("status-utc");
  private readonly zone = $("status-zone");
  private zoneOffset: number | null = null;

  setSource(source: Source): void {
    this.source.textContent = SOURCE_NAMES[source];
    this.source.dataset.source = source;
  }

  setBars(count: number, loadingOlder: boolean, complete: boolean): void {
    const suffix = loadingOlder ? " · loading older…" : complete ? " · all history" : "";
    this.bars.textContent = `${formatCount(count)} bars${suffix}`;
  }

  /** How many of the seconds the visible candles should hold are stored. */
  setCompleteness(c: Completeness | null): void {
    this.seconds.hidden = c === null || c.expected === 0;
    if (c === null || c.expected === 0) return;
    this.seconds.dataset.complete = String(c.stored >= c.expected);
    this.seconds.textContent = `seconds ${formatCompleteness(c.stored, c.expected)}`;
    this.seconds.title =
      `${formatCount(c.stored)} of ${formatCount(c.expected)} seconds stored in the visible range` +
      (c.uncounted > 0
        ? `; ${formatCount(c.uncounted)} live bars not counted (their counts come by REST)`
        : "");
  }

  tick(now: number): void {
    this.local.textContent = formatClock(now);
    this.utc.textContent = `${formatClock(now, true)} UTC`;
    // The zone's name comes from `Intl`, asked again only when the offset changes (a DST change),
    // and once the page is idle: `Intl`'s first use in a fresh page costs tens of milliseconds,
    // which the first tick would otherwise add before the first candles.
    const offset = new Date(now).getTimezoneOffset();
    if (offset !== this.zoneOffset) {
      this.zoneOffset = offset;
      whenIdle(() => {
        this.zone.textContent = zoneLabel(new Date());
      });
    }
  }
}

/** Run `task` when the page has nothing else to do (within a second), or soon where the
 * browser cannot say. */
function whenIdle(task: () => void): void {
  if (typeof requestIdleCallback === "function") requestIdleCallback(task, { timeout: 1000 });
  else setTimeout(task, 200);
}
