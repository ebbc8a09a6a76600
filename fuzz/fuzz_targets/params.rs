//! Fuzz target `params`: see `dts_fuzz::params`.
#![cfg_attr(feature = "libfuzzer", no_main)]

#[cfg(feature = "libfuzzer")]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dts_fuzz::params(data));

#[cfg(not(feature = "libfuzzer"))]
fn main() {
    dts_fuzz::drive("params", dts_fuzz::params);
}
