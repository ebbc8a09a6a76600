//! Fuzz target `tc3_canonical`: see `dts_fuzz::tc3_canonical`.
#![cfg_attr(feature = "libfuzzer", no_main)]

#[cfg(feature = "libfuzzer")]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dts_fuzz::tc3_canonical(data));

#[cfg(not(feature = "libfuzzer"))]
fn main() {
    dts_fuzz::drive("tc3_canonical", dts_fuzz::tc3_canonical);
}
