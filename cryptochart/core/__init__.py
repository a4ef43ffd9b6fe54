"""The kernel every stage shares: the kline record, settings, symbols, the database connection
and the Kafka topics. It knows no stage."""
