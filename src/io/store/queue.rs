//! The server's tables (docs/SPEC.md §12): webhook deliveries, kept before they are answered, and the build
//! queue. Every state change is one statement or one transaction, so a crash at any point leaves each
//! delivery either to be replayed or done, and each build either queued, working or done.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::db::{Database, DbError, now};

fn query(action: &'static str) -> impl FnOnce(sqlx::Error) -> DbError {
    move |source| DbError::Query { action, source }
}

/// A delivery as received: the verified body verbatim, and the headers that may be kept
/// ([`crate::trigger::stored_headers`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub seq: i64,
    /// `<forge>:<delivery id>`.
    pub id: String,
    pub forge: String,
    pub repository: String,
    pub event: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// SHA-256 of `body`, hex: a second delivery of the same bytes is the same delivery, whatever its id.
    pub body_sha256: String,
    pub received_at: String,
    pub state: String,
    pub outcome: String,
}

/// What keeping a delivery found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kept {
    /// Never seen: kept, to be decided.
    New,
    /// Seen before (within the retention window): the id of the delivery kept then, and what matched.
    Duplicate { of: String, by: Duplicate },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Duplicate {
    /// The same delivery id: a redelivery by the forge.
    Id,
    /// The same body under another id: a replay (the delivery id is not covered by any signature).
    Body,
}

impl Duplicate {
    pub fn as_str(self) -> &'static str {
        match self {
            Duplicate::Id => "delivery id",
            Duplicate::Body => "body",
        }
    }
}

/// A build to put in the queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewBuild {
    pub build_id: String,
    pub repository: String,
    /// The server's description of what to build, as JSON.
    pub request: String,
    pub concurrency_group: Option<String>,
    pub trigger_name: String,
    pub ref_name: String,
    pub commit_sha: String,
    pub delivery_id: Option<String>,
    /// `QUEUED` for a build to run, `PENDING` for one that waits for an approval first; a terminal
    /// status (`SKIPPED`, `FAILURE`) for one decided without running, which goes straight to `done`.
    pub status: String,
}

/// A row of the queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedBuild {
    pub seq: i64,
    pub build_id: String,
    pub repository: String,
    #[serde(skip)]
    pub request: String,
    pub concurrency_group: Option<String>,
    /// `pending` (waiting for approval), `queued`, `working` or `done`.
    pub state: String,
    pub status: String,
    pub trigger_name: String,
    pub ref_name: String,
    pub commit_sha: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub owner: Option<String>,
    pub delivery_id: Option<String>,
    pub cancel_requested: bool,
}

/// Filters of the build list (all optional, combined with AND).
#[derive(Clone, Debug, Default)]
pub struct BuildFilter {
    pub status: Option<String>,
    pub repository: Option<String>,
    pub ref_name: Option<String>,
    pub trigger_name: Option<String>,
    pub commit_sha: Option<String>,
    /// Newest first; at most this many.
    pub limit: i64,
    /// Only builds older than this sequence number (paging).
    pub before_seq: Option<i64>,
}

/// What an approval of a waiting build found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Approved {
    /// It was waiting for approval: it is queued now.
    Queued,
    /// It was not waiting for approval (in this state).
    NotPending(String),
}

/// What a cancel found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cancelled {
    /// It was waiting (queued, or for an approval): it is now done, `CANCELLED`.
    Queued,
    /// It is running: its runner was asked to stop it.
    Working,
    /// It had already ended.
    Done,
}

