/** The bottom bar, editor-style: data source, bars loaded, the clocks, and the chart's credit. */
import type { Source } from "./api.ts";
import { formatClock, zoneLabel } from "./format.ts";

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
  private readonly local = $("status-local");
  private readonly utc = $("status-utc");
  private readonly zone = $("status-zone");

  setSource(source: Source): void {
    this.source.textContent = SOURCE_NAMES[source];
    this.source.dataset.source = source;
  }

  setBars(count: number, loadingOlder: boolean, complete: boolean): void {
    const suffix = loadingOlder ? " · loading older…" : complete ? " · all history" : "";
    this.bars.textContent = `${count.toLocaleString("en-US")} bars${suffix}`;
  }

  tick(now: number): void {
    this.local.textContent = formatClock(now);
    this.utc.textContent = `${formatClock(now, true)} UTC`;
    this.zone.textContent = zoneLabel(new Date(now));
  }
}
