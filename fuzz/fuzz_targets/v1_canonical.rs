//! Fuzz target `v1_canonical`: see `dts_fuzz::v1_canonical`.
#![cfg_attr(feature = "libfuzzer", no_main)]

#[cfg(feature = "libfuzzer")]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dts_fuzz::v1_canonical(data));

#[cfg(not(feature = "libfuzzer"))]
fn main() {
    dts_fuzz::drive("v1_canonical", dts_fuzz::v1_canonical);
}