impl Database {
    /// Keeps a delivery, unless one with the same id, or the same body for the same repository, was
    /// kept before (a redelivery, or a replay under a fresh id). One statement: two copies arriving at
    /// once are still kept once.
    pub async fn add_delivery(&self, d: &Delivery) -> Result<Kept, DbError> {
        let headers = serde_json::to_string(&d.headers).expect("headers serialise");
        let result = sqlx::query(
            "INSERT OR IGNORE INTO deliveries (id, forge, repository, event, headers, body, body_sha256, received_at, state) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'received')",
        )
        .bind(&d.id)
        .bind(&d.forge)
        .bind(&d.repository)
        .bind(&d.event)
        .bind(headers)
        .bind(&d.body)
        .bind(&d.body_sha256)
        .bind(&d.received_at)
        .execute(self.pool())
        .await
        .map_err(query("keep a delivery"))?;
        if result.rows_affected() == 1 {
            return Ok(Kept::New);
        }
        let by_id: Option<String> = sqlx::query_scalar("SELECT id FROM deliveries WHERE id = ?")
            .bind(&d.id)
            .fetch_optional(self.pool())
            .await
            .map_err(query("read a delivery"))?;
        if let Some(of) = by_id {
            return Ok(Kept::Duplicate { of, by: Duplicate::Id });
        }
        let by_body: Option<String> =
            sqlx::query_scalar("SELECT id FROM deliveries WHERE repository = ? AND body_sha256 = ?")
                .bind(&d.repository)
                .bind(&d.body_sha256)
                .fetch_optional(self.pool())
                .await
                .map_err(query("read a delivery"))?;
        // Neither matches only when the row was pruned in between: it was a duplicate all the same.
        Ok(Kept::Duplicate { of: by_body.unwrap_or_default(), by: Duplicate::Body })
    }

    /// Deletes deliveries acted on more than `days` days ago (never one still to be decided), and
    /// returns how many. A body older than that is no longer recognised as a replay.
    pub async fn prune_deliveries(&self, days: u32) -> Result<u64, DbError> {
        let result = sqlx::query(
            "DELETE FROM deliveries WHERE state = 'done' AND julianday(received_at) < julianday('now') - ?",
        )
        .bind(f64::from(days))
        .execute(self.pool())
        .await
        .map_err(query("prune deliveries"))?;
        Ok(result.rows_affected())
    }

    /// Fills in the body digest of deliveries kept before digests were (migration 3), so they are
    /// recognised as replays too. Two equal bodies kept before then keep the digest of the first only.
    pub(super) async fn backfill_digests(&self) -> Result<(), DbError> {
        use sha2::{Digest, Sha256};
        let rows = sqlx::query("SELECT seq, body FROM deliveries WHERE body_sha256 IS NULL")
            .fetch_all(self.pool())
            .await
            .map_err(query("read deliveries without a digest"))?;
        for row in rows {
            let seq: i64 = row.try_get("seq").map_err(query("read a delivery"))?;
            let body: Vec<u8> = row.try_get("body").map_err(query("read a delivery"))?;
            sqlx::query("UPDATE OR IGNORE deliveries SET body_sha256 = ? WHERE seq = ?")
                .bind(hex::encode(Sha256::digest(&body)))
                .bind(seq)
                .execute(self.pool())
                .await
                .map_err(query("write a delivery digest"))?;
        }
        Ok(())
    }

    /// Deliveries not yet acted on, oldest first.
    pub async fn pending_deliveries(&self, limit: i64) -> Result<Vec<Delivery>, DbError> {
        let rows = sqlx::query("SELECT * FROM deliveries WHERE state = 'received' ORDER BY seq LIMIT ?")
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(query("read pending deliveries"))?;
        rows.iter().map(delivery).collect()
    }

    pub async fn delivery(&self, id: &str) -> Result<Option<Delivery>, DbError> {
        let row = sqlx::query("SELECT * FROM deliveries WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(query("read a delivery"))?;
        row.as_ref().map(delivery).transpose()
    }

    pub async fn delivery_count(&self) -> Result<i64, DbError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM deliveries")
            .fetch_one(self.pool())
            .await
            .map_err(query("count deliveries"))
    }

