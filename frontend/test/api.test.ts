import assert from "node:assert/strict";
import { test } from "node:test";
import { ApiRejected, fetchKlines, toSource } from "../src/api.ts";

test("an error names the parameter in its detail or its extra", () => {
  assert.ok(new ApiRejected(400, "Unknown symbol: FOO").names("symbol"));
  assert.ok(
    new ApiRejected(400, "Validation failed for GET /api/v1/klines", [
      { key: "symbol", message: "unknown" },
    ]).names("symbol"),
  );
  assert.ok(
    !new ApiRejected(400, "interval must be one of 1s, 1m", { parameter: "interval" }).names(
      "symbol",
    ),
  );
  assert.ok(!new ApiRejected(400, "symbols list too long").names("symbol"));
});

test("unknown sources read as unknown", () => {
  assert.equal(toSource("sim"), "sim");
  assert.equal(toSource("binance"), "binance");
  assert.equal(toSource("kraken"), "unknown");
  assert.equal(toSource(undefined), "unknown");
});

test("klines are asked for with their counts of seconds", async () => {
  const asked: string[] = [];
  const real = globalThis.fetch;
  globalThis.fetch = (input: string | URL | Request) => {
    asked.push(input instanceof Request ? input.url : input.toString());
    return Promise.resolve(new Response("[]", { status: 200 }));
  };
  try {
    await fetchKlines("BTCUSDT", "1m", { endTime: 5, limit: 10 });
  } finally {
    globalThis.fetch = real;
  }
  assert.deepEqual(asked, [
    "/api/v1/klines?symbol=BTCUSDT&interval=1m&endTime=5&limit=10&withSeconds=true",
  ]);
});
