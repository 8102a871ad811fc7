//! `pipewright rewrite [DIR]`: points the component specs of a checkout at the images of its HEAD
//! commit, in place.
//!
//! Exit codes: 0 the specs were rewritten (or would be, with `--dry-run`), 1 the rewrite failed, 2 the
//! arguments or the build file are not usable.

use std::collections::BTreeMap;

use clap::Args;

use super::common::{Format, SubstitutionArgs};
use super::error::{CliError, Outcome};
use super::output::Printer;
use crate::engine::rewrite::{RewriteError, RewriteRequest};

#[derive(Args, Debug)]
pub(super) struct RewriteArgs {
    /// The checkout to edit in place (a subdirectory of a repository works as for `run`)
    #[arg(default_value = ".")]
    dir: String,
    /// Build file, relative to the build's root
    #[arg(long)]
    config: Option<String>,
    #[command(flatten)]
    substitutions: SubstitutionArgs,
    /// The image of one component, `NAME=REF` (repeatable); others become `<registry>/<name>:<HEAD>`,
    /// pinned to the registry digest when that tag exists
    #[arg(long = "image", value_name = "NAME=REF")]
    images: Vec<String>,
    /// Print the changes without writing them
    #[arg(long)]
    dry_run: bool,
    /// `json` prints the changes as JSON
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

pub(super) async fn rewrite(args: RewriteArgs) -> Result<Outcome, CliError> {
    let overrides = args.substitutions.parse()?;
    let mut images = BTreeMap::new();
    for item in &args.images {
        match item.split_once('=') {
            Some((name, reference)) if !name.is_empty() && !reference.is_empty() => {
                images.insert(name.to_string(), reference.to_string());
            }
            _ => return Err(CliError::unable(format!("`--image {item}` is not of the form `NAME=REF`"))),
        }
    }
    let request = RewriteRequest { dir: args.dir, config_path: args.config, overrides, images, dry_run: args.dry_run };
    let registry = crate::io::registry::Registry::new().await;
    let changes = crate::engine::rewrite::rewrite(&request, &registry).await.map_err(|e| match e {
        RewriteError::Rejected(rejected) => CliError::from(rejected),
        e => CliError::failed(e.to_string()),
    })?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&changes).expect("changes serialise")),
        Format::Human => {
            for c in &changes {
                println!("{}:{}: {} -> {}", c.file, c.line, c.old_image, c.new_image);
            }
        }
    }
    let verb = if request.dry_run { "would change" } else { "changed" };
    let printer = Printer::stderr();
    printer.success(&format!("{verb} {} image{}", changes.len(), if changes.len() == 1 { "" } else { "s" }));
    Ok(Outcome::Success)
}