    /// Marks a delivery done with what came of it, and enqueues its build (if any) in the same
    /// transaction.
    pub async fn finish_delivery(&self, id: &str, outcome: &str, build: Option<&NewBuild>) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await.map_err(query("begin a delivery"))?;
        if let Some(build) = build {
            insert_build(&mut tx, build).await?;
        }
        sqlx::query("UPDATE deliveries SET state = 'done', outcome = ? WHERE id = ?")
            .bind(outcome)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(query("finish a delivery"))?;
        tx.commit().await.map_err(query("commit a delivery"))
    }

    /// Enqueues a build that no delivery asked for (a manual run, a retry).
    pub async fn enqueue(&self, build: &NewBuild) -> Result<(), DbError> {
        let mut conn = self.pool().acquire().await.map_err(query("connect"))?;
        insert_build(&mut conn, build).await
    }

    /// Claims the next build that may start: the oldest queued one whose concurrency group has nothing
    /// running and nothing queued before it. One statement, so two claimers never take the same build.
    pub async fn claim_next(&self, owner: &str) -> Result<Option<QueuedBuild>, DbError> {
        let row = sqlx::query(
            "UPDATE queue SET state = 'working', status = 'WORKING', owner = ?, started_at = ? \
             WHERE seq = (SELECT q.seq FROM queue q WHERE q.state = 'queued' AND (q.concurrency_group IS NULL OR \
               NOT EXISTS (SELECT 1 FROM queue w WHERE w.concurrency_group = q.concurrency_group AND \
                 (w.state = 'working' OR (w.state = 'queued' AND w.seq < q.seq)))) \
               ORDER BY q.seq LIMIT 1) \
             RETURNING *",
        )
        .bind(owner)
        .bind(now())
        .fetch_optional(self.pool())
        .await
        .map_err(query("claim a build"))?;
        row.as_ref().map(queued).transpose()
    }

    /// Ends a build in the queue with its final status.
    pub async fn finish_build(&self, build_id: &str, status: &str) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE queue SET state = 'done', status = ?, finished_at = ? WHERE build_id = ? AND state != 'done'",
        )
        .bind(status)
        .bind(now())
        .bind(build_id)
        .execute(self.pool())
        .await
        .map_err(query("finish a build"))?;
        Ok(())
    }

    pub async fn queued_build(&self, build_id: &str) -> Result<Option<QueuedBuild>, DbError> {
        let row = sqlx::query("SELECT * FROM queue WHERE build_id = ?")
            .bind(build_id)
            .fetch_optional(self.pool())
            .await
            .map_err(query("read a build"))?;
        row.as_ref().map(queued).transpose()
    }

    /// Builds in `state`, oldest first.
    pub async fn builds_in(&self, state: &str) -> Result<Vec<QueuedBuild>, DbError> {
        let rows = sqlx::query("SELECT * FROM queue WHERE state = ? ORDER BY seq")
            .bind(state)
            .fetch_all(self.pool())
            .await
            .map_err(query("read builds"))?;
        rows.iter().map(queued).collect()
    }

    pub async fn list_builds(&self, filter: &BuildFilter) -> Result<Vec<QueuedBuild>, DbError> {
        let rows = sqlx::query(
            "SELECT * FROM queue WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR repository = ?2) \
             AND (?3 IS NULL OR ref_name = ?3) AND (?4 IS NULL OR trigger_name = ?4) \
             AND (?5 IS NULL OR commit_sha = ?5) AND (?6 IS NULL OR seq < ?6) ORDER BY seq DESC LIMIT ?7",
        )
        .bind(&filter.status)
        .bind(&filter.repository)
        .bind(&filter.ref_name)
        .bind(&filter.trigger_name)
        .bind(&filter.commit_sha)
        .bind(filter.before_seq)
        .bind(filter.limit.max(1))
        .fetch_all(self.pool())
        .await
        .map_err(query("list builds"))?;
        rows.iter().map(queued).collect()
    }

    /// Cancels one build: a queued one at once, a working one by flagging it for its runner.
    pub async fn cancel(&self, build_id: &str) -> Result<Option<Cancelled>, DbError> {
        let mut tx = self.pool().begin().await.map_err(query("begin a cancel"))?;
        let state = state_of(&mut tx, build_id).await?;
        let outcome = match state.as_deref() {
            None => None,
            Some("queued" | "pending") => {
                sqlx::query(
                    "UPDATE queue SET state = 'done', status = 'CANCELLED', finished_at = ? WHERE build_id = ?",
                )
                .bind(now())
                .bind(build_id)
                .execute(&mut *tx)
                .await
                .map_err(query("cancel a queued build"))?;
                Some(Cancelled::Queued)
            }
            Some("working") => {
                sqlx::query("UPDATE queue SET cancel_requested = 1 WHERE build_id = ?")
                    .bind(build_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(query("cancel a running build"))?;
                Some(Cancelled::Working)
            }
            Some(_) => Some(Cancelled::Done),
        };
        tx.commit().await.map_err(query("commit a cancel"))?;
        Ok(outcome)
    }

    /// Lets a build that waits for approval run: it joins the queue in its original place (its
    /// sequence number), and the approval is appended to the audit log in the same transaction.
    pub async fn approve_build(
        &self,
        build_id: &str,
        audit: &super::db::AuditEntry,
    ) -> Result<Option<Approved>, DbError> {
        let mut tx = self.pool().begin().await.map_err(query("begin an approval"))?;
        let state = state_of(&mut tx, build_id).await?;
        let outcome = match state.as_deref() {
            None => None,
            Some("pending") => {
                sqlx::query("UPDATE queue SET state = 'queued', status = 'QUEUED' WHERE build_id = ?")
                    .bind(build_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(query("approve a build"))?;
                super::db::insert_audit(&mut tx, audit).await?;
                Some(Approved::Queued)
            }
            Some(other) => Some(Approved::NotPending(other.to_string())),
        };
        tx.commit().await.map_err(query("commit an approval"))?;
        Ok(outcome)
    }

    /// Builds of `repository` waiting for approval, oldest first.
    pub async fn pending_builds(&self, repository: &str) -> Result<Vec<QueuedBuild>, DbError> {
        let rows = sqlx::query("SELECT * FROM queue WHERE state = 'pending' AND repository = ? ORDER BY seq")
            .bind(repository)
            .fetch_all(self.pool())
            .await
            .map_err(query("read builds waiting for approval"))?;
        rows.iter().map(queued).collect()
    }

    /// Builds of `group` other than `except` that have not ended, oldest first.
    pub async fn unfinished_in_group(&self, group: &str, except: &str) -> Result<Vec<QueuedBuild>, DbError> {
        let rows = sqlx::query(
            "SELECT * FROM queue WHERE concurrency_group = ? AND build_id != ? AND state != 'done' ORDER BY seq",
        )
        .bind(group)
        .bind(except)
        .fetch_all(self.pool())
        .await
        .map_err(query("read a concurrency group"))?;
        rows.iter().map(queued).collect()
    }

    /// How many builds are in each status.
    pub async fn status_counts(&self) -> Result<Vec<(String, i64)>, DbError> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM queue GROUP BY status ORDER BY status")
            .fetch_all(self.pool())
            .await
            .map_err(query("count builds"))?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("status").map_err(query("count builds"))?,
                    r.try_get("n").map_err(query("count builds"))?,
                ))
            })
            .collect()
    }
}

