//! The Markdown a build leaves in `GITHUB_STEP_SUMMARY`: what a reviewer needs on the run's page
//! without opening the log. Status and trigger decision, steps and phases with durations, the component
//! images with their digests (built or reused), the pipeline spec and where it went, the spec's semantic
//! diff against the base commit's, and the pipeline run's metrics.

use std::fmt::Write;

use crate::record::{Build, Status, TimeSpan};

/// The summary of a build that ran (or was refused after it started). `spec_diff` is Markdown from
/// [`crate::kfp::diff`], or a sentence saying why there is none.
pub fn build(build: &Build, spec_diff: Option<&str>) -> String {
    let mut out = String::new();
    let commit = build.commit.as_ref();
    let _ = writeln!(out, "## {} pipewright build {}\n", icon(build.status), build.status.as_str());
    let mut facts = vec![format!("build `{}`", build.id)];
    if let Some(c) = commit {
        let on = c.branch.as_deref().or(c.tag.as_deref()).map(|r| format!(" on `{r}`")).unwrap_or_default();
        facts.push(format!("commit `{}`{on}", short(&c.sha)));
    }
    if let Some(seconds) = span_seconds(build.start_time, build.finish_time) {
        facts.push(format!("{seconds:.1} s"));
    }
    let _ = writeln!(out, "{}\n", facts.join(" · "));
    if let Some(trigger) = &build.trigger {
        let name = trigger.name.as_deref().map(|n| format!(" `{n}`")).unwrap_or_default();
        let _ = writeln!(out, "**Trigger**{name}: {}\n", cell(&trigger.reason));
    }
    if let Some(failure) = &build.failure_info {
        let _ = writeln!(out, "> [!CAUTION]\n> {}\n", cell(&failure.detail));
    }

    if !build.steps.is_empty() {
        out.push_str("### Steps\n\n| # | Step | Status | Duration |\n| ---: | --- | --- | ---: |\n");
        for (i, step) in build.steps.iter().enumerate() {
            let label = if step.id.is_empty() { step.name.clone() } else { format!("{} ({})", step.id, step.name) };
            let status = match step.exit_code {
                Some(code) if code != 0 => format!("{} (exit code {code})", step.status.as_str()),
                _ => step.status.as_str().to_string(),
            };
            let _ = writeln!(
                out,
                "| {i} | {} | {} {status} | {} |",
                cell(&label),
                icon(step.status),
                duration(&step.timing)
            );
        }
        out.push('\n');
    }

    let mut phases: Vec<_> = build.timing.iter().collect();
    phases.sort_by_key(|(_, span)| span.start_time.map(|t| t.0));
    if !phases.is_empty() {
        out.push_str("### Phases\n\n| Phase | Duration |\n| --- | ---: |\n");
        for (name, span) in phases {
            let _ = writeln!(out, "| {name} | {} |", duration(&Some(span.clone())));
        }
        out.push('\n');
    }

    if !build.components.is_empty() {
        let reused = build.components.iter().filter(|c| c.reused).count();
        let _ = writeln!(
            out,
            "### Component images ({} built, {reused} reused)\n\n| Component | Image | Digest | |\n| --- | --- | --- | --- |",
            build.components.len() - reused
        );
        for c in &build.components {
            let how = if c.reused {
                if c.built_by.is_empty() {
                    "reused".to_string()
                } else {
                    format!("reused from `{}`", short(&c.built_by))
                }
            } else {
                format!("{} built", icon(c.status))
            };
            let _ = writeln!(out, "| {} | `{}` | `{}` | {how} |", cell(&c.name), cell(&c.image), cell(&c.digest));
        }
        out.push('\n');
    }
    if build.components.is_empty() && !build.results.images.is_empty() {
        out.push_str("### Images\n\n| Image | Digest |\n| --- | --- |\n");
        for image in &build.results.images {
            let _ = writeln!(out, "| `{}` | `{}` |", cell(&image.name), cell(&image.digest));
        }
        out.push('\n');
    }

    if let Some(pipeline) = &build.pipeline {
        let _ = writeln!(out, "### Pipeline `{}`\n", cell(&pipeline.name));
        if !pipeline.spec_digest.is_empty() {
            let _ = writeln!(out, "Spec `{}`: `{}`\n", cell(&pipeline.spec), pipeline.spec_digest);
        }
        if !pipeline.uploads.is_empty() {
            out.push_str("| Uploaded to | Where | Version | Tags |\n| --- | --- | --- | --- |\n");
            for u in &pipeline.uploads {
                let _ = writeln!(
                    out,
                    "| {} | `{}` | `{}` | {} |",
                    u.destination,
                    cell(&u.uri),
                    cell(&u.version),
                    u.tags.iter().map(|t| format!("`{}`", cell(t))).collect::<Vec<_>>().join(" ")
                );
            }
            out.push('\n');
        }
    }
    if let Some(diff) = spec_diff {
        let _ = writeln!(out, "### Spec changes\n\n{}\n", diff.trim_end());
    }

    if let Some(run) = &build.run {
        let url = run.url.as_deref().map(|u| format!(" ([open]({u}))")).unwrap_or_default();
        let _ = writeln!(out, "### Pipeline run `{}` on `{}`: {}{url}\n", cell(&run.id), run.backend, run.state);
        if let Some(error) = &run.error {
            let _ = writeln!(out, "{}\n", cell(error));
        }
        if !run.metrics.is_empty() {
            out.push_str("| Metric | Value |\n| --- | ---: |\n");
            for (name, value) in &run.metrics {
                let _ = writeln!(out, "| {} | {value} |", cell(name));
            }
            out.push('\n');
        }
    }

    if !build.promotions.is_empty() {
        out.push_str("### Promotions\n\n");
        for p in &build.promotions {
            let detail = if p.detail.is_empty() { String::new() } else { format!(": {}", cell(&p.detail)) };
            let _ = writeln!(out, "- `{}` {} by {}{detail}", p.environment, p.result, cell(&p.by));
        }
        out.push('\n');
    }
    out
}

