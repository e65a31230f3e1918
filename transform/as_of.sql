-- pipeline.as_of(NULL::<schema>.<table>, <day>): the table's rows as they were on that day,
-- in every replication mode; the one way to read a table's state (README: Analytics layout).
--   SELECT * FROM pipeline.as_of(NULL::postgres.orders, DATE '2024-01-02');
-- A day whose partition holds the whole table (FULL_TABLE, the first day of an incremental
-- table, a base that retention folded older days into) is read as it is. A day whose
-- partition holds changes (pipeline.table_days says so) is read as the latest version of
-- each primary key among the days from the latest whole state up to it; a version whose
-- _pipeline_op is 'delete' (LOG_BASED) means the key is gone. Each row's pipeline_date is
-- the day its version comes from.
CREATE OR REPLACE FUNCTION pipeline.as_of(whole anyelement, day date)
RETURNS SETOF anyelement
LANGUAGE plpgsql STABLE
AS $function$
DECLARE
    rel regclass := pg_typeof(whole)::text::regclass;
    rel_schema text;
    rel_name text;
    key_columns text;
    base date;
    gone text := '';
BEGIN
    SELECT n.nspname, c.relname INTO rel_schema, rel_name
    FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.oid = rel;
    IF NOT EXISTS (
        SELECT FROM pipeline.table_days AS t
        WHERE t.schema_name = rel_schema AND t.table_name = rel_name
          AND t.pipeline_date = day AND t.holds = 'changes'
    ) THEN
        RETURN QUERY EXECUTE format('SELECT * FROM %s WHERE pipeline_date = $1', rel) USING day;
        RETURN;
    END IF;
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY array_position(i.indkey, a.attnum))
    INTO key_columns
    FROM pg_index AS i
    JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
    WHERE i.indrelid = rel AND i.indisprimary AND a.attname <> 'pipeline_date';
    IF key_columns IS NULL THEN
        RAISE EXCEPTION 'pipeline.as_of: table % has no primary key, so its changes cannot be merged; give the source table one', rel;
    END IF;
    SELECT max(t.pipeline_date) INTO base
    FROM pipeline.table_days AS t
    WHERE t.schema_name = rel_schema AND t.table_name = rel_name
      AND t.pipeline_date < day AND t.holds = 'state';
    IF base IS NULL THEN
        RAISE EXCEPTION 'pipeline.as_of: table % has no whole state before %, which holds changes only', rel, day;
    END IF;
    IF EXISTS (
        SELECT FROM pg_attribute WHERE attrelid = rel AND attname = '_pipeline_op' AND NOT attisdropped
    ) THEN
        gone := 'WHERE _pipeline_op IS DISTINCT FROM ''delete''';
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT * FROM (SELECT DISTINCT ON (%1$s) * FROM %2$s WHERE pipeline_date BETWEEN $1 AND $2 '
        'ORDER BY %1$s, pipeline_date DESC) AS latest %3$s',
        key_columns, rel, gone
    ) USING base, day;
END
$function$
