//! The build-file loader, `config::load`: any bytes give a config or diagnostics, never a panic.
//!
//! Input: the file, then optionally a 0xFF byte (never part of UTF-8 text) and `--substitutions`
//! overrides, one `KEY=VALUE` a line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipewright::config;

fuzz_target!(|data: &[u8]| {
    let (file, overrides) = match data.iter().position(|b| *b == 0xFF) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let overrides: Vec<(String, String)> = String::from_utf8_lossy(overrides)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    match config::load("fuzz.yaml", file, &overrides) {
        // A refusal always says why: at least one error, each at a real position.
        Err(diagnostics) => {
            assert!(diagnostics.has_errors(), "refused without an error: {diagnostics:?}");
            for d in &diagnostics.items {
                assert!(d.pos.line >= 1 && d.pos.col >= 1, "diagnostic at {:?}", d.pos);
                assert!(!d.message.is_empty(), "empty message: {d:?}");
            }
        }
        // An accepted file is accepted again, with the same warnings: loading is a function of its input.
        Ok(loaded) => {
            let again = config::load("fuzz.yaml", file, &overrides).expect("accepted once, refused the second time");
            assert_eq!(loaded.warnings, again.warnings);
            assert_eq!(format!("{:?}", loaded.config), format!("{:?}", again.config));
            assert!(!loaded.warnings.has_errors());
        }
    }
});
