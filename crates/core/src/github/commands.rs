//! Workflow commands, the lines a GitHub Actions runner reads from a step's output
//! (`::group::`, `::error …::`), and the `KEY=VALUE` records of `GITHUB_OUTPUT`.
//!
//! Values are escaped as the runner's own toolkit escapes them (`%`, CR, LF; in properties also `:` and
//! `,`), so a multi-line message stays one annotation and a colon in a file name cannot end a property.

/// `::group::TITLE`: the lines up to [`end_group`] fold under TITLE in the job log.
pub fn group(title: &str) -> String {
    format!("::group::{}", escape_data(title))
}

pub fn end_group() -> &'static str {
    "::endgroup::"
}

/// Where an annotation points: a file of the repository and, when known, a line and column.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: Option<usize>,
    pub col: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Notice,
}

/// `::error title=…,file=…,line=…::message`: shown on the run's page and, with a file, on the diff.
pub fn annotation(level: Level, title: &str, location: Option<&Location>, message: &str) -> String {
    let name = match level {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Notice => "notice",
    };
    let mut properties = vec![format!("title={}", escape_property(title))];
    if let Some(at) = location {
        properties.push(format!("file={}", escape_property(&at.file)));
        if let Some(line) = at.line {
            properties.push(format!("line={line}"));
        }
        if let Some(col) = at.col {
            properties.push(format!("col={col}"));
        }
    }
    format!("::{name} {}::{}", properties.join(","), escape_data(message))
}

/// One output for `GITHUB_OUTPUT`. A value with a line break uses the heredoc form, with a delimiter
/// that cannot occur in the value.
pub fn output(name: &str, value: &str) -> String {
    if !value.contains('\n') && !value.contains('\r') {
        return format!("{name}={value}\n");
    }
    let mut delimiter = String::from("PIPEWRIGHT_EOF");
    while value.contains(&delimiter) {
        delimiter.push('_');
    }
    format!("{name}<<{delimiter}\n{value}\n{delimiter}\n")
}

fn escape_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_escape_as_the_runner_expects() {
        let at = Location { file: "ci/build:v2.yaml".into(), line: Some(3), col: Some(7) };
        assert_eq!(
            annotation(Level::Error, "step a,b failed", Some(&at), "exit 1\n100% sure"),
            "::error title=step a%2Cb failed,file=ci/build%3Av2.yaml,line=3,col=7::exit 1%0A100%25 sure"
        );
        assert_eq!(annotation(Level::Notice, "skipped", None, "docs only"), "::notice title=skipped::docs only");
    }

    #[test]
    fn groups_are_one_line() {
        assert_eq!(group("Step #0 - \"a\"\nx"), "::group::Step #0 - \"a\"%0Ax");
        assert_eq!(end_group(), "::endgroup::");
    }

    #[test]
    fn outputs_use_a_heredoc_only_for_multi_line_values() {
        assert_eq!(output("status", "SUCCESS"), "status=SUCCESS\n");
        assert_eq!(output("x", "a\nPIPEWRIGHT_EOF"), "x<<PIPEWRIGHT_EOF_\na\nPIPEWRIGHT_EOF\nPIPEWRIGHT_EOF_\n");
    }
}
