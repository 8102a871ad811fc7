//! GitHub Actions (docs/SPEC.md §13): `pipewright github-action` runs a build inside a workflow job.
//!
//! The job's environment stands in for the webhook: [`context`] turns `GITHUB_EVENT_NAME` and the payload
//! at `GITHUB_EVENT_PATH` (the same JSON a webhook delivers) into a [`crate::trigger::Event`], so the
//! build file's triggers and path filters decide exactly as they do on the server. [`commands`] writes
//! the runner's workflow commands (log groups, annotations, outputs) and [`summary`] the Markdown of
//! `GITHUB_STEP_SUMMARY`. All three are pure; the CLI edge (`src/cli/github.rs`) does the IO.

pub mod commands;
pub mod context;
pub mod summary;
