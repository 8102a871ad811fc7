-- Webhook headers are stored from an allow-list (`trigger::stored_headers`): the event, the delivery
-- id and signature-free metadata. Servers before it kept every header, among them GitLab's
-- `X-Gitlab-Token` (which is the webhook secret itself), signatures, `Authorization` and `Cookie`.
-- This keeps, in rows already stored, only the headers that list names (as it read when this was
-- written; the list only ever shrinks what is kept). `secure_delete` (set on every connection) makes
-- SQLite overwrite the old bytes instead of leaving them in free pages.
UPDATE deliveries SET headers = (
    SELECT json_group_array(json(h.value)) FROM json_each(deliveries.headers) AS h
    WHERE lower(json_extract(h.value, '$[0]')) IN (
        'content-type', 'user-agent',
        'x-github-event', 'x-github-delivery', 'x-github-hook-id',
        'x-github-hook-installation-target-id', 'x-github-hook-installation-target-type',
        'x-gitlab-event', 'x-gitlab-event-uuid', 'x-gitlab-webhook-uuid', 'x-gitlab-instance', 'idempotency-key',
        'x-gitea-event', 'x-gitea-event-type', 'x-gitea-delivery',
        'x-forgejo-event', 'x-forgejo-event-type', 'x-forgejo-delivery',
        'x-gogs-event', 'x-gogs-event-type', 'x-gogs-delivery'
    )
);
