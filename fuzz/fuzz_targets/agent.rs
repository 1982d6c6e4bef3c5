#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seashell::fuzzing::agent(data));