/// The queue state of a build (`pending`, `queued`, `working`, `done`), inside a transaction.
async fn state_of(conn: &mut sqlx::SqliteConnection, build_id: &str) -> Result<Option<String>, DbError> {
    sqlx::query_scalar("SELECT state FROM queue WHERE build_id = ?")
        .bind(build_id)
        .fetch_optional(conn)
        .await
        .map_err(query("read a build"))
}

async fn insert_build(conn: &mut sqlx::SqliteConnection, b: &NewBuild) -> Result<(), DbError> {
    let state = match b.status.as_str() {
        "QUEUED" => "queued",
        "PENDING" => "pending",
        _ => "done",
    };
    let done = state == "done";
    sqlx::query(
        "INSERT INTO queue (build_id, repository, request, concurrency_group, state, status, trigger_name, ref_name, \
         commit_sha, created_at, finished_at, delivery_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&b.build_id)
    .bind(&b.repository)
    .bind(&b.request)
    .bind(&b.concurrency_group)
    .bind(state)
    .bind(&b.status)
    .bind(&b.trigger_name)
    .bind(&b.ref_name)
    .bind(&b.commit_sha)
    .bind(now())
    .bind(done.then(now))
    .bind(&b.delivery_id)
    .execute(conn)
    .await
    .map_err(query("enqueue a build"))?;
    Ok(())
}

fn delivery(r: &SqliteRow) -> Result<Delivery, DbError> {
    let read = || query("read a delivery");
    let headers: String = r.try_get("headers").map_err(read())?;
    Ok(Delivery {
        seq: r.try_get("seq").map_err(read())?,
        id: r.try_get("id").map_err(read())?,
        forge: r.try_get("forge").map_err(read())?,
        repository: r.try_get("repository").map_err(read())?,
        event: r.try_get("event").map_err(read())?,
        headers: serde_json::from_str(&headers).map_err(|_| DbError::Corrupt { what: "delivery headers".into() })?,
        body: r.try_get("body").map_err(read())?,
        body_sha256: r.try_get::<Option<String>, _>("body_sha256").map_err(read())?.unwrap_or_default(),
        received_at: r.try_get("received_at").map_err(read())?,
        state: r.try_get("state").map_err(read())?,
        outcome: r.try_get("outcome").map_err(read())?,
    })
}

fn queued(r: &SqliteRow) -> Result<QueuedBuild, DbError> {
    let read = || query("read a queued build");
    Ok(QueuedBuild {
        seq: r.try_get("seq").map_err(read())?,
        build_id: r.try_get("build_id").map_err(read())?,
        repository: r.try_get("repository").map_err(read())?,
        request: r.try_get("request").map_err(read())?,
        concurrency_group: r.try_get("concurrency_group").map_err(read())?,
        state: r.try_get("state").map_err(read())?,
        status: r.try_get("status").map_err(read())?,
        trigger_name: r.try_get("trigger_name").map_err(read())?,
        ref_name: r.try_get("ref_name").map_err(read())?,
        commit_sha: r.try_get("commit_sha").map_err(read())?,
        created_at: r.try_get("created_at").map_err(read())?,
        started_at: r.try_get("started_at").map_err(read())?,
        finished_at: r.try_get("finished_at").map_err(read())?,
        owner: r.try_get("owner").map_err(read())?,
        delivery_id: r.try_get("delivery_id").map_err(read())?,
        cancel_requested: r.try_get::<i64, _>("cancel_requested").map_err(read())? != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(id: &str, group: Option<&str>) -> NewBuild {
        NewBuild {
            build_id: id.into(),
            repository: "acme/ml".into(),
            request: "{}".into(),
            concurrency_group: group.map(str::to_string),
            status: "QUEUED".into(),
            ..NewBuild::default()
        }
    }

    #[tokio::test]
    async fn deliveries_are_kept_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::open(dir.path()).await.expect("open");
        let d = Delivery {
            seq: 0,
            id: "github:1".into(),
            forge: "github".into(),
            repository: "acme/ml".into(),
            event: "push".into(),
            headers: vec![("X-GitHub-Event".into(), "push".into())],
            body: b"{}".to_vec(),
            body_sha256: "digest-of-{}".into(),
            received_at: now(),
            state: String::new(),
            outcome: String::new(),
        };
        assert_eq!(db.add_delivery(&d).await.expect("add"), Kept::New);
        assert_eq!(
            db.add_delivery(&d).await.expect("again"),
            Kept::Duplicate { of: "github:1".into(), by: Duplicate::Id },
            "a redelivery is not kept twice"
        );
        let replay = Delivery { id: "github:2".into(), ..d.clone() };
        assert_eq!(
            db.add_delivery(&replay).await.expect("replay"),
            Kept::Duplicate { of: "github:1".into(), by: Duplicate::Body },
            "the same body under a fresh id is the same delivery"
        );
        let other_repo = Delivery { id: "github:3".into(), repository: "acme/other".into(), ..d.clone() };
        assert_eq!(db.add_delivery(&other_repo).await.expect("other"), Kept::New, "digests are per repository");
        assert_eq!(db.delivery_count().await.expect("count"), 2);
        let pending = db.pending_deliveries(10).await.expect("pending");
        assert_eq!(pending.len(), 2);
        assert_eq!((pending[0].headers.clone(), pending[0].body_sha256.as_str()), (d.headers.clone(), "digest-of-{}"));
        db.finish_delivery("github:3", "ignored", None).await.expect("finish");
        db.finish_delivery("github:1", "build b1", Some(&build("b1", None))).await.expect("finish");
        assert!(db.pending_deliveries(10).await.expect("pending").is_empty());
        assert_eq!(db.queued_build("b1").await.expect("read").expect("enqueued").delivery_id, None);

        // Pruning takes deliveries older than the window, and never one still to be decided.
        assert_eq!(db.prune_deliveries(30).await.expect("prune"), 0, "nothing is old yet");
        sqlx::query("UPDATE deliveries SET received_at = '2000-01-01T00:00:00.5Z'")
            .execute(db.pool())
            .await
            .expect("age");
        let late = Delivery { id: "github:4".into(), body_sha256: "other".into(), ..d.clone() };
        assert_eq!(db.add_delivery(&late).await.expect("late"), Kept::New);
        sqlx::query("UPDATE deliveries SET received_at = '2000-01-01T00:00:00Z' WHERE id = 'github:4'")
            .execute(db.pool())
            .await
            .expect("age");
        assert_eq!(db.prune_deliveries(30).await.expect("prune"), 2);
        assert_eq!(db.pending_deliveries(10).await.expect("pending").len(), 1, "an old undecided delivery stays");
        assert_eq!(db.add_delivery(&d).await.expect("after the window"), Kept::New, "a pruned body is new again");
    }

    #[tokio::test]
    async fn a_pending_build_runs_only_once_approved() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::open(dir.path()).await.expect("open");
        db.enqueue(&NewBuild { status: "PENDING".into(), ..build("fork", Some("pr")) }).await.expect("enqueue");
        db.enqueue(&build("later", Some("pr"))).await.expect("enqueue");
        let row = db.queued_build("fork").await.expect("read").expect("row");
        assert_eq!((row.state.as_str(), row.status.as_str()), ("pending", "PENDING"));
        assert_eq!(db.pending_builds("acme/ml").await.expect("pending").len(), 1);
        // A waiting build holds nothing up: the next build of its group may run.
        assert_eq!(db.claim_next("me").await.expect("claim").map(|b| b.build_id).as_deref(), Some("later"));
        assert_eq!(db.claim_next("me").await.expect("claim"), None, "a pending build is never claimed");
        let audit = crate::io::store::db::AuditEntry {
            seq: 0,
            at: now(),
            actor: "bob".into(),
            action: "approve build".into(),
            environment: String::new(),
            build_id: "fork".into(),
            commit_sha: String::new(),
            result: "ok".into(),
            detail: String::new(),
        };
        assert_eq!(db.approve_build("fork", &audit).await.expect("approve"), Some(Approved::Queued));
        assert_eq!(
            db.approve_build("fork", &audit).await.expect("again"),
            Some(Approved::NotPending("queued".into())),
            "an approval counts once"
        );
        assert_eq!(db.approve_build("nope", &audit).await.expect("unknown"), None);
        assert_eq!(db.audit_log(None).await.expect("audit").len(), 1);
        db.finish_build("later", "SUCCESS").await.expect("finish");
        assert_eq!(db.claim_next("me").await.expect("claim").map(|b| b.build_id).as_deref(), Some("fork"));
        db.enqueue(&NewBuild { status: "PENDING".into(), ..build("other", None) }).await.expect("enqueue");
        assert_eq!(db.cancel("other").await.expect("cancel"), Some(Cancelled::Queued), "a waiting build cancels");
    }

    #[tokio::test]
    async fn groups_run_one_at_a_time_in_arrival_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::open(dir.path()).await.expect("open");
        for (id, group) in [("d1", Some("deploy")), ("d2", Some("deploy")), ("x", None), ("d3", Some("deploy"))] {
            db.enqueue(&build(id, group)).await.expect("enqueue");
        }
        let claim = || async { db.claim_next("me").await.expect("claim").map(|b| b.build_id) };
        assert_eq!(claim().await.as_deref(), Some("d1"));
        assert_eq!(claim().await.as_deref(), Some("x"), "the group waits; others pass");
        assert_eq!(claim().await, None);
        db.finish_build("d1", "SUCCESS").await.expect("finish");
        assert_eq!(claim().await.as_deref(), Some("d2"));
        assert_eq!(db.cancel("d3").await.expect("cancel"), Some(Cancelled::Queued));
        assert_eq!(db.cancel("d2").await.expect("cancel"), Some(Cancelled::Working));
        assert!(db.queued_build("d2").await.expect("read").expect("row").cancel_requested);
        assert_eq!(db.cancel("nope").await.expect("cancel"), None);
        let counts = db.status_counts().await.expect("counts");
        assert!(counts.contains(&("CANCELLED".to_string(), 1)), "{counts:?}");
        let listed = db.list_builds(&BuildFilter { limit: 2, ..BuildFilter::default() }).await.expect("list");
        assert_eq!(listed.len(), 2);
        assert_eq!(listed.iter().map(|b| b.build_id.as_str()).collect::<Vec<_>>(), ["d3", "x"]);
    }
}
