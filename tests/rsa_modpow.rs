//! The vendored num-bigint-dig (vendor/num-bigint-dig/KYSO-PATCH.md) takes a
//! one-digit exponent bit by bit. Every signature verification goes through it,
//! so it is checked here against schoolbook square-and-multiply with a division
//! after each step — no Montgomery arithmetic at all — for the exponents RSA
//! uses, for every short-exponent edge, and for the windowed path it left alone.

use rsa::BigUint;

/// xorshift64*: deterministic bytes, so a failure names its case.
struct Bytes(u64);

impl Bytes {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn number(&mut self, bits: usize) -> BigUint {
        let mut bytes: Vec<u8> = (0..bits.div_ceil(64))
            .flat_map(|_| self.next().to_be_bytes())
            .collect();
        bytes.truncate(bits.div_ceil(8));
        let n = BigUint::from_bytes_be(&bytes);
        n >> (bytes.len() * 8 - bits)
    }

    /// An odd modulus of exactly `bits` bits.
    fn modulus(&mut self, bits: usize) -> BigUint {
        let top = BigUint::from(1u8) << (bits - 1);
        self.number(bits) | top | BigUint::from(1u8)
    }
}

fn reference(base: &BigUint, exponent: &BigUint, modulus: &BigUint) -> BigUint {
    let mut acc = BigUint::from(1u8) % modulus;
    let mut square = base % modulus;
    for byte in exponent.to_bytes_le() {
        for bit in 0..8 {
            if byte >> bit & 1 == 1 {
                acc = &acc * &square % modulus;
            }
            square = &square * &square % modulus;
        }
    }
    acc
}

fn check(base: &BigUint, exponent: &BigUint, modulus: &BigUint) {
    assert_eq!(
        base.modpow(exponent, modulus),
        reference(base, exponent, modulus),
        "{base:x} ^ {exponent:x} mod {modulus:x}"
    );
}

#[test]
fn short_exponents_match_schoolbook_arithmetic() {
    let mut rng = Bytes(0x6b79_736f_2d72_7361);
    let mut exponents: Vec<u64> = vec![1, 2, 3, 4, 5, 17, 255, 256, 65_537, 1 << 63, u64::MAX];
    exponents.extend((0..8).map(|_| rng.next()));
    for bits in [2048usize, 2047, 1024, 3072, 64, 65, 7] {
        let modulus = rng.modulus(bits);
        let below = rng.number(bits) % &modulus;
        let one = BigUint::from(1u8);
        // Same length as the modulus but larger: allowed, reduced on the way.
        let above = &modulus + &below % (BigUint::from(1u8) << (bits - 2));
        let longer = rng.number(bits + 130);
        let bases = [
            BigUint::default(),
            one.clone(),
            &modulus - &one,
            below,
            above,
            longer,
        ];
        for exponent in &exponents {
            for base in &bases {
                check(base, &BigUint::from(*exponent), &modulus);
            }
        }
    }
}

#[test]
fn tiny_moduli_and_exponents() {
    for modulus in [1u64, 3, 11, 19, 65_537, u64::MAX] {
        for base in [0u64, 1, 2, 10, 18, u64::MAX - 1] {
            for exponent in [1u64, 2, 7, 117, 65_537] {
                check(
                    &BigUint::from(base),
                    &BigUint::from(exponent),
                    &BigUint::from(modulus),
                );
            }
        }
    }
}

#[test]
fn long_exponents_keep_the_windowed_path() {
    let mut rng = Bytes(0x7769_6e64_6f77_6564);
    let modulus = rng.modulus(1024);
    let base = rng.number(1000);
    for bits in [65usize, 128, 1024] {
        // The top bit set, so the exponent really is longer than one digit.
        check(&base, &rng.modulus(bits), &modulus);
    }
    check(&base, &BigUint::default(), &modulus);
}
