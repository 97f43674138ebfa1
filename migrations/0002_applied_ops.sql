-- Every write to cold storage is an op with an id. An op applied here leaves
-- a row in applied_ops in the same transaction as its write, holding the
-- op's result: replaying the op (after an outage) or retrying it (with an
-- action) finds the row, changes nothing, and returns the first result.
-- Rows older than storage.postgres.dedupe_retention_ms are deleted by the
-- host in small batches.
CREATE TABLE applied_ops (
    op_id      BYTEA       PRIMARY KEY,
    result     TEXT        NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX applied_ops_by_age ON applied_ops (applied_at);

-- A transaction of record writes in one round trip: checks the op's row,
-- applies every write with its version check, records the op, and returns
-- the result text ('w' and the per-write outcomes, comma-separated: a put's
-- new version, 1 or 0 for whether a delete found its record). A failed
-- version check raises SQLSTATE HR409 with 'expected:current' as its
-- message, and the whole transaction rolls back.
--
-- p_writes: a JSON array of {"put": bool, "c": collection (hex),
-- "k": key (hex), "b": body (text, puts only), "e": expected version or
-- null}.
CREATE FUNCTION hoard_apply_records(p_op BYTEA, p_namespace TEXT, p_writes JSONB)
RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE
    earlier  TEXT;
    w        JSONB;
    coll     BYTEA;
    k        BYTEA;
    expected BIGINT;
    done     BIGINT;
    current  BIGINT;
    outcomes TEXT[] := '{}';
BEGIN
    SELECT result INTO earlier FROM applied_ops WHERE op_id = p_op;
    IF FOUND THEN
        RETURN earlier;
    END IF;
    FOR w IN SELECT value FROM jsonb_array_elements(p_writes) LOOP
        coll := decode(w->>'c', 'hex');
        k := decode(w->>'k', 'hex');
        expected := (w->>'e')::BIGINT;
        done := NULL;
        IF (w->>'put')::BOOLEAN THEN
            IF expected IS NULL THEN
                INSERT INTO records (namespace, collection, key, version, body)
                VALUES (p_namespace, coll, k, 1, w->>'b')
                ON CONFLICT (namespace, collection, key) DO UPDATE
                SET version = records.version + 1, body = EXCLUDED.body, updated_at = now()
                RETURNING version INTO done;
            ELSIF expected = 0 THEN
                INSERT INTO records (namespace, collection, key, version, body)
                VALUES (p_namespace, coll, k, 1, w->>'b')
                ON CONFLICT (namespace, collection, key) DO NOTHING
                RETURNING version INTO done;
            ELSE
                UPDATE records SET version = version + 1, body = w->>'b', updated_at = now()
                WHERE namespace = p_namespace AND collection = coll AND key = k AND version = expected
                RETURNING version INTO done;
            END IF;
        ELSE
            DELETE FROM records
            WHERE namespace = p_namespace AND collection = coll AND key = k
              AND (expected IS NULL OR version = expected)
            RETURNING 1 INTO done;
            IF done IS NULL AND (expected IS NULL OR expected = 0) THEN
                -- Nothing to delete, and nothing else was expected.
                SELECT version INTO current FROM records
                WHERE namespace = p_namespace AND collection = coll AND key = k;
                IF current IS NULL OR expected IS NULL THEN
                    done := 0;
                END IF;
            END IF;
        END IF;
        IF done IS NULL THEN
            SELECT version INTO current FROM records
            WHERE namespace = p_namespace AND collection = coll AND key = k;
            RAISE EXCEPTION USING ERRCODE = 'HR409',
                MESSAGE = expected::TEXT || ':' || coalesce(current, 0)::TEXT;
        END IF;
        outcomes := outcomes || done::TEXT;
    END LOOP;
    earlier := 'w' || array_to_string(outcomes, ',');
    INSERT INTO applied_ops (op_id, result) VALUES (p_op, earlier);
    RETURN earlier;
END
$$;
