/**
 * The crosshair legend: O H L C V of the hovered bar (or the newest), exactly, at the symbol's
 * tick and lot size, and the indicators' values at that bar.
 */
import type { Bar } from "./bars.ts";
import { expectedSeconds, isIncomplete } from "./completeness.ts";
import { direction, formatBarTime, formatIndicatorValue } from "./format.ts";
import { indicatorDecimals, indicatorLabel } from "./indicators/registry.ts";
import type { Study } from "./indicators/studies.ts";
import type { Interval } from "./intervals.ts";
import { formatPrice, formatQuantity, UNDECLARED, type Sizes } from "./precision.ts";

export interface StudyValues {
  study: Study;
  values: readonly (number | null)[];
}

export class Legend {
  private readonly studies: HTMLElement;
  private readonly fields: Record<
    "o" | "h" | "l" | "c" | "v" | "chg" | "time" | "utc" | "secs",
    HTMLElement
  >;

  constructor(private readonly root: HTMLElement) {
    root.innerHTML = `
      <div class="legend-values">
        <span class="k">O</span><span class="v num" data-f="o"></span>
        <span class="k">H</span><span class="v num" data-f="h"></span>
        <span class="k">L</span><span class="v num" data-f="l"></span>
        <span class="k">C</span><span class="v num" data-f="c"></span>
        <span class="k">V</span><span class="v num" data-f="v"></span>
        <span class="v num chg" data-f="chg"></span>
      </div>
      <div class="legend-time">
        <span class="num" data-f="time"></span><span class="num utc" data-f="utc"></span>
        <span class="num secs" data-f="secs" data-testid="legend-seconds" hidden></span>
      </div>
      <div class="legend-studies" id="legend-studies" data-testid="legend-studies"></div>`;
    this.studies = root.querySelector<HTMLElement>(".legend-studies")!;
    const get = (f: string) => root.querySelector<HTMLElement>(`[data-f="${f}"]`)!;
    this.fields = {
      o: get("o"),
      h: get("h"),
      l: get("l"),
      c: get("c"),
      v: get("v"),
      chg: get("chg"),
      time: get("time"),
      utc: get("utc"),
      secs: get("secs"),
    };
  }

  /**
   * `hovered` shows the UTC time next to the local one, as the crosshair sits on a bar; a bar
   * missing seconds (as of `now`) says how many it holds. Prices and volume are written at the
   * symbol's `sizes` (when declared).
   */
  show(
    bar: Bar | undefined,
    interval: Interval,
    hovered: boolean,
    now: number,
    sizes: Sizes = UNDECLARED,
  ): void {
    this.root.hidden = bar === undefined;
    if (bar === undefined) return;
    const dir = direction(bar.close - bar.open);
    this.root.dataset.dir = dir;
    const f = this.fields;
    f.o.textContent = formatPrice(bar.raw.open, sizes);
    f.h.textContent = formatPrice(bar.raw.high, sizes);
    f.l.textContent = formatPrice(bar.raw.low, sizes);
    f.c.textContent = formatPrice(bar.raw.close, sizes);
    f.v.textContent = formatQuantity(bar.raw.volume, sizes);
    const pct = bar.open !== 0 ? ((bar.close - bar.open) / bar.open) * 100 : 0;
    f.chg.textContent = `${pct > 0 ? "+" : ""}${pct.toFixed(2)}%`;
    const ms = bar.time * 1000;
    const utc = `${formatBarTime(ms, interval, true)} UTC`;
    // A daily bar is a UTC day: its date is the same everywhere, so it is shown as such.
    f.time.textContent = interval === "1d" ? utc : formatBarTime(ms, interval);
    f.time.title = utc;
    f.utc.textContent = hovered && interval !== "1d" ? utc : "";
    const incomplete = isIncomplete(bar, interval, now);
    f.secs.hidden = !incomplete;
    f.secs.textContent = incomplete
      ? `${bar.seconds} of ${expectedSeconds(bar, interval, now)} seconds`
      : "";
  }

  /** Each indicator's values at the shown bar, prices at `pricePrecision` decimals. */
  showStudies(rows: readonly StudyValues[], pricePrecision: number): void {
    this.studies.hidden = rows.length === 0;
    this.studies.replaceChildren(
      ...rows.map(({ study, values }) => {
        const item = document.createElement("span");
        item.className = "study";
        item.dataset.study = study.spec.id;
        const name = document.createElement("span");
        name.className = "k";
        name.style.color = study.color;
        name.textContent = indicatorLabel(study.spec);
        const decimals = indicatorDecimals(study.def, pricePrecision);
        const text = document.createElement("span");
        text.className = "num";
        text.textContent = values.map((v) => formatIndicatorValue(v, decimals)).join(" ");
        item.append(name, text);
        return item;
      }),
    );
  }
}
