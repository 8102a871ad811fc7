//! The database in the data directory (`<data>/pipewright.db`, SQLite in WAL mode): environments,
//! approvals and the append-only audit log here; the server's deliveries and queue in `queue`. The
//! store is the only place with SQL.
//!
//! Migrations are embedded SQL applied in order and recorded in `schema_migrations`, so a newer
//! pipewright upgrades an older data directory in place.

use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Row, SqliteConnection};

use crate::record::Timestamp;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_promotion.sql")),
    (2, include_str!("migrations/0002_server.sql")),
    (3, include_str!("migrations/0003_delivery_digest.sql")),
    (4, include_str!("migrations/0004_scrub_headers.sql")),
];

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open the database `{path}`")]
    Open {
        path: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("database {action} failed")]
    Query {
        action: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("the database holds a value it cannot read back ({what})")]
    Corrupt { what: String },
}

fn query(action: &'static str) -> impl FnOnce(sqlx::Error) -> DbError {
    move |source| DbError::Query { action, source }
}

/// One release of an environment: a build promoted (or rolled back) into it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Release {
    pub seq: i64,
    pub environment: String,
    pub build_id: String,
    pub commit_sha: String,
    pub digests: ReleaseDigests,
    pub promoted_by: String,
    pub promoted_at: String,
    pub comment: String,
    /// `promote`, `auto` or `rollback`.
    pub action: String,
    /// The build that was in the environment before.
    pub previous_build: Option<String>,
}

/// What exactly a release is: the digests promoted, so that a rollback restores them byte for byte.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseDigests {
    /// Component name → image digest.
    #[serde(default)]
    pub components: std::collections::BTreeMap<String, String>,
    /// SHA-256 of the spec's bytes (empty for a build without a pipeline).
    #[serde(default)]
    pub spec: String,
    /// OCI repository → manifest digest of the spec artifact there.
    #[serde(default)]
    pub spec_artifacts: std::collections::BTreeMap<String, String>,
}

/// One line of the audit log: every promotion, rollback, approval and refusal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub environment: String,
    pub build_id: String,
    pub commit_sha: String,
    /// `ok` or `refused`.
    pub result: String,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRow {
    pub build_id: String,
    pub environment: String,
    pub approver: String,
    pub comment: String,
    pub at: String,
}

#[derive(Clone, Debug)]
pub struct Database {
    pool: SqlitePool,
}

