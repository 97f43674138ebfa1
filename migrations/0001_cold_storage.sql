-- Cold storage for plugins, and the accounts the host owns.
--
-- Names a guest chooses (collection, key, stream) are BYTEA: guests may use
-- any string, including NUL, which TEXT cannot hold, and byte order is the
-- order every backend lists keys in.

-- Versioned JSON records. `body` keeps the document exactly as written;
-- `doc` is the same document as JSONB, for queries.
CREATE TABLE records (
    namespace  TEXT        NOT NULL,
    collection BYTEA       NOT NULL,
    key        BYTEA       NOT NULL,
    version    BIGINT      NOT NULL CHECK (version > 0),
    body       TEXT        NOT NULL,
    doc        JSONB       GENERATED ALWAYS AS (body::jsonb) STORED,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, collection, key)
);

-- Equality conditions become containment (`doc @> ...`), which this index
-- serves; range conditions filter within the collection's primary-key range.
CREATE INDEX records_doc ON records USING GIN (doc jsonb_path_ops);

-- Append-only history streams (match history).
CREATE TABLE history_heads (
    namespace TEXT   NOT NULL,
    stream    BYTEA  NOT NULL,
    last_seq  BIGINT NOT NULL,
    PRIMARY KEY (namespace, stream)
);

CREATE TABLE history (
    namespace   TEXT        NOT NULL,
    stream      BYTEA       NOT NULL,
    seq         BIGINT      NOT NULL,
    body        TEXT        NOT NULL,
    appended_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, stream, seq)
);

-- Players known to the host (not to any one plugin).
CREATE TABLE accounts (
    id         BIGSERIAL   PRIMARY KEY,
    name       TEXT        NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
