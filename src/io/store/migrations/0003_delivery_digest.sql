-- A delivery is also known by the SHA-256 of its verified body (hex), so a replay of the same bytes under
-- a fresh delivery id (which no signature covers) is the same delivery (ARCHITECTURE.md "Trust
-- boundaries"). Rows kept before this migration have none; the server fills them in when it opens the
-- database (`Database::open`), so they guard against replays too.
ALTER TABLE deliveries ADD COLUMN body_sha256 TEXT;
CREATE UNIQUE INDEX deliveries_by_body ON deliveries (repository, body_sha256);
-- Old deliveries are pruned by age (`deliveryRetentionDays`).
CREATE INDEX deliveries_by_age ON deliveries (received_at);