impl Database {
    /// Opens (creating if needed) the database under `data_dir` and brings its schema up to date.
    pub async fn open(data_dir: &Path) -> Result<Database, DbError> {
        let path = data_dir.join("pipewright.db");
        let label = path.display().to_string();
        tokio::fs::create_dir_all(data_dir)
            .await
            .map_err(|e| DbError::Open { path: label.clone(), source: sqlx::Error::Io(e) })?;
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(|source| DbError::Open { path: label.clone(), source })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL survives a killed process (what the server must survive); only a power
            // loss may drop the last transactions.
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(30))
            // Deleted and rewritten rows are overwritten, not left in free pages: the headers migration
            // 4 scrubs and the deliveries pruned by age must be gone from the file, not just unlisted.
            .pragma("secure_delete", "on")
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| DbError::Open { path: label.clone(), source })?;
        let db = Database { pool };
        db.migrate().await?;
        db.backfill_digests().await?;
        Ok(db)
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn migrate(&self) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await.map_err(query("begin migration"))?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
        )
        .execute(&mut *tx)
        .await
        .map_err(query("create schema_migrations"))?;
        for (version, sql) in MIGRATIONS {
            let applied: Option<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = ?")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(query("read schema_migrations"))?;
            if applied.is_some() {
                continue;
            }
            sqlx::raw_sql(*sql).execute(&mut *tx).await.map_err(query("apply a migration"))?;
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)")
                .bind(version)
                .bind(now())
                .execute(&mut *tx)
                .await
                .map_err(query("record a migration"))?;
        }
        tx.commit().await.map_err(query("commit migration"))
    }

    /// The release now in `environment`.
    pub async fn current(&self, environment: &str) -> Result<Option<Release>, DbError> {
        let row = sqlx::query("SELECT * FROM releases WHERE environment = ? ORDER BY seq DESC LIMIT 1")
            .bind(environment)
            .fetch_optional(&self.pool)
            .await
            .map_err(query("read the current release"))?;
        row.map(|r| release(&r)).transpose()
    }

    /// Every release of `environment`, newest first.
    pub async fn releases(&self, environment: &str) -> Result<Vec<Release>, DbError> {
        let rows = sqlx::query("SELECT * FROM releases WHERE environment = ? ORDER BY seq DESC")
            .bind(environment)
            .fetch_all(&self.pool)
            .await
            .map_err(query("read releases"))?;
        rows.iter().map(release).collect()
    }

    /// The current release of every environment that has one.
    pub async fn environments(&self) -> Result<Vec<Release>, DbError> {
        let rows = sqlx::query(
            "SELECT * FROM releases r WHERE seq = (SELECT MAX(seq) FROM releases WHERE environment = r.environment) \
             ORDER BY environment",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query("read environments"))?;
        rows.iter().map(release).collect()
    }

    /// Environments the build has been released to.
    pub async fn been_in(&self, build_id: &str) -> Result<Vec<String>, DbError> {
        sqlx::query_scalar("SELECT DISTINCT environment FROM releases WHERE build_id = ?")
            .bind(build_id)
            .fetch_all(&self.pool)
            .await
            .map_err(query("read a build's environments"))
    }

    /// Records a release and its audit line in one transaction.
    pub async fn add_release(&self, release: &Release, audit: &AuditEntry) -> Result<i64, DbError> {
        let mut tx = self.pool.begin().await.map_err(query("begin a release"))?;
        let seq = sqlx::query(
            "INSERT INTO releases (environment, build_id, commit_sha, digests, promoted_by, promoted_at, comment, action, previous_build) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&release.environment)
        .bind(&release.build_id)
        .bind(&release.commit_sha)
        .bind(serde_json::to_string(&release.digests).expect("digests always serialise"))
        .bind(&release.promoted_by)
        .bind(&release.promoted_at)
        .bind(&release.comment)
        .bind(&release.action)
        .bind(&release.previous_build)
        .execute(&mut *tx)
        .await
        .map_err(query("write a release"))?
        .last_insert_rowid();
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(query("commit a release"))?;
        Ok(seq)
    }

    pub async fn audit(&self, entry: &AuditEntry) -> Result<(), DbError> {
        let mut conn = self.pool.acquire().await.map_err(query("connect"))?;
        insert_audit(&mut conn, entry).await
    }

    /// The audit log, oldest first; only `environment`'s lines when given.
    pub async fn audit_log(&self, environment: Option<&str>) -> Result<Vec<AuditEntry>, DbError> {
        let rows = match environment {
            Some(env) => {
                sqlx::query("SELECT * FROM audit WHERE environment = ? ORDER BY seq")
                    .bind(env)
                    .fetch_all(&self.pool)
                    .await
            }
            None => sqlx::query("SELECT * FROM audit ORDER BY seq").fetch_all(&self.pool).await,
        }
        .map_err(query("read the audit log"))?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    seq: r.try_get("seq").map_err(query("read audit"))?,
                    at: r.try_get("at").map_err(query("read audit"))?,
                    actor: r.try_get("actor").map_err(query("read audit"))?,
                    action: r.try_get("action").map_err(query("read audit"))?,
                    environment: r.try_get("environment").map_err(query("read audit"))?,
                    build_id: r.try_get("build_id").map_err(query("read audit"))?,
                    commit_sha: r.try_get("commit_sha").map_err(query("read audit"))?,
                    result: r.try_get("result").map_err(query("read audit"))?,
                    detail: r.try_get("detail").map_err(query("read audit"))?,
                })
            })
            .collect()
    }

    pub async fn add_approval(&self, approval: &ApprovalRow, audit: &AuditEntry) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await.map_err(query("begin an approval"))?;
        sqlx::query("INSERT INTO approvals (build_id, environment, approver, comment, at) VALUES (?, ?, ?, ?, ?)")
            .bind(&approval.build_id)
            .bind(&approval.environment)
            .bind(&approval.approver)
            .bind(&approval.comment)
            .bind(&approval.at)
            .execute(&mut *tx)
            .await
            .map_err(query("write an approval"))?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(query("commit an approval"))
    }

    pub async fn approvals(&self, build_id: &str, environment: &str) -> Result<Vec<ApprovalRow>, DbError> {
        let rows = sqlx::query("SELECT * FROM approvals WHERE build_id = ? AND environment = ? ORDER BY seq")
            .bind(build_id)
            .bind(environment)
            .fetch_all(&self.pool)
            .await
            .map_err(query("read approvals"))?;
        rows.iter()
            .map(|r| {
                Ok(ApprovalRow {
                    build_id: r.try_get("build_id").map_err(query("read approvals"))?,
                    environment: r.try_get("environment").map_err(query("read approvals"))?,
                    approver: r.try_get("approver").map_err(query("read approvals"))?,
                    comment: r.try_get("comment").map_err(query("read approvals"))?,
                    at: r.try_get("at").map_err(query("read approvals"))?,
                })
            })
            .collect()
    }
}

