"""Ingest: exchange sources → Kafka → ``kline_1s`` → aggregates."""

if __name__ != "cryptochart.ingest":  # a top-level folder, but one import namespace
    raise ImportError("ingest is part of cryptochart: import cryptochart.ingest")
