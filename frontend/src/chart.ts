/**
 * The candlestick chart: lightweight-charts with candles on top, volume in its own pane, and the
 * indicators ({@link StudySet}) over the candles or in panes below.
 */
import {
  CandlestickSeries,
  ColorType,
  CrosshairMode,
  HistogramSeries,
  LineStyle,
  createChart,
  type CandlestickData,
  type HistogramData,
  type IChartApi,
  type ISeriesApi,
  type LogicalRange,
  type MouseEventParams,
  type Time,
  type UTCTimestamp,
} from "lightweight-charts";
import type { Bar } from "./bars.ts";
import { isIncomplete } from "./completeness.ts";
import { formatCrosshairTime, formatTick, type TickKind } from "./format.ts";
import { StudySeries } from "./indicators/study-series.ts";
import { StudySet } from "./indicators/studies.ts";
import type { IndicatorSpec } from "./indicators/types.ts";
import type { Interval } from "./intervals.ts";
import type { PriceFormat } from "./precision.ts";
import { theme } from "./theme.ts";

/** A performance mark set once, when the page's first candles reach the chart (benchmarks). */
export const FIRST_CANDLE_MARK = "cryptochart:first-candle";

/** Load older history when fewer than this many bars are left of the visible range. */
const HISTORY_MARGIN_BARS = 40;

const seconds = (time: Time): number => (typeof time === "number" ? time : 0);

export interface ChartEvents {
  /** The bar under the crosshair, or null when the pointer left the chart. */
  hover(time: number | null): void;
  /** The user scrolled close to the oldest bar loaded. */
  nearOldest(): void;
  /** The visible range changed (scrolled or zoomed). */
  scrolled(): void;
}

export class CandleChart {
  private readonly chart: IChartApi;
  private readonly candles: ISeriesApi<"Candlestick">;
  private readonly volume: ISeriesApi<"Histogram">;
  private readonly studySeries: StudySeries;
  /** The indicators shown, kept in step with the candles. */
  readonly studies: StudySet;
  private format: PriceFormat = { precision: 2, minMove: 0.01 };
  private interval: Interval = "1m";
  /**
   * Seconds added to every time handed to the library, which places day and hour ticks on UTC
   * boundaries: shifted by the local offset they fall on local ones. One offset per view keeps
   * the times ascending across a DST change; labels undo it and format the true instant.
   */
  private shift = 0;
  /** A fit waiting for the chart's first width (see {@link fit}). */
  private fitPending: (() => void) | null = null;

  constructor(
    private readonly container: HTMLElement,
    events: ChartEvents,
    /** Unix ms now, for telling the forming candle from one missing seconds. */
    private readonly now: () => number,
  ) {
    // Out of the layout until its first data (or a state with none): an empty chart's first
    // paint (every canvas sized and drawn) is ~100 ms in a fresh page, and it would run before
    // the page gets to the first history answer.
    container.hidden = true;
    this.chart = createChart(container, {
      autoSize: true,
      layout: {
        background: { type: ColorType.Solid, color: theme.bg },
        textColor: theme.muted,
        fontFamily: theme.mono,
        fontSize: 11,
        // The licence asks for a visible link to TradingView; the logo on the chart is one.
        attributionLogo: true,
        panes: {
          separatorColor: theme.border,
          separatorHoverColor: theme.borderHover,
          enableResize: true,
        },
      },
      // One finger pans (and keeps gliding), two pinch-zoom; a drag on an axis scales it.
      handleScroll: {
        mouseWheel: true,
        pressedMouseMove: true,
        horzTouchDrag: true,
        vertTouchDrag: true,
      },
      handleScale: {
        mouseWheel: true,
        pinch: true,
        axisPressedMouseMove: true,
        axisDoubleClickReset: true,
      },
      kineticScroll: { touch: true, mouse: false },
      grid: {
        vertLines: { color: theme.grid },
        horzLines: { color: theme.grid },
      },
      crosshair: {
        mode: CrosshairMode.Normal,
        vertLine: {
          color: theme.crosshair,
          style: LineStyle.Dashed,
          labelBackgroundColor: theme.raised,
        },
        horzLine: {
          color: theme.crosshair,
          style: LineStyle.Dashed,
          labelBackgroundColor: theme.raised,
        },
      },
      rightPriceScale: { borderColor: theme.border, scaleMargins: { top: 0.12, bottom: 0.06 } },
      timeScale: {
        borderColor: theme.border,
        timeVisible: true,
        secondsVisible: false,
        rightOffset: 6,
        barSpacing: 7,
        minBarSpacing: 0.5,
        tickMarkFormatter: (time: Time, kind: number) =>
          formatTick(this.realMs(time), kind as TickKind, this.interval === "1d"),
      },
      localization: {
        timeFormatter: (time: Time) => formatCrosshairTime(this.realMs(time), this.interval),
      },
    });

    this.candles = this.chart.addSeries(CandlestickSeries, {
      upColor: theme.up,
      downColor: theme.down,
      // Borders as the bodies, so a hollow (incomplete) candle keeps its outline.
      borderVisible: true,
      borderUpColor: theme.up,
      borderDownColor: theme.down,
      wickUpColor: theme.up,
      wickDownColor: theme.down,
      priceLineStyle: LineStyle.Dotted,
    });
    this.volume = this.chart.addSeries(
      HistogramSeries,
      { priceFormat: { type: "volume" }, priceLineVisible: false, lastValueVisible: false },
      1,
    );
    this.volume
      .priceScale()
      .applyOptions({ scaleMargins: { top: 0.15, bottom: 0 }, borderColor: theme.border });
    const [pricePane, volumePane] = this.chart.panes();
    pricePane?.setStretchFactor(4);
    volumePane?.setStretchFactor(1);
    this.studySeries = new StudySeries(this.chart, (time) => (time + this.shift) as UTCTimestamp);
    this.studies = new StudySet(this.studySeries);

    this.chart.subscribeCrosshairMove((param: MouseEventParams) => {
      events.hover(
        param.time !== undefined && param.point !== undefined
          ? this.realMs(param.time) / 1000
          : null,
      );
    });
    this.chart.timeScale().subscribeVisibleLogicalRangeChange((range: LogicalRange | null) => {
      if (this.isNearOldest(range)) events.nearOldest();
      events.scrolled();
    });
  }