pub(super) async fn insert_audit(conn: &mut SqliteConnection, entry: &AuditEntry) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO audit (at, actor, action, environment, build_id, commit_sha, result, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&entry.at)
    .bind(&entry.actor)
    .bind(&entry.action)
    .bind(&entry.environment)
    .bind(&entry.build_id)
    .bind(&entry.commit_sha)
    .bind(&entry.result)
    .bind(&entry.detail)
    .execute(conn)
    .await
    .map_err(query("append to the audit log"))?;
    Ok(())
}

fn release(r: &sqlx::sqlite::SqliteRow) -> Result<Release, DbError> {
    let read = query("read a release");
    let digests: String = r.try_get("digests").map_err(query("read a release"))?;
    Ok(Release {
        seq: r.try_get("seq").map_err(query("read a release"))?,
        environment: r.try_get("environment").map_err(query("read a release"))?,
        build_id: r.try_get("build_id").map_err(query("read a release"))?,
        commit_sha: r.try_get("commit_sha").map_err(query("read a release"))?,
        digests: serde_json::from_str(&digests).map_err(|_| DbError::Corrupt { what: "release digests".into() })?,
        promoted_by: r.try_get("promoted_by").map_err(query("read a release"))?,
        promoted_at: r.try_get("promoted_at").map_err(query("read a release"))?,
        comment: r.try_get("comment").map_err(query("read a release"))?,
        action: r.try_get("action").map_err(query("read a release"))?,
        previous_build: r.try_get("previous_build").map_err(read)?,
    })
}

