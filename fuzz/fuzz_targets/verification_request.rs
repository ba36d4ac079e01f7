//! The JSON body of `POST /v1/verifications` on arbitrary bytes, read, checked and judged as the
//! handler does.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kyso::fuzzing::verification_request(data));
