//! A CRL on arbitrary bytes, parsed against a fixed issuing CA and asked about fixed certificates.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kyso::fuzzing::crl(data));
