/** End-to-end latency of live frames (receive time − exchange event time), median over a window. */
export class LatencyWindow {
  private samples: { at: number; ms: number }[] = [];

  constructor(private readonly windowMs = 60_000) {}

  add(latencyMs: number, now: number): void {
    if (!Number.isFinite(latencyMs)) return;
    this.samples.push({ at: now, ms: latencyMs });
    this.prune(now);
  }

  /** The median of the samples received in the last window, or null when there are none. */
  p50(now: number): number | null {
    this.prune(now);
    const n = this.samples.length;
    if (n === 0) return null;
    const sorted = this.samples.map((s) => s.ms).sort((a, b) => a - b);
    const mid = n >> 1;
    return n % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  }

  get count(): number {
    return this.samples.length;
  }

  private prune(now: number): void {
    const cutoff = now - this.windowMs;
    let drop = 0;
    while (drop < this.samples.length && this.samples[drop]!.at < cutoff) drop++;
    if (drop > 0) this.samples.splice(0, drop);
  }
}
