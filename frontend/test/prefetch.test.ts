// A file of its own: the page's first klines request ends prefetching for the module's lifetime.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fetchKlines, klinesUrl, prefetchKlines } from "../src/api.ts";

test("a prefetched page answers the first request for its address only, while fresh", async (t) => {
  const asked: string[] = [];
  const real = globalThis.fetch;
  globalThis.fetch = (input: string | URL | Request) => {
    asked.push(input instanceof Request ? input.url : input.toString());
    return Promise.resolve(new Response(`[[${asked.length}]]`, { status: 200 }));
  };
  t.after(() => {
    globalThis.fetch = real;
  });
  prefetchKlines(klinesUrl("ETHUSDT", "1m", { limit: 1000 }));
  prefetchKlines(klinesUrl("ETHUSDT", "1h", { limit: 1000 }));
  assert.equal(asked.length, 2);

  assert.deepEqual(await fetchKlines("ETHUSDT", "1m", { limit: 1000 }), [[1]]);
  assert.equal(asked.length, 2, "the prefetched answer is taken");
  assert.deepEqual(await fetchKlines("ETHUSDT", "1m", { limit: 1000 }), [[3]]);
  assert.equal(asked.length, 3, "a second request asks again");

  const start = performance.now();
  t.mock.method(performance, "now", () => start + 10_001);
  assert.deepEqual(await fetchKlines("ETHUSDT", "1h", { limit: 1000 }), [[4]]);
  assert.equal(asked.length, 4, "a prefetch older than 10 s is not used");

  prefetchKlines(klinesUrl("BTCUSDT", "1m", { limit: 1000 }));
  assert.equal(asked.length, 4, "once the page has asked for klines, a prefetch comes too late");
});
