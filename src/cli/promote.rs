//! `promote`, `approve`, `rollback` and `envs` (SPEC §11, §14).
//!
//! Who is acting: `$PIPEWRIGHT_USER`, else the login name. On the command line that is whoever the
//! shell says it is; the server is where identities are authenticated.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::output::Printer;
use super::{Format, fatal};
use crate::promote::{Action, Actor, PromoteError, Promoter, Promotion};
use crate::registry::Registry;
use crate::store::Store;
use crate::store::db::Database;

#[derive(Args, Debug)]
pub(super) struct PromoteArgs {
    /// The build (its id, or the first characters of it)
    build: String,
    /// The environment
    #[arg(long = "to", value_name = "ENV")]
    environment: String,
    /// Why (kept in the audit log)
    #[arg(long, default_value = "")]
    comment: String,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
pub(super) struct ApproveArgs {
    /// The build (its id, or the first characters of it)
    build: String,
    /// The environment the approval is for
    #[arg(long = "env", value_name = "ENV")]
    environment: String,
    /// Why (kept in the audit log)
    #[arg(long, default_value = "")]
    comment: String,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
pub(super) struct RollbackArgs {
    /// The environment to put back to its previous release
    environment: String,
    /// Why (kept in the audit log)
    #[arg(long, default_value = "")]
    comment: String,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
pub(super) struct EnvsArgs {
    /// Also print the audit log (every promotion, approval, refusal and rollback)
    #[arg(long)]
    history: bool,
    /// Only this environment
    #[arg(long = "env", value_name = "ENV")]
    environment: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
struct CommonArgs {
    /// Data directory [default: $PIPEWRIGHT_DATA_DIR, else ~/.local/share/pipewright]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// `json` prints the result to stdout
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    #[command(flatten)]
    credentials: super::CredentialArgs,
}

impl CommonArgs {
    fn store(&self) -> Store {
        Store::new(self.data_dir.clone().unwrap_or_else(Store::default_root))
    }