/// Now, as the RFC 3339 text every table stores.
pub fn now() -> String {
    serde_json::to_value(Timestamp::now()).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str) -> AuditEntry {
        AuditEntry {
            seq: 0,
            at: now(),
            actor: "alice".into(),
            action: action.into(),
            environment: "prod".into(),
            build_id: "b1".into(),
            commit_sha: "abc".into(),
            result: "ok".into(),
            detail: String::new(),
        }
    }

    #[tokio::test]
    async fn releases_approvals_and_an_append_only_audit_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::open(dir.path()).await.expect("open");
        assert!(db.current("prod").await.expect("current").is_none());
        let mut release = Release {
            seq: 0,
            environment: "prod".into(),
            build_id: "b1".into(),
            commit_sha: "abc".into(),
            digests: ReleaseDigests {
                components: [("train".to_string(), "sha256:1".to_string())].into(),
                ..ReleaseDigests::default()
            },
            promoted_by: "alice".into(),
            promoted_at: now(),
            comment: "first".into(),
            action: "promote".into(),
            previous_build: None,
        };
        db.add_release(&release, &entry("promote")).await.expect("release");
        release.build_id = "b2".into();
        release.previous_build = Some("b1".into());
        db.add_release(&release, &entry("promote")).await.expect("release");
        assert_eq!(db.current("prod").await.expect("current").map(|r| r.build_id), Some("b2".into()));
        assert_eq!(db.releases("prod").await.expect("releases").len(), 2);
        assert_eq!(db.been_in("b1").await.expect("been in"), ["prod"]);
        assert_eq!(db.environments().await.expect("envs").len(), 1);

        let approval = ApprovalRow {
            build_id: "b2".into(),
            environment: "prod".into(),
            approver: "bob".into(),
            comment: "lgtm".into(),
            at: now(),
        };
        db.add_approval(&approval, &entry("approve")).await.expect("approval");
        assert_eq!(db.approvals("b2", "prod").await.expect("approvals"), [approval]);
        assert_eq!(db.audit_log(Some("prod")).await.expect("audit").len(), 3);

        // The log cannot be rewritten, even with SQL.
        let err = sqlx::query("UPDATE audit SET actor = 'mallory'").execute(&db.pool).await.expect_err("append-only");
        assert!(err.to_string().contains("append-only"), "{err}");
        sqlx::query("DELETE FROM audit").execute(&db.pool).await.expect_err("append-only");

        // Reopening keeps everything and applies no migration twice.
        drop(db);
        let db = Database::open(dir.path()).await.expect("reopen");
        assert_eq!(db.audit_log(None).await.expect("audit").len(), 3);
    }

    /// A delivery stored by a server before migration 4 kept every header, GitLab's token among them:
    /// after the upgrade, only the allowed headers are in the row, and the token is in no byte of the
    /// database's files; the row's body digest is filled in so a replay of it is recognised.
    #[tokio::test]
    async fn an_upgrade_scrubs_secret_headers_kept_by_an_older_server() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::open(dir.path()).await.expect("open");
        let token = "glpat-the-webhook-secret-0123456789";
        let headers = serde_json::json!([
            ["X-Gitlab-Event", "Push Hook"],
            ["X-Gitlab-Token", token],
            ["Authorization", format!("Bearer {token}")],
            ["X-Gitlab-Event-UUID", "u-1"]
        ]);
        // As an older server wrote it: every header, no digest.
        sqlx::query(
            "INSERT INTO deliveries (id, forge, repository, event, headers, body, received_at, state) \
             VALUES ('gitlab:u-1', 'gitlab', 'acme/ml', 'Push Hook', ?, x'7b7d', ?, 'done')",
        )
        .bind(headers.to_string())
        .bind(now())
        .execute(&db.pool)
        .await
        .expect("old row");
        sqlx::query("DELETE FROM schema_migrations WHERE version = 4").execute(&db.pool).await.expect("downgrade");
        db.pool.close().await;

        let db = Database::open(dir.path()).await.expect("upgrade");
        let kept = db.delivery("gitlab:u-1").await.expect("read").expect("row");
        assert_eq!(
            kept.headers,
            [("X-Gitlab-Event".to_string(), "Push Hook".to_string()), ("X-Gitlab-Event-UUID".into(), "u-1".into())]
        );
        assert_eq!(
            kept.body_sha256, "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "SHA-256 of `{{}}`"
        );
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&db.pool).await.expect("checkpoint");
        db.pool.close().await;
        for entry in std::fs::read_dir(dir.path()).expect("list") {
            let path = entry.expect("entry").path();
            let bytes = std::fs::read(&path).expect("read");
            assert!(
                !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                "the token is still in {}",
                path.display()
            );
        }
    }
}
