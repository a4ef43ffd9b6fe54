/**
 * The real Binance klines in shared/data/binance (see its SOURCE.md), read from their zip files.
 * The folder sits beside the repository: `<repo>/../shared/data/binance`, found by walking up
 * from this file to the directory holding `frontend/`, so the source and the compiled test find
 * it alike. A missing file fails the test that asked for it, loudly.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { unzipSync } from "fflate";
import type { RawKline } from "../src/api.ts";

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "frontend", "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no repository root above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  return dir;
}

export const DATA_DIR = resolve(repoRoot(), "..", "shared", "data", "binance");

/** One daily dump, e.g. `BTCUSDT-1m-2024-03-01`, as klines (decimals kept as strings). */
export function binanceKlines(name: string): RawKline[] {
  const path = join(DATA_DIR, `${name}.zip`);
  if (!existsSync(path)) {
    throw new Error(`missing reference data ${path}: the shared folder must sit beside the repo`);
  }
  const files = unzipSync(readFileSync(path));
  const csv = files[`${name}.csv`];
  if (csv === undefined) throw new Error(`${path} holds no ${name}.csv`);
  return new TextDecoder()
    .decode(csv)
    .trim()
    .split("\n")
    .map((line) => {
      const f = line.trim().split(",");
      return [
        Number(f[0]),
        f[1]!,
        f[2]!,
        f[3]!,
        f[4]!,
        f[5]!,
        Number(f[6]),
        f[7]!,
        Number(f[8]),
        f[9]!,
        f[10]!,
        f[11]!,
      ];
    });
}

/** Several days of one symbol and interval, in order. */
export function binanceDays(symbol: string, interval: string, days: readonly string[]): RawKline[] {
  return days.flatMap((day) => binanceKlines(`${symbol}-${interval}-${day}`));
}
