/** Time and timers, passed in so that the page's logic runs under a fake clock in unit tests. */
export interface Clock {
  /** Milliseconds since the Unix epoch, as `Date.now()`. */
  now(): number;
  setTimeout(callback: () => void, ms: number): number;
  clearTimeout(handle: number | undefined): void;
  setInterval(callback: () => void, ms: number): number;
  clearInterval(handle: number | undefined): void;
  /** Run once before the next repaint (`requestAnimationFrame`). */
  nextFrame(callback: () => void): void;
}

/** The browser's clock and timers. */
export const browserClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => window.setTimeout(callback, ms),
  clearTimeout: (handle) => window.clearTimeout(handle),
  setInterval: (callback, ms) => window.setInterval(callback, ms),
  clearInterval: (handle) => window.clearInterval(handle),
  nextFrame: (callback) => void requestAnimationFrame(() => callback()),
};