/// The summary of an event the build file's triggers (or the event itself) said not to build.
pub fn skipped(commit: &str, trigger: Option<&str>, reason: &str) -> String {
    let name = trigger.map(|n| format!(" `{n}`")).unwrap_or_default();
    format!(
        "## {} pipewright build SKIPPED\n\ncommit `{}`\n\n**Trigger**{name}: {}\n",
        icon(Status::Skipped),
        short(commit),
        cell(reason)
    )
}

/// The summary when pipewright could not run the build at all (bad build file, no Docker).
pub fn rejected(message: &str) -> String {
    format!("## {} pipewright could not run the build\n\n```\n{}\n```\n", icon(Status::Failure), message.trim_end())
}

fn icon(status: Status) -> &'static str {
    match status {
        Status::Success => "✅",
        Status::Skipped => "⏭️",
        Status::Queued | Status::Pending | Status::Working | Status::StatusUnknown => "⏳",
        Status::Cancelled => "⛔",
        Status::Timeout => "⌛",
        _ => "❌",
    }
}

fn duration(span: &Option<TimeSpan>) -> String {
    span.as_ref().and_then(TimeSpan::seconds).map(|s| format!("{s:.1} s")).unwrap_or_default()
}

fn span_seconds(start: Option<crate::record::Timestamp>, end: Option<crate::record::Timestamp>) -> Option<f64> {
    Some(end?.seconds_since(&start?))
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// Text made safe for one table cell: no line breaks, no column separators.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ComponentRecord, PipelineRecord, RunRecord, TriggerRecord, UploadRecord};

    fn record() -> Build {
        let mut build: Build = serde_json::from_value(serde_json::json!({
            "id": "b-1", "projectId": "local", "status": "FAILURE", "createTime": "2026-11-25T10:00:00Z",
            "startTime": "2026-11-25T10:00:00Z", "finishTime": "2026-11-25T10:00:42Z", "timeout": "600s",
            "failureInfo": {"type": "USER_BUILD_STEP", "detail": "Build step 1 \"lint\" failed: exit code 3"}
        }))
        .expect("record");
        build.steps = serde_json::from_value(serde_json::json!([
            {"name": "local/python", "id": "tests", "status": "SUCCESS"},
            {"name": "local/python", "id": "lint", "status": "FAILURE", "exitCode": 3},
        ]))
        .expect("steps");
        build.trigger = Some(TriggerRecord {
            event: "push".into(),
            name: Some("main".into()),
            decision: "build".into(),
            reason: "push to main | 2 files changed".into(),
            ..Default::default()
        });
        build.components = vec![
            ComponentRecord {
                name: "train".into(),
                image: "reg/train:abc".into(),
                digest: "sha256:1".into(),
                status: Status::Success,
                ..Default::default()
            },
            ComponentRecord {
                name: "eval".into(),
                image: "reg/eval:abc".into(),
                digest: "sha256:2".into(),
                reused: true,
                built_by: "b-0000000000000".into(),
                status: Status::Success,
                ..Default::default()
            },
        ];
        build.pipeline = Some(PipelineRecord {
            name: "p".into(),
            spec: "build/p.yaml".into(),
            spec_digest: "sha256:3".into(),
            uploads: vec![UploadRecord {
                destination: "oci".into(),
                uri: "reg/p@sha256:4".into(),
                version: "sha256:4".into(),
                tags: vec!["abc".into(), "main".into()],
            }],
            ..Default::default()
        });
        build.run = Some(RunRecord {
            backend: "local".into(),
            id: "r-1".into(),
            state: "SUCCEEDED".into(),
            metrics: [("accuracy".to_string(), 0.97)].into_iter().collect(),
            ..Default::default()
        });
        build
    }

    #[test]
    fn the_summary_has_every_part_a_reviewer_looks_for() {
        let text = build(&record(), Some("| change |\n| --- |\n| image |"));
        for expected in [
            "## ❌ pipewright build FAILURE",
            "build `b-1` · 42.0 s",
            "**Trigger** `main`: push to main \\| 2 files changed",
            "> Build step 1 \"lint\" failed: exit code 3",
            "| 1 | lint (local/python) | ❌ FAILURE (exit code 3) |",
            "### Component images (1 built, 1 reused)",
            "| train | `reg/train:abc` | `sha256:1` | ✅ built |",
            "| eval | `reg/eval:abc` | `sha256:2` | reused from `b-0000000000` |",
            "Spec `build/p.yaml`: `sha256:3`",
            "| oci | `reg/p@sha256:4` | `sha256:4` | `abc` `main` |",
            "### Spec changes\n\n| change |",
            "### Pipeline run `r-1` on `local`: SUCCEEDED",
            "| accuracy | 0.97 |",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }

    #[test]
    fn a_skip_says_why() {
        let text = skipped(&"f".repeat(40), Some("main"), "only docs/** changed");
        assert!(text.contains("SKIPPED") && text.contains("`ffffffffffff`") && text.contains("only docs/** changed"));
    }
}
