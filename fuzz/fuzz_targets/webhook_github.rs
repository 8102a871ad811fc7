//! The GitHub webhook normaliser (`trigger::parse(Forge::GitHub, …)`). Input: a selector byte (see
//! `pipewright_fuzz::webhook`), then the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipewright::trigger::Forge;

fuzz_target!(|data: &[u8]| {
    pipewright_fuzz::webhook(Forge::GitHub, data);
});
