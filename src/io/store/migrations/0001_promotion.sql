-- Environments, approvals and the audit log (SPEC §11).

CREATE TABLE releases (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    environment    TEXT NOT NULL,
    build_id       TEXT NOT NULL,
    commit_sha     TEXT NOT NULL,
    digests        TEXT NOT NULL,
    promoted_by    TEXT NOT NULL,
    promoted_at    TEXT NOT NULL,
    comment        TEXT NOT NULL DEFAULT '',
    action         TEXT NOT NULL,
    previous_build TEXT
);
CREATE INDEX releases_by_environment ON releases (environment, seq);
CREATE INDEX releases_by_build ON releases (build_id);

CREATE TABLE approvals (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    build_id    TEXT NOT NULL,
    environment TEXT NOT NULL,
    approver    TEXT NOT NULL,
    comment     TEXT NOT NULL DEFAULT '',
    at          TEXT NOT NULL
);
CREATE INDEX approvals_by_build ON approvals (build_id, environment);

CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    environment TEXT NOT NULL,
    build_id    TEXT NOT NULL,
    commit_sha  TEXT NOT NULL,
    result      TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT ''
);

-- The audit log answers "who put this in prod, when and why": it only grows.
CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
