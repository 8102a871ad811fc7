//! Masking of secret values in a byte stream that arrives in arbitrary chunks.
//!
//! A secret printed in two writes (`printf 'hun'; printf 'ter2'`) reaches us as two chunks, so masking
//! chunk by chunk would leak it. [`Masker`] holds back just enough of the stream's tail to be sure no
//! secret straddles what it releases. Values shorter than [`MIN_SECRET_LEN`] are not masked: masking
//! every `a` in a log protects nothing and destroys the log.

pub const MASK: &str = "***";
pub const MIN_SECRET_LEN: usize = 3;

#[derive(Clone, Debug, Default)]
pub struct Secrets {
    /// Longest first, so that a secret containing another is masked whole.
    values: Vec<Vec<u8>>,
}

impl Secrets {
    pub fn new<I, S>(values: I) -> Secrets
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let mut out: Vec<Vec<u8>> = Vec::new();
        for value in values {
            let value = value.as_ref();
            out.push(value.to_vec());
            // A multi-line secret may be printed one line at a time; mask its lines too.
            if value.contains(&b'\n') {
                out.extend(value.split(|b| *b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec()));
            }
        }
        out.retain(|v| v.len() >= MIN_SECRET_LEN);
        out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        out.dedup();
        Secrets { values: out }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    fn longest(&self) -> usize {
        self.values.first().map_or(0, Vec::len)
    }

    /// Masks a complete text (an error message, a record field).
    pub fn mask_str(&self, text: &str) -> String {
        if self.is_empty() {
            return text.to_string();
        }
        String::from_utf8_lossy(&self.mask_bytes(text.as_bytes())).into_owned()
    }

    fn mask_bytes(&self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        let mut i = 0;
        'outer: while i < data.len() {
            for value in &self.values {
                if data[i..].starts_with(value) {
                    out.extend_from_slice(MASK.as_bytes());
                    i += value.len();
                    continue 'outer;
                }
            }
            out.push(data[i]);
            i += 1;
        }
        out
    }

    /// Length of the longest suffix of `data` that is a proper prefix of some secret: those bytes may be
    /// the start of a secret whose rest has not arrived yet.
    fn pending_prefix(&self, data: &[u8]) -> usize {
        let max = self.longest().saturating_sub(1).min(data.len());
        (1..=max)
            .rev()
            .find(|&n| {
                let tail = &data[data.len() - n..];
                self.values.iter().any(|v| v.len() > n && v.starts_with(tail))
            })
            .unwrap_or(0)
    }
}

/// Streaming masker: feed chunks, get back bytes that are safe to show.
#[derive(Debug)]
pub struct Masker {
    secrets: Secrets,
    held: Vec<u8>,
}

impl Masker {
    pub fn new(secrets: Secrets) -> Masker {
        Masker { secrets, held: Vec::new() }
    }

    /// Returns the masked bytes that can be released now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.secrets.is_empty() {
            return chunk.to_vec();
        }
        self.held.extend_from_slice(chunk);
        let masked = self.secrets.mask_bytes(&self.held);
        // Masking never produces a secret's prefix from `***`, so the tail that may still grow into a
        // secret is found on the masked text and kept raw for the next round.
        let keep = self.secrets.pending_prefix(&masked);
        let release = masked.len() - keep;
        let kept = masked[release..].to_vec();
        let mut out = masked;
        out.truncate(release);
        self.held = kept;
        out
    }

    /// Releases whatever is held: the stream ended, so nothing more can complete a secret.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }
}

/// Splits a byte stream into lines, keeping a trailing partial line until more arrives.
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// Complete lines (without `\n` or `\r\n`), lossily decoded as UTF-8.
    pub fn push(&mut self, data: &[u8]) -> Vec<String> {
        self.partial.extend_from_slice(data);
        let mut lines = Vec::new();
        let mut start = 0;
        for (i, b) in self.partial.iter().enumerate() {
            if *b == b'\n' {
                let line = &self.partial[start..i];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                lines.push(String::from_utf8_lossy(line).into_owned());
                start = i + 1;
            }
        }
        self.partial.drain(..start);
        lines
    }

    /// The last line, if the stream did not end with a newline.
    pub fn finish(&mut self) -> Option<String> {
        if self.partial.is_empty() {
            return None;
        }
        let line = String::from_utf8_lossy(&self.partial).into_owned();
        self.partial.clear();
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(secrets: &[&str], chunks: &[&str]) -> String {
        let mut masker = Masker::new(Secrets::new(secrets));
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend(masker.push(chunk.as_bytes()));
        }
        out.extend(masker.finish());
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn masks_whole_values() {
        assert_eq!(stream(&["hunter2"], &["pw=hunter2\n"]), "pw=***\n");
        assert_eq!(stream(&["hunter2"], &["hunter2hunter2"]), "******");
    }

    #[test]
    fn masks_values_split_across_chunks() {
        assert_eq!(stream(&["hunter2"], &["pw=hun", "ter2\n"]), "pw=***\n");
        assert_eq!(stream(&["hunter2"], &["h", "u", "n", "t", "e", "r", "2"]), "***");
        assert_eq!(stream(&["s3cr3t-value"], &["a s3cr", "3t-va", "lue b"]), "a *** b");
    }

    #[test]
    fn releases_near_misses() {
        assert_eq!(stream(&["hunter2"], &["hunt", "er3\n"]), "hunter3\n");
        assert_eq!(stream(&["hunter2"], &["hunte"]), "hunte");
    }

    #[test]
    fn holds_back_only_a_possible_prefix() {
        let mut masker = Masker::new(Secrets::new(["hunter2"]));
        assert_eq!(masker.push(b"hello hu"), b"hello ".to_vec());
        assert_eq!(masker.push(b"x"), b"hux".to_vec());
    }

    #[test]
    fn longest_secret_wins() {
        assert_eq!(stream(&["abc", "abcdef"], &["xabcdefx"]), "x***x");
    }

    #[test]
    fn multi_line_secrets_mask_each_line() {
        let out = stream(&["line-one\nline-two"], &["a line-two b\n"]);
        assert_eq!(out, "a *** b\n");
    }

    #[test]
    fn short_values_are_not_masked() {
        assert_eq!(stream(&["a"], &["banana"]), "banana");
    }

    #[test]
    fn lines() {
        let mut s = LineSplitter::default();
        assert_eq!(s.push(b"a\nb"), vec!["a"]);
        assert_eq!(s.push(b"c\r\nd\n"), vec!["bc", "d"]);
        assert_eq!(s.push(b"tail"), Vec::<String>::new());
        assert_eq!(s.finish(), Some("tail".into()));
        assert_eq!(s.finish(), None);
    }
}
