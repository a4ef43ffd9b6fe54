/**
 * The toolbar's indicator menu: the usual indicators as switches, the ones on first, and a field
 * for any other (`sma100`, `ema9`); each change hands the whole new list to the page.
 */
import {
  INDICATOR_KINDS,
  MAX_INDICATORS,
  PRESET_INDICATORS,
  indicatorLabel,
  parseIndicator,
  parseIndicatorList,
} from "./indicators/registry.ts";
import type { IndicatorSpec } from "./indicators/types.ts";

export interface IndicatorMenuElements {
  toggle: HTMLButtonElement;
  count: HTMLElement;
  menu: HTMLElement;
  options: HTMLElement;
  form: HTMLFormElement;
  input: HTMLInputElement;
  error: HTMLElement;
}

export class IndicatorMenu {
  private specs: readonly IndicatorSpec[] = [];

  constructor(
    private readonly el: IndicatorMenuElements,
    private readonly change: (specs: IndicatorSpec[]) => void,
  ) {
    el.toggle.addEventListener("click", () => this.open(!this.isOpen));
    el.options.addEventListener("change", (event) => {
      const box = event.target as HTMLInputElement;
      const id = box.dataset.indicator;
      if (id === undefined) return;
      const ids = this.specs.map((s) => s.id).filter((s) => s !== id);
      this.apply(box.checked ? [...ids, id] : ids);
    });
    el.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.apply([...this.specs.map((s) => s.id), ...el.input.value.split(/[\s,]+/)]);
      if (el.error.hidden) el.input.value = "";
    });
    document.addEventListener("pointerdown", (event) => {
      const inside = event.target instanceof Node && el.menu.parentElement?.contains(event.target);
      if (this.isOpen && !inside) this.open(false);
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.isOpen) this.open(false);
    });
  }

  /** Show what is on (from the address or the last change). */
  set(specs: readonly IndicatorSpec[]): void {
    this.specs = specs;
    const on = new Set(specs.map((s) => s.id));
    const presets = PRESET_INDICATORS.map((id) => parseIndicator(id) as IndicatorSpec);
    const others = specs.filter((s) => !presets.some((p) => p.id === s.id));
    this.el.options.replaceChildren(...[...presets, ...others].map((s) => option(s, on.has(s.id))));
    this.el.count.textContent = specs.length > 0 ? String(specs.length) : "";
  }

  private get isOpen(): boolean {
    return this.el.toggle.getAttribute("aria-expanded") === "true";
  }

  private apply(ids: readonly string[]): void {
    const { specs, ignored } = parseIndicatorList(ids.join(","));
    this.el.error.hidden = ignored.length === 0;
    this.el.error.textContent = ignored.join("; ");
    this.change(specs);
  }

  private open(open: boolean): void {
    this.el.menu.hidden = !open;
    this.el.toggle.setAttribute("aria-expanded", String(open));
    if (!open) this.el.error.hidden = true;
  }
}

function option(spec: IndicatorSpec, checked: boolean): HTMLLabelElement {
  const label = document.createElement("label");
  label.className = "indicator-option";
  const box = document.createElement("input");
  box.type = "checkbox";
  box.checked = checked;
  box.dataset.indicator = spec.id;
  box.dataset.testid = `indicator-${spec.id}`;
  const name = document.createElement("span");
  name.textContent = indicatorLabel(spec);
  const hint = document.createElement("small");
  hint.textContent = INDICATOR_KINDS[spec.kind].name;
  label.append(box, name, hint);
  label.title = `${spec.id} in the address; at most ${MAX_INDICATORS} at once`;
  return label;
}
