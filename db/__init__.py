"""The database: migrations (``db/migrations``), their runner, and storage policies."""

if __name__ != "cryptochart.db":  # a top-level folder, but one import namespace
    raise ImportError("db is part of cryptochart: import cryptochart.db")
