-- The server's webhook deliveries and build queue (SPEC §12).

-- Every verified delivery, written before the forge gets its answer; `state` moves from `received`
-- to `done` in the same transaction that enqueues what it asked for, so a crash in between replays it
-- once and never twice.
CREATE TABLE deliveries (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,   -- `<forge>:<delivery id>`: a redelivery is the same row
    forge       TEXT NOT NULL,
    repository  TEXT NOT NULL,
    event       TEXT NOT NULL,
    headers     TEXT NOT NULL,          -- JSON [[name, value], …] as received
    body        BLOB NOT NULL,
    received_at TEXT NOT NULL,
    state       TEXT NOT NULL,          -- received | done
    outcome     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX deliveries_pending ON deliveries (state, seq);

-- Builds the server knows, in arrival order. The record file holds the details; this row holds what
-- scheduling and listing need.
CREATE TABLE queue (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    build_id         TEXT NOT NULL UNIQUE,
    repository       TEXT NOT NULL,
    request          TEXT NOT NULL,     -- JSON of the queued build (what to check out, how it was triggered)
    concurrency_group TEXT,
    state            TEXT NOT NULL,     -- queued | working | done
    status           TEXT NOT NULL,     -- the build's status (QUEUED, WORKING, SUCCESS, SKIPPED, …)
    trigger_name     TEXT NOT NULL DEFAULT '',
    ref_name         TEXT NOT NULL DEFAULT '',
    commit_sha       TEXT NOT NULL DEFAULT '',
    created_at       TEXT NOT NULL,
    started_at       TEXT,
    finished_at      TEXT,
    owner            TEXT,              -- the server process running it
    delivery_id      TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX queue_by_state ON queue (state, seq);
CREATE INDEX queue_by_group ON queue (concurrency_group, state);
