"""Local PostgreSQL and Apache Kafka for machines without Docker (``cryptochart services``)."""
