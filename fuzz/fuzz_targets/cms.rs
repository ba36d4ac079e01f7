//! A CMS SignedData on arbitrary bytes through `kyso::verify::verify_cms` against a fixed root.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kyso::fuzzing::cms(data));
