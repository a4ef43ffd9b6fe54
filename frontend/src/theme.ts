/** Colours and fonts the canvas needs; they mirror the CSS custom properties in style.css. */
export const theme = {
  bg: "#0f1115",
  raised: "#262b35",
  grid: "#181b21",
  border: "#23272f",
  borderHover: "rgba(110, 118, 129, 0.25)",
  crosshair: "#545b66",
  muted: "#7c8390",
  up: "#3fb68b",
  down: "#e5534b",
  upVolume: "rgba(63, 182, 139, 0.42)",
  downVolume: "rgba(229, 83, 75, 0.42)",
  /** Candles with seconds missing: hollow, their wicks dimmed. */
  incompleteBody: "rgba(15, 17, 21, 0)",
  incompleteUpWick: "rgba(63, 182, 139, 0.5)",
  incompleteDownWick: "rgba(229, 83, 75, 0.5)",
  /** Indicator lines, taken in order by the indicators switched on. */
  studies: ["#e0af68", "#7aa2f7", "#bb9af7", "#7dcfff", "#ff9e64", "#9ece6a", "#f7768e", "#c0caf5"],
  macd: "#7aa2f7",
  macdSignal: "#ff9e64",
  guide: "#4b515c",
  mono:
    'ui-monospace, "JetBrains Mono", "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", ' +
    '"Liberation Mono", monospace',
} as const;
