/**
 * The symbol list: every symbol with data, its last price (at its tick size, flashing on change)
 * and 24h change.
 */
import { direction, formatChangePercent, splitSymbol } from "./format.ts";
import { formatPrice, type Sizes } from "./precision.ts";

interface Row {
  el: HTMLElement;
  price: HTMLElement;
  change: HTMLElement;
  lastPrice: string;
}

export class SymbolList {
  private rows = new Map<string, Row>();
  private selected = "";
  private query = "";

  constructor(
    private readonly list: HTMLElement,
    private readonly search: HTMLInputElement,
    private readonly empty: HTMLElement,
    private readonly onSelect: (symbol: string) => void,
    /** A symbol's tick and lot size (undeclared: null), read whenever a price is written. */
    private readonly sizesOf: (symbol: string) => Sizes,
  ) {
    list.addEventListener("click", (event) => {
      const row = (event.target as HTMLElement).closest<HTMLElement>("[data-symbol]");
      if (row?.dataset.symbol) this.onSelect(row.dataset.symbol);
    });
    search.addEventListener("input", () => this.filter(search.value));
    search.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        const first = this.visible()[0];
        if (first) {
          this.onSelect(first);
          search.blur();
        }
      } else if (event.key === "Escape") {
        search.value = "";
        this.filter("");
        search.blur();
      }
    });
  }

  /** Show exactly these symbols, keeping the prices already known. */
  setSymbols(symbols: readonly string[]): void {
    const next = new Map<string, Row>();
    for (const symbol of symbols) next.set(symbol, this.rows.get(symbol) ?? createRow(symbol));
    this.rows = next;
    this.list.replaceChildren(...[...next.values()].map((r) => r.el));
    this.setSelected(this.selected);
    this.filter(this.query);
  }

  setSelected(symbol: string): void {
    this.selected = symbol;
    for (const [s, row] of this.rows) {
      const on = s === symbol;
      row.el.classList.toggle("selected", on);
      row.el.setAttribute("aria-selected", String(on));
    }
  }

  /** A new last price; the cell flashes green or red when it moved. */
  setPrice(symbol: string, price: string): void {
    const row = this.rows.get(symbol);
    if (!row || row.lastPrice === price) return;
    const move = direction(Number(price) - Number(row.lastPrice));
    const hadPrice = row.lastPrice !== "";
    row.lastPrice = price;
    row.price.textContent = formatPrice(price, this.sizesOf(symbol));
    if (hadPrice && move !== "flat") flash(row.price, move);
  }

  /** Write every price again (the symbols' sizes were read again and may have changed). */
  rewritePrices(): void {
    for (const [symbol, row] of this.rows) {
      if (row.lastPrice === "") continue;
      const text = formatPrice(row.lastPrice, this.sizesOf(symbol));
      if (row.price.textContent !== text) row.price.textContent = text;
    }
  }

  setChange(symbol: string, percent: string): void {
    const row = this.rows.get(symbol);
    if (!row) return;
    row.change.textContent = formatChangePercent(percent);
    row.change.dataset.dir = direction(Number(percent));
  }

  focusSearch(): void {
    this.search.focus();
    this.search.select();
  }

  /** Text in place of the rows while there are none (e.g. the API is not answering yet). */
  setPlaceholder(text: string): void {
    if (this.rows.size > 0) return;
    this.empty.textContent = text;
    this.empty.hidden = false;
  }

  private filter(query: string): void {
    this.query = query.trim().toUpperCase();
    for (const [symbol, row] of this.rows) row.el.hidden = !symbol.includes(this.query);
    if (this.rows.size === 0) {
      this.empty.textContent = "No symbol has data yet.";
      this.empty.hidden = false;
      return;
    }
    this.empty.hidden = this.visible().length > 0;
    this.empty.textContent = `No symbol matches “${query.trim()}”`;
  }

  private visible(): string[] {
    return [...this.rows].filter(([, row]) => !row.el.hidden).map(([symbol]) => symbol);
  }
}

function createRow(symbol: string): Row {
  const el = document.createElement("div");
  el.className = "row";
  el.setAttribute("role", "option");
  el.dataset.symbol = symbol;
  el.dataset.testid = `symbol-row-${symbol}`;
  el.title = symbol;

  const [base, quote] = splitSymbol(symbol);
  const name = document.createElement("span");
  name.className = "sym";
  const quoteEl = document.createElement("span");
  quoteEl.className = "quote";
  quoteEl.textContent = quote;
  name.append(base, quoteEl);

  const price = document.createElement("span");
  price.className = "price num";
  price.dataset.testid = "symbol-price";
  price.textContent = "—";

  const change = document.createElement("span");
  change.className = "change num";
  change.dataset.testid = "symbol-change";
  change.textContent = "";

  el.append(name, price, change);
  return { el, price, change, lastPrice: "" };
}

function flash(el: HTMLElement, move: "up" | "down"): void {
  const color = getComputedStyle(el)
    .getPropertyValue(move === "up" ? "--up" : "--down")
    .trim();
  el.animate(
    [
      { color, backgroundColor: `color-mix(in srgb, ${color} 12%, transparent)` },
      { color: "", backgroundColor: "transparent" },
    ],
    { duration: 700, easing: "ease-out" },
  );
}
