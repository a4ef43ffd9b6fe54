/**
 * What the chart area says when it has no candles to show: loading, empty, API down, unknown
 * symbol.
 */
export type ChartState = "loading" | "ready" | "empty" | "api-down" | "unknown-symbol" | "rejected";

export interface ChartStateDetail {
  symbol: string;
  interval: string;
  /** For api-down: when the next attempt starts. */
  retryAt?: number;
  /** For rejected / unknown-symbol: the API's words. */
  detail?: string;
  /** For unknown-symbol: a symbol to offer instead. */
  suggestion?: string;
}

export interface ChartStateActions {
  retryNow(): void;
  open(symbol: string): void;
}

export class ChartStateView {
  private state: ChartState = "loading";
  private detail: ChartStateDetail = { symbol: "", interval: "" };
  private showTimer: number | undefined;

  constructor(
    private readonly root: HTMLElement,
    private readonly actions: ChartStateActions,
  ) {
    root.addEventListener("click", (event) => {
      const target = (event.target as HTMLElement).closest<HTMLElement>("[data-action]");
      if (target?.dataset.action === "retry") this.actions.retryNow();
      if (target?.dataset.action === "open" && target.dataset.symbol) {
        this.actions.open(target.dataset.symbol);
      }
    });
  }

  get current(): ChartState {
    return this.state;
  }

  set(state: ChartState, detail: ChartStateDetail): void {
    this.state = state;
    this.detail = detail;
    this.root.dataset.state = state;
    window.clearTimeout(this.showTimer);
    if (state === "ready") {
      this.root.hidden = true;
      return;
    }
    this.render(Date.now());
    // A fast load should not blink a "loading" card.
    if (state === "loading") {
      this.showTimer = window.setTimeout(() => (this.root.hidden = false), 250);
    } else this.root.hidden = false;
  }

  /** Once a second: the retry countdown. */
  tick(now: number): void {
    if (this.state === "api-down") this.render(now);
  }

  private render(now: number): void {
    const { symbol, interval, retryAt, detail, suggestion } = this.detail;
    const title = document.createElement("div");
    title.className = "state-title";
    const body = document.createElement("div");
    body.className = "state-body";
    const actions = document.createElement("div");
    actions.className = "state-actions";

    switch (this.state) {
      case "loading":
        title.textContent = `Loading ${symbol} · ${interval}`;
        body.textContent = "Fetching candles from the API…";
        break;
      case "empty":
        title.textContent = `No candles yet for ${symbol} · ${interval}`;
        body.textContent = "The chart fills in as soon as the first kline arrives.";
        break;
      case "api-down": {
        const seconds = Math.max(0, Math.ceil(((retryAt ?? now) - now) / 1000));
        title.textContent = "Can’t reach the API";
        body.textContent = seconds > 0 ? `Retrying in ${seconds}s…` : "Retrying…";
        actions.append(button("Retry now", { action: "retry" }));
        break;
      }
      case "unknown-symbol":
        title.textContent = `Unknown symbol “${symbol}”`;
        body.textContent = detail
          ? `The API says: ${detail}`
          : "The API has no data for this symbol.";
        if (suggestion) {
          actions.append(button(`Open ${suggestion}`, { action: "open", symbol: suggestion }));
        }
        break;
      case "rejected":
        title.textContent = `The API refused ${symbol} · ${interval}`;
        body.textContent = detail ?? "";
        actions.append(button("Try again", { action: "retry" }));
        break;
      case "ready":
        break;
    }
    this.root.replaceChildren(title, body, ...(actions.childElementCount > 0 ? [actions] : []));
  }
}

function button(label: string, data: Record<string, string>): HTMLButtonElement {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "btn";
  b.textContent = label;
  Object.assign(b.dataset, data);
  return b;
}
