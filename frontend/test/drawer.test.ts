import assert from "node:assert/strict";
import { test } from "node:test";
import { Drawer, type DrawerElement } from "../src/drawer.ts";

class FakeElement implements DrawerElement {
  readonly attributes = new Map<string, string>();
  readonly classes = new Set<string>();
  hidden: boolean | string = false;
  private readonly clicks: (() => void)[] = [];
  readonly classList = {
    toggle: (token: string, force: boolean): boolean => {
      if (force) this.classes.add(token);
      else this.classes.delete(token);
      return force;
    },
  };

  addEventListener(_type: "click", listener: () => void): void {
    this.clicks.push(listener);
  }

  setAttribute(name: string, value: string): void {
    this.attributes.set(name, value);
  }

  click(): void {
    for (const listener of this.clicks) listener();
  }
}

function setup() {
  const toggle = new FakeElement();
  const panel = new FakeElement();
  const backdrop = new FakeElement();
  const keys: ((event: { key: string }) => void)[] = [];
  const drawer = new Drawer(toggle, panel, backdrop, {
    addEventListener: (_type, listener) => keys.push(listener),
  });
  const press = (key: string) => keys.forEach((listener) => listener({ key }));
  return { toggle, panel, backdrop, drawer, press };
}

test("the drawer starts closed, its button says so", () => {
  const { toggle, panel, backdrop, drawer } = setup();
  assert.equal(drawer.open, false);
  assert.equal(toggle.attributes.get("aria-expanded"), "false");
  assert.ok(!panel.classes.has("open"));
  assert.equal(backdrop.hidden, true);
});

test("the button opens and closes it; the backdrop and Escape close it", () => {
  const { toggle, panel, backdrop, drawer, press } = setup();
  toggle.click();
  assert.equal(drawer.open, true);
  assert.ok(panel.classes.has("open"));
  assert.equal(backdrop.hidden, false);
  assert.equal(toggle.attributes.get("aria-expanded"), "true");
  toggle.click();
  assert.equal(drawer.open, false);

  toggle.click();
  backdrop.click();
  assert.equal(drawer.open, false);
  toggle.click();
  press("a");
  assert.equal(drawer.open, true);
  press("Escape");
  assert.equal(drawer.open, false);
  assert.equal(backdrop.hidden, true);
});
