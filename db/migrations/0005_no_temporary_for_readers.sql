-- Read-only roles may not create temporary tables or functions either: TEMPORARY on the database
-- goes from PUBLIC to the writing role only (the inserter stages its batches in a temp table).

DO $$
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO cryptochart_app', current_database());
END
$$;
