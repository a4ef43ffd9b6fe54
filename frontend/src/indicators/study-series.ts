/**
 * The studies drawn with lightweight-charts: price-pane indicators as line series over the
 * candles, the others each in a pane of their own below the volume (`addSeries(…, paneIndex)`).
 */
import {
  HistogramSeries,
  LineSeries,
  LineStyle,
  type HistogramData,
  type IChartApi,
  type ISeriesApi,
  type LineData,
  type PriceFormatCustom,
  type UTCTimestamp,
  type WhitespaceData,
} from "lightweight-charts";
import { formatIndicatorValue } from "../format.ts";
import { theme } from "../theme.ts";
import { indicatorDecimals } from "./registry.ts";
import type { LinePoint, Study, StudySink } from "./studies.ts";
import type { LineSpec } from "./types.ts";

/** The volume pane is index 1; studies with panes of their own come after it. */
const FIRST_STUDY_PANE = 2;
const STUDY_PANE_STRETCH = 1.6;

/** A study's line as drawn: a line series, or a histogram (MACD's). */
type Drawn =
  | { kind: "line"; series: ISeriesApi<"Line">; study: Study }
  | { kind: "histogram"; series: ISeriesApi<"Histogram">; study: Study };

export class StudySeries implements StudySink {
  private drawn: Drawn[][] = [];
  private pricePrecision = 2;

  constructor(
    private readonly chart: IChartApi,
    /** The chart's time for a bar's open time in seconds (see `CandleChart`'s shift). */
    private readonly toChartTime: (seconds: number) => UTCTimestamp,
  ) {}

  /** The candles' precision, shared by the studies shown in prices. */
  setPricePrecision(precision: number): void {
    this.pricePrecision = precision;
    for (const lines of this.drawn) {
      for (const d of lines) d.series.applyOptions({ priceFormat: this.format(d.study) });
    }
  }

  layout(studies: readonly Study[]): void {
    for (const lines of this.drawn) for (const d of lines) this.chart.removeSeries(d.series);
    let pane = FIRST_STUDY_PANE;
    this.drawn = studies.map((study) => {
      const paneIndex = study.def.pane === "price" ? 0 : pane++;
      return study.lines.map((spec) => this.add(study, spec, paneIndex));
    });
    this.chart.panes().forEach((p, i) => {
      if (i >= FIRST_STUDY_PANE) p.setStretchFactor(STUDY_PANE_STRETCH);
    });
  }

  setLine(study: number, line: number, points: readonly LinePoint[]): void {
    const d = this.drawn[study]?.[line];
    if (d?.kind === "histogram") d.series.setData(points.map((p) => this.bar(p.time, p.value)));
    if (d?.kind === "line") d.series.setData(points.map((p) => this.point(p.time, p.value)));
  }

  updateLine(study: number, line: number, time: number, value: number | null): void {
    const d = this.drawn[study]?.[line];
    const blank: WhitespaceData = { time: this.toChartTime(time) };
    if (d?.kind === "histogram") d.series.update(value === null ? blank : this.bar(time, value));
    if (d?.kind === "line") d.series.update(value === null ? blank : this.point(time, value));
  }

  private add(study: Study, spec: LineSpec, paneIndex: number): Drawn {
    const common = {
      priceFormat: this.format(study),
      priceLineVisible: false,
      lastValueVisible: spec.style !== "histogram",
      title: "",
    };
    if (spec.style === "histogram") {
      return {
        kind: "histogram",
        series: this.chart.addSeries(HistogramSeries, common, paneIndex),
        study,
      };
    }
    const line = this.chart.addSeries(
      LineSeries,
      {
        ...common,
        color: spec.color,
        lineWidth: 1,
        lineStyle: spec.style === "dashed" ? LineStyle.Dashed : LineStyle.Solid,
        crosshairMarkerVisible: false,
      },
      paneIndex,
    );
    // Guides belong to the pane, drawn once with its first line.
    if (spec === study.lines[0]) {
      for (const price of study.def.guides) {
        line.createPriceLine({
          price,
          color: theme.guide,
          lineWidth: 1,
          lineStyle: LineStyle.Dotted,
          axisLabelVisible: true,
          title: "",
        });
      }
    }
    return { kind: "line", series: line, study };
  }

  /** The axis labels round as the legend does. */
  private format(study: Study): PriceFormatCustom {
    const decimals = indicatorDecimals(study.def, this.pricePrecision);
    return {
      type: "custom",
      minMove: 10 ** -decimals,
      formatter: (value: number) => formatIndicatorValue(value, decimals),
    };
  }

  private point(time: number, value: number): LineData {
    return { time: this.toChartTime(time), value };
  }

  private bar(time: number, value: number): HistogramData {
    return {
      time: this.toChartTime(time),
      value,
      color: value >= 0 ? theme.upVolume : theme.downVolume,
    };
  }
}
