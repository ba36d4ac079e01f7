//! The MSSP SOAP answer parser on arbitrary bytes: whatever an MSSP (or anyone posting to the
//! notification callback) sends must end in `Ok` or `Err`, never a panic, a hang or a blow-up.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kyso::fuzzing::soap_response(data));
