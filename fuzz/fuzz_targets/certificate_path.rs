//! A raw signature check on arbitrary parts: signature, signer certificate and chain (framed as
//! `kyso::fuzzing::split_parts` reads them) through `kyso::verify::verify` against a fixed root.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kyso::fuzzing::certificate_path(data));
