//! The JSON body of `POST /v1/signatures` on arbitrary bytes, read and validated as the handler does.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kyso::fuzzing::signature_request(data));
