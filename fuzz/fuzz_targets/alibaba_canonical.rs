//! Fuzz target `alibaba_canonical`: see `dts_fuzz::alibaba_canonical`.
#![cfg_attr(feature = "libfuzzer", no_main)]

#[cfg(feature = "libfuzzer")]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dts_fuzz::alibaba_canonical(data));

#[cfg(not(feature = "libfuzzer"))]
fn main() {
    dts_fuzz::drive("alibaba_canonical", dts_fuzz::alibaba_canonical);
}
