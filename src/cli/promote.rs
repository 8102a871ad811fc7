//! `promote`, `approve`, `rollback` and `envs` (docs/SPEC.md §11, §14).
//!
//! Who is acting. With `--server URL` the server says, from its API token (`remote.rs`), and it
//! applies its rules and writes its audit log. Without it the CLI writes the data directory itself
//! as `$PIPEWRIGHT_USER` (else the login name): whoever the shell says, so every record and audit
//! entry names it "(unverified)" (`Actor::local`), and it is refused while a server owns the
//! directory (`store::owner`): on a server, identities are proven by the server (docs/THREATS.md
//! property 5).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::common::{CredentialArgs, Format};
use super::error::{CliError, Outcome};
use super::output::Printer;
use super::remote::{Refusal, Remote};
use crate::io::registry::Registry;
use crate::io::store::Store;
use crate::io::store::db::Database;
use crate::promote::{Action, Actor, PromoteError, Promoter, Promotion};

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
    credentials: CredentialArgs,
    /// Act through this server (`pipewright serve`), which proves who you are by its API token
    /// (`$PIPEWRIGHT_TOKEN` or `--token-file`), applies its rules and keeps the audit log; required
    /// when a server owns the data directory
    #[arg(long, value_name = "URL", env = "PIPEWRIGHT_SERVER")]
    server: Option<String>,
    /// A file holding your API token for `--server` [default: $PIPEWRIGHT_TOKEN]
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// The server's project (its config's `project`)
    #[arg(long, default_value = "local")]
    project: String,
}

/// Where a promotion, approval or rollback is done.
enum Target {
    /// In this data directory, as the (unverified) local identity.
    Local(Actor, Promoter),
    /// Through a server.
    Remote(Remote),
}

impl CommonArgs {
    fn store(&self) -> Store {
        Store::new(self.data_dir.clone().unwrap_or_else(Store::default_root))
    }

    async fn promoter(&self, printer: &Printer) -> Result<Promoter, CliError> {
        let store = self.store();
        let db = Database::open(store.root()).await.map_err(|e| CliError::unable(crate::error_chain(&e)))?;
        let credentials = self.credentials.parse()?;
        let progress = printer.clone();
        Ok(Promoter::new(store, db, Registry::new().await)
            .with_credentials(credentials)
            .with_progress(Arc::new(move |line| progress.plain(&line))))
    }
}

impl CommonArgs {
    /// Through `--server`, else locally unless a server owns the data directory.
    async fn target(&self, printer: &Printer, comment: &str) -> Result<Target, CliError> {
        if let Some(server) = &self.server {
            let remote = Remote::new(server, &self.project, self.token_file.as_deref())?;
            return Ok(Target::Remote(remote));
        }
        let store = self.store();
        match crate::io::store::owner::owner(store.root()) {
            Ok(None) => {}
            Ok(Some(server)) => {
                let message = format!(
                    "a pipewright server (pid {}) owns the data directory {}: on a server, promotions, approvals and \
                     rollbacks go through it, which knows who you are by your API token",
                    server.pid,
                    store.root().display()
                );
                let url = if server.url.is_empty() { "URL".to_string() } else { server.url };
                let hint = format!("add `--server {url}` and set `PIPEWRIGHT_TOKEN` to your token for that server");
                return Err(CliError::unable(message).with_hint(hint));
            }
            Err(e) => return Err(CliError::unable(crate::error_chain(&e))),
        }
        let actor = local_actor(comment)?;
        Ok(Target::Local(actor, self.promoter(printer).await?))
    }
}

/// The self-declared local identity: `$PIPEWRIGHT_USER`, else the login name, marked unverified.
fn local_actor(comment: &str) -> Result<Actor, CliError> {
    let name = ["PIPEWRIGHT_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()));
    match name {
        Some(name) => Ok(Actor::local(name.trim(), comment)),
        None => Err(CliError::unable("who is this? set `PIPEWRIGHT_USER` to your name or email")),
    }
}

pub(super) async fn promote(args: PromoteArgs) -> Result<Outcome, CliError> {
    let printer = Printer::stderr();
    match args.common.target(&printer, &args.comment).await? {
        Target::Local(actor, promoter) => {
            let result = promoter.promote(&args.build, &args.environment, &actor, Action::Promote).await;
            report(&printer, args.common.format, result)
        }
        Target::Remote(remote) => {
            let body = serde_json::json!({"environment": args.environment, "comment": args.comment});
            let answer = remote.build_action(&args.build, "promote", body).await;
            report_remote(&printer, args.common.format, answer)
        }
    }
}

pub(super) async fn rollback(args: RollbackArgs) -> Result<Outcome, CliError> {
    let printer = Printer::stderr();
    match args.common.target(&printer, &args.comment).await? {
        Target::Local(actor, promoter) => {
            let result = promoter.rollback(&args.environment, &actor).await;
            report(&printer, args.common.format, result)
        }
        Target::Remote(remote) => {
            let answer = remote.rollback(&args.environment, serde_json::json!({"comment": args.comment})).await;
            report_remote(&printer, args.common.format, answer)
        }
    }
}

/// A server's answer to a promotion or rollback, printed as the local one is.
fn report_remote(
    printer: &Printer,
    format: Format,
    answer: Result<serde_json::Value, Refusal>,
) -> Result<Outcome, CliError> {
    match answer {
        Ok(answer) => {
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&answer).expect("json prints"));
            }
            let r = &answer["release"];
            let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
            if answer["unchanged"] == true {
                let build = text(&r["buildId"]);
                printer.note(&format!(
                    "build {} is already the release of `{}`",
                    short(&build),
                    text(&r["environment"])
                ));
                return Ok(Outcome::Success);
            }
            let verb = if r["action"] == "rollback" { "rolled back" } else { "promoted" };
            let (build, commit) = (text(&r["buildId"]), text(&r["commitSha"]));
            printer.success(&format!(
                "{verb} `{}` to build {} at commit {} (by {}, through the server)",
                text(&r["environment"]),
                short(&build),
                short(&commit),
                text(&r["promotedBy"])
            ));
            let run = &answer["run"];
            match run["state"].as_str() {
                Some(state) if !matches!(state, "SUCCEEDED" | "PENDING" | "RUNNING") => {
                    Err(CliError::failed(format!("the environment's run {} {state}", text(&run["id"])))
                        .with_optional_hint(run["error"].as_str()))
                }
                _ => Ok(Outcome::Success),
            }
        }
        Err(refusal) => Err(remote_refused(format, &refusal)),
    }
}