  /** Whether the view (by default the current one) reaches within a margin of the oldest bar. */
  isNearOldest(
    range: LogicalRange | null = this.chart.timeScale().getVisibleLogicalRange(),
  ): boolean {
    if (range === null) return false;
    const info = this.candles.barsInLogicalRange(range);
    return info !== null && info.barsBefore < HISTORY_MARGIN_BARS;
  }

  /** Open times (Unix seconds) of the first and last bar in view, or null with none. */
  visibleRange(): { from: number; to: number } | null {
    const range = this.chart.timeScale().getVisibleRange();
    if (range === null) return null;
    return { from: this.realMs(range.from) / 1000, to: this.realMs(range.to) / 1000 };
  }

  /** Show a new symbol or interval: all bars at once, scrolled to the newest. */
  show(bars: readonly Bar[], interval: Interval, format: PriceFormat): void {
    this.reveal();
    this.interval = interval;
    // Daily bars are UTC days and are labelled so; everything finer reads in local time.
    this.shift = interval === "1d" ? 0 : -new Date().getTimezoneOffset() * 60;
    this.chart.applyOptions({ timeScale: { secondsVisible: interval === "1s" } });
    this.setPriceFormat(format);
    this.setAll(bars);
    this.fit(bars.length);
  }

  /**
   * Space `count` bars and scroll to the newest. A short history fills the width with wider bars
   * instead of leaving the left side empty; a chart just put in the layout has no width yet, and
   * is fitted once it has one.
   */
  private fit(count: number): void {
    const timeScale = this.chart.timeScale();
    if (this.fitPending !== null) timeScale.unsubscribeSizeChange(this.fitPending);
    this.fitPending = null;
    const width = timeScale.width();
    if (width === 0) {
      // After the resize is through (the chart settles its scroll on a resize), unless another
      // fit came first.
      const pending = (): void => {
        requestAnimationFrame(() => {
          if (this.fitPending === pending) this.fit(count);
        });
      };
      this.fitPending = pending;
      timeScale.subscribeSizeChange(pending);
      return;
    }
    const barSpacing = Math.min(16, Math.max(7, width / (count + 4)));
    this.chart.applyOptions({ timeScale: { barSpacing } });
    timeScale.scrollToRealTime();
  }

  /** Put the chart in the layout (it starts out of it, until there is something to show). */
  reveal(): void {
    this.container.hidden = false;
  }

  /** Decimals of the price axis, the candles' and the indicators' in prices. */
  get pricePrecision(): number {
    return this.format.precision;
  }

  get priceFormat(): PriceFormat {
    return { ...this.format };
  }

  /** The price axis's decimals and step (the symbol's tick size, or a guess from its prices). */
  setPriceFormat(format: PriceFormat): void {
    this.format = format;
    this.candles.applyOptions({ priceFormat: { type: "price", ...format } });
    this.studySeries.setPricePrecision(format.precision);
  }

  /** Show these indicators over `bars` (the bars on the chart). */
  setIndicators(specs: readonly IndicatorSpec[], bars: readonly Bar[]): void {
    this.studies.configure(specs, bars);
  }

  /** Replace the data keeping the view where it is (after older history was prepended). */
  setAll(bars: readonly Bar[]): void {
    this.candles.setData(bars.map((b) => this.candle(b)));
    this.volume.setData(bars.map((b) => this.volumeBar(b)));
    this.studies.reset(bars);
    if (bars.length > 0 && performance.getEntriesByName(FIRST_CANDLE_MARK).length === 0) {
      performance.mark(FIRST_CANDLE_MARK);
    }
  }

  /** The oldest bars were dropped (to bound memory): the rest stay, indicators as computed. */
  dropOlder(bars: readonly Bar[]): void {
    this.candles.setData(bars.map((b) => this.candle(b)));
    this.volume.setData(bars.map((b) => this.volumeBar(b)));
    const first = bars[0];
    if (first !== undefined) this.studies.trimBefore(first.time);
  }

  /** One live bar: the newest one changed or a newer one began; indicators follow its tail. */
  update(bar: Bar): void {
    this.candles.update(this.candle(bar));
    this.volume.update(this.volumeBar(bar));
    this.studies.update(bar);
  }

  clear(): void {
    this.candles.setData([]);
    this.volume.setData([]);
    this.studies.reset([]);
  }

  private realMs(time: Time): number {
    return (seconds(time) - this.shift) * 1000;
  }

  private candle(bar: Bar): CandlestickData {
    const time = (bar.time + this.shift) as UTCTimestamp;
    const candle = { time, open: bar.open, high: bar.high, low: bar.low, close: bar.close };
    if (!isIncomplete(bar, this.interval, this.now())) return candle;
    const up = bar.close >= bar.open;
    return {
      ...candle,
      color: theme.incompleteBody,
      borderColor: up ? theme.up : theme.down,
      wickColor: up ? theme.incompleteUpWick : theme.incompleteDownWick,
    };
  }

  private volumeBar(bar: Bar): HistogramData {
    const time = (bar.time + this.shift) as UTCTimestamp;
    return {
      time,
      value: bar.volume,
      color: bar.close >= bar.open ? theme.upVolume : theme.downVolume,
    };
  }
}
