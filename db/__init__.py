"""The database: migrations (``db/migrations``), their runner, and storage policies."""