/// A server's refusal: its message and rules; exit 1 when the rules said no, 2 when the request
/// could not be made (unreachable, no such build, a bad token).
fn remote_refused(format: Format, refusal: &Refusal) -> CliError {
    if format == Format::Json {
        let json = serde_json::json!({"error": refusal.message, "status": refusal.status, "refusals": refusal.details});
        println!("{}", serde_json::to_string_pretty(&json).expect("json prints"));
    }
    let mut message = refusal.message.clone();
    for detail in &refusal.details {
        message.push_str(&format!("\n  {detail}"));
    }
    let hint = (refusal.status == Some(401))
        .then_some("check `PIPEWRIGHT_TOKEN` (or `--token-file`): it must be one of the server's tokens");
    let error = match refusal.status {
        Some(409) | Some(502) => CliError::failed(message),
        _ => CliError::unable(message),
    };
    error.with_optional_hint(hint)
}

fn report(printer: &Printer, format: Format, result: Result<Promotion, PromoteError>) -> Result<Outcome, CliError> {
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
                return Ok(Outcome::Success);
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
                    Err(CliError::failed(format!("the environment's run {} {}", run.id, run.state))
                        .with_optional_hint(run.error.as_deref()))
                }
                _ => Ok(Outcome::Success),
            }
        }
        Err(e) => {
            if format == Format::Json {
                let json = serde_json::json!({ "error": e.to_string(), "refusals": e.refusals() });
                println!("{}", serde_json::to_string_pretty(&json).expect("an error serialises"));
            }
            Err(refused(&e))
        }
    }
}

fn refused(e: &PromoteError) -> CliError {
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
    let error = match e {
        PromoteError::Refused { .. } | PromoteError::Failed { .. } | PromoteError::NothingToRollBack { .. } => {
            CliError::failed(message)
        }
        _ => CliError::unable(message),
    };
    error.with_optional_hint(hint)
}

pub(super) async fn approve(args: ApproveArgs) -> Result<Outcome, CliError> {
    let printer = Printer::stderr();
    let (actor, promoter) = match args.common.target(&printer, &args.comment).await? {
        Target::Local(actor, promoter) => (actor, promoter),
        Target::Remote(remote) => {
            let body = serde_json::json!({"environment": args.environment, "comment": args.comment});
            return match remote.build_action(&args.build, "approve", body).await {
                Ok(answer) => {
                    if args.common.format == Format::Json {
                        println!("{}", serde_json::to_string_pretty(&answer).expect("json prints"));
                    }
                    let approvals = answer["approvals"].as_array().map_or(0, Vec::len);
                    printer.success(&format!(
                        "approved build {} for `{}` through the server ({approvals} of {} approvals)",
                        short(&args.build),
                        args.environment,
                        answer["required"]
                    ));
                    Ok(Outcome::Success)
                }
                Err(refusal) => Err(remote_refused(args.common.format, &refusal)),
            };
        }
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
            Ok(Outcome::Success)
        }
        Err(e) => Err(refused(&e)),
    }
}

pub(super) async fn envs(args: EnvsArgs) -> Result<Outcome, CliError> {
    let store = args.common.store();
    let unable = |e: &dyn std::error::Error| CliError::unable(crate::error_chain(e));
    let db = Database::open(store.root()).await.map_err(|e| unable(&e))?;
    let releases = db.environments().await.map_err(|e| unable(&e))?;
    let releases: Vec<_> =
        releases.into_iter().filter(|r| args.environment.as_ref().is_none_or(|e| &r.environment == e)).collect();
    let history = if args.history {
        db.audit_log(args.environment.as_deref()).await.map_err(|e| unable(&e))?
    } else {
        Vec::new()
    };
    if args.common.format == Format::Json {
        let json = serde_json::json!({ "environments": releases, "history": history });
        println!("{}", serde_json::to_string_pretty(&json).expect("releases serialise"));
        return Ok(Outcome::Success);
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
    Ok(Outcome::Success)
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
