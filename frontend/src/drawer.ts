/**
 * The symbol list as a drawer on narrow screens: a header button slides it in over the chart, a
 * tap on the backdrop, Escape or picking a symbol slides it out. On wide screens CSS keeps the
 * list beside the chart and hides the button, and the drawer's state changes nothing there.
 */

/** The parts of an element the drawer touches (an `HTMLElement` in the page). */
export interface DrawerElement {
  addEventListener(type: "click", listener: () => void): void;
  setAttribute(name: string, value: string): void;
  readonly classList: { toggle(token: string, force: boolean): boolean };
  hidden: boolean | string;
}

export interface DrawerKeys {
  addEventListener(type: "keydown", listener: (event: { key: string }) => void): void;
}

export class Drawer {
  private shown = false;

  constructor(
    private readonly toggle: DrawerElement,
    private readonly panel: DrawerElement,
    private readonly backdrop: DrawerElement,
    keys: DrawerKeys,
  ) {
    toggle.addEventListener("click", () => this.set(!this.shown));
    backdrop.addEventListener("click", () => this.set(false));
    keys.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.shown) this.set(false);
    });
    this.set(false);
  }

  get open(): boolean {
    return this.shown;
  }

  set(open: boolean): void {
    this.shown = open;
    this.panel.classList.toggle("open", open);
    this.toggle.setAttribute("aria-expanded", String(open));
    this.backdrop.hidden = !open;
  }
}
