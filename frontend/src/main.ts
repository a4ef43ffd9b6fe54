import "./style.css";
import { App, type Snapshot } from "./app.ts";

declare global {
  interface Window {
    /** A read-only snapshot of the page's state, for browser tests. */
    readonly __cryptochart: Snapshot;
  }
}

const app = new App();
Object.defineProperty(window, "__cryptochart", {
  get: () => app.snapshot(),
  enumerable: false,
  configurable: false,
});
app.start();
