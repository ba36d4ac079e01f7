//! An OCSP response on arbitrary bytes, judged about fixed certificates with and without a nonce.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kyso::fuzzing::ocsp_response(data));
