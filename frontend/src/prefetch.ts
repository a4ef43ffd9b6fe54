/**
 * Loaded on its own ahead of the page's main script: asks for the first history page at once,
 * so that request runs while the main script downloads and starts (the larger part of a cold
 * load). The chart's first `fetchKlines` for the same address takes the answer.
 */
import { intervalIn, symbolIn } from "./address.ts";
import { KLINES_MAX_LIMIT, klinesUrl, prefetchKlines } from "./api.ts";

const params = new URLSearchParams(location.search);
prefetchKlines(klinesUrl(symbolIn(params), intervalIn(params), { limit: KLINES_MAX_LIMIT }));
