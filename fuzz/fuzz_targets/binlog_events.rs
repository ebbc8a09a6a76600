//! Fuzz target `binlog_events`: see `dts_fuzz::binlog_events`.
#![cfg_attr(feature = "libfuzzer", no_main)]

#[cfg(feature = "libfuzzer")]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dts_fuzz::binlog_events(data));

#[cfg(not(feature = "libfuzzer"))]
fn main() {
    dts_fuzz::drive("binlog_events", dts_fuzz::binlog_events);
}
