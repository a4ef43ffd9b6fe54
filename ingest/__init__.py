"""Ingest: exchange sources → Kafka → ``kline_1s`` → aggregates."""