    async fn promoter(&self, printer: &Printer) -> Result<Promoter, ExitCode> {
        let store = self.store();
        let db = Database::open(store.root()).await.map_err(|e| fatal(&crate::error_chain(&e), None))?;
        let credentials = self.credentials.parse().map_err(|e| fatal(&e, None))?;
        let progress = printer.clone();
        Ok(Promoter::new(store, db, Registry::new().await)
            .with_credentials(credentials)
            .with_progress(Arc::new(move |line| progress.plain(&line))))
    }
}

fn actor(comment: &str) -> Result<Actor, ExitCode> {
    let name = ["PIPEWRIGHT_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()));
    match name {
        Some(name) => Ok(Actor { name: name.trim().to_string(), comment: comment.to_string() }),
        None => Err(fatal("who is this? set `PIPEWRIGHT_USER` to your name or email", None)),
    }
}

pub(super) async fn promote(args: PromoteArgs) -> ExitCode {
    let printer = Printer::stderr();
    let (actor, promoter) = match (actor(&args.comment), args.common.promoter(&printer).await) {
        (Ok(actor), Ok(promoter)) => (actor, promoter),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let result = promoter.promote(&args.build, &args.environment, &actor, Action::Promote).await;
    report(&printer, args.common.format, result)
}

pub(super) async fn rollback(args: RollbackArgs) -> ExitCode {
    let printer = Printer::stderr();
    let (actor, promoter) = match (actor(&args.comment), args.common.promoter(&printer).await) {
        (Ok(actor), Ok(promoter)) => (actor, promoter),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let result = promoter.rollback(&args.environment, &actor).await;
    report(&printer, args.common.format, result)
}

fn report(printer: &Printer, format: Format, result: Result<Promotion, PromoteError>) -> ExitCode {
    match result {
        Ok(promotion) => {
            let r = &promotion.release;
            if format == Format::Json {
                let json = serde_json::json!({
                    "release": r,
                    "unchanged": promotion.unchanged,
                    "tagged": promotion.tagged.iter().map(|t| serde_json::json!({
                        "what": t.what, "reference": t.reference, "digest": t.digest,
                    })).collect::<Vec<_>>(),
                    "uploads": promotion.uploads,
                    "run": promotion.run,
                });
                println!("{}", serde_json::to_string_pretty(&json).expect("a promotion serialises"));
            }
            if promotion.unchanged {
                printer.note(&format!("build {} is already the release of `{}`", short(&r.build_id), r.environment));
                return ExitCode::SUCCESS;
            }
            let previous = r.previous_build.as_deref().map(|p| format!(" (was {})", short(p))).unwrap_or_default();
            let verb = if r.action == "rollback" { "rolled back" } else { "promoted" };
            printer.success(&format!(
                "{verb} `{}` to build {} at commit {}{previous}",
                r.environment,
                short(&r.build_id),
                short(&r.commit_sha)
            ));
            match &promotion.run {
                Some(run) if !matches!(run.state.as_str(), "SUCCEEDED" | "PENDING" | "RUNNING") => {
                    printer.error(&format!("the environment's run {} {}", run.id, run.state), run.error.as_deref());
                    ExitCode::from(1)
                }
                _ => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            if format == Format::Json {
                let json = serde_json::json!({ "error": e.to_string(), "refusals": e.refusals() });
                println!("{}", serde_json::to_string_pretty(&json).expect("an error serialises"));
            }
            refused(printer, &e)
        }
    }
}

fn refused(printer: &Printer, e: &PromoteError) -> ExitCode {
    let mut message = crate::error_chain(e);
    for refusal in e.refusals() {
        message.push_str(&format!("\n  {refusal}"));
    }
    let hint = match e {
        PromoteError::Refused { refusals, build, environment } if refusals.iter().any(|r| r.rule == "approval") => {
            Some(format!("an approver runs `pipewright approve {} --env {environment}`", short(build)))
        }
        _ => None,
    };
    printer.error(&message, hint.as_deref());
    match e {
        PromoteError::Refused { .. } | PromoteError::Failed { .. } | PromoteError::NothingToRollBack { .. } => {
            ExitCode::from(1)
        }
        _ => ExitCode::from(2),
    }
}

pub(super) async fn approve(args: ApproveArgs) -> ExitCode {
    let printer = Printer::stderr();
    let (actor, promoter) = match (actor(&args.comment), args.common.promoter(&printer).await) {
        (Ok(actor), Ok(promoter)) => (actor, promoter),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    match promoter.approve(&args.build, &args.environment, &actor).await {
        Ok(approved) => {
            if args.common.format == Format::Json {
                let json = serde_json::json!({ "approvals": approved.approvals, "required": approved.required });
                println!("{}", serde_json::to_string_pretty(&json).expect("approvals serialise"));
            }
            printer.success(&format!(
                "{} approved build {} for `{}` ({} of {} approvals)",
                actor.name,
                short(&args.build),
                args.environment,
                approved.approvals.len(),
                approved.required
            ));
            ExitCode::SUCCESS
        }
        Err(e) => refused(&printer, &e),
    }
}

pub(super) async fn envs(args: EnvsArgs) -> ExitCode {
    let store = args.common.store();
    let db = match Database::open(store.root()).await {
        Ok(db) => db,
        Err(e) => return fatal(&crate::error_chain(&e), None),
    };
    let releases = match db.environments().await {
        Ok(r) => r,
        Err(e) => return fatal(&crate::error_chain(&e), None),
    };
    let releases: Vec<_> =
        releases.into_iter().filter(|r| args.environment.as_ref().is_none_or(|e| &r.environment == e)).collect();
    let history = if args.history {
        match db.audit_log(args.environment.as_deref()).await {
            Ok(log) => log,
            Err(e) => return fatal(&crate::error_chain(&e), None),
        }
    } else {
        Vec::new()
    };
    if args.common.format == Format::Json {
        let json = serde_json::json!({ "environments": releases, "history": history });
        println!("{}", serde_json::to_string_pretty(&json).expect("releases serialise"));
        return ExitCode::SUCCESS;
    }
    if releases.is_empty() {
        println!("no environment has a release yet");
    } else {
        println!("{:<12} {:<10} {:<10} {:<22} {:<9} BY", "ENVIRONMENT", "BUILD", "COMMIT", "SINCE", "ACTION");
        for r in &releases {
            println!(
                "{:<12} {:<10} {:<10} {:<22} {:<9} {}",
                r.environment,
                short(&r.build_id),
                short(&r.commit_sha),
                seconds(&r.promoted_at),
                r.action,
                r.promoted_by
            );
        }
    }
    if args.history {
        println!();
        for a in &history {
            let detail = if a.detail.is_empty() { String::new() } else { format!(": {}", a.detail) };
            println!(
                "{} {} {} {} build {} ({}) {}{detail}",
                seconds(&a.at),
                a.actor,
                a.action,
                a.environment,
                short(&a.build_id),
                short(&a.commit_sha),
                a.result
            );
        }
    }
    ExitCode::SUCCESS
}

/// `2026-11-25T10:00:00.123456Z` → `2026-11-25T10:00:00Z`, for tables.
fn seconds(at: &str) -> String {
    match at.split_once('.') {
        Some((whole, _)) => format!("{whole}Z"),
        None => at.to_string(),
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}
