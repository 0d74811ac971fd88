#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gitlab_registry_usage_rest::fuzzing::cleanup(data));
