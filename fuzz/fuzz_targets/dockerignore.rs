//! `.dockerignore` (`image::DockerIgnore`): parse a file, then ask which context paths it excludes.
//!
//! Input: the file, then optionally a NUL and paths, one a line (cleaned here into the relative,
//! `/`-separated form `excludes` takes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipewright::io::image::DockerIgnore;

fuzz_target!(|data: &[u8]| {
    let (file, paths) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b"a\na/b\nsrc/main.rs\n.git/config\ndocs/x.md\nREADME.md"[..]),
    };
    let Ok(file) = std::str::from_utf8(file) else { return };
    let ignore = match DockerIgnore::parse(file) {
        Ok(ignore) => ignore,
        Err(e) => {
            assert!(
                e.line >= 1 && e.line <= file.lines().count().max(1),
                "error on line {} of {}",
                e.line,
                file.lines().count()
            );
            return;
        }
    };
    for line in String::from_utf8_lossy(paths).lines() {
        let segments: Vec<&str> = line.split('/').filter(|s| !s.is_empty() && *s != "." && *s != "..").collect();
        if segments.is_empty() {
            continue;
        }
        let path = segments.join("/");
        let excluded = ignore.excludes(&path);
        // The context walker skips an excluded directory whole when no exception could re-include
        // anything below it: that shortcut must never let a path in that `excludes` leaves out.
        for end in 1..segments.len() {
            let dir = segments[..end].join("/");
            if ignore.excludes(&dir) && !ignore.may_reinclude_below(&dir) {
                assert!(
                    excluded,
                    "`{dir}` is excluded with nothing to re-include below it, but `{path}` is not excluded"
                );
            }
        }
    }
});
