"""Fault scenarios: the real processes over real Kafka and PostgreSQL, broken on purpose."""
