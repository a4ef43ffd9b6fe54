-- Chunk sizes of the aggregates, each about 3 M rows at 1,000 symbols. TimescaleDB's default for
-- a continuous aggregate is ten times its source's (2.5 days here, from kline_1s's 6 hours),
-- which splits kline_1d into a chunk per 2.5 rows of a symbol: planning and reading a year of
-- daily candles then touches ~150 tiny chunks. Retention still drops whole chunks, so the
-- longest level keeps its chunks short beside its 400-day retention. New chunks only.

SELECT set_chunk_time_interval('kline_1m', INTERVAL '2 days');
SELECT set_chunk_time_interval('kline_5m', INTERVAL '10 days');
SELECT set_chunk_time_interval('kline_15m', INTERVAL '30 days');
SELECT set_chunk_time_interval('kline_1h', INTERVAL '90 days');
SELECT set_chunk_time_interval('kline_1d', INTERVAL '100 days');
