#!/usr/bin/env bash
# Writes the starting inputs of every target into fuzz/seeds/<target>/ from tests/fixtures
# (soap_response keeps its hand-written XML). Re-run after tests/fixtures/make.sh; the fuzzers
# grow fuzz/corpus/<target>/ from these (see fuzz/README.md).
set -euo pipefail
cd "$(dirname "$0")"
fx=../tests/fixtures

# kyso::fuzzing::split_parts framing: a flag byte (1 = PSS), then u16-BE-length-prefixed parts.
parts() {
  local flag=$1; shift
  printf "\\x$(printf %02x "$flag")"
  for f in "$@"; do
    local n; n=$(stat -c %s "$fx/$f")
    printf "\\x$(printf %02x $((n >> 8)))\\x$(printf %02x $((n & 255)))"
    cat "$fx/$f"
  done
}
b64() { base64 -w0 "$fx/$1"; }

d=seeds/certificate_path; rm -rf "$d"; mkdir -p "$d"
parts 0 sig-person.pkcs1 person.der issuing-ca.der >"$d/person-pkcs1"
parts 1 sig-person.pss person.der issuing-ca.der >"$d/person-pss"
parts 0 sig-person.pkcs1 person.der root-ca.der issuing-ca.der >"$d/person-with-root"
parts 0 sig-person.pkcs1 person.der >"$d/person-no-chain"
for c in org director sim expired enc-only rogue weak revoked; do
  parts 0 "sig-$c.pkcs1" "$c.der" issuing-ca.der >"$d/$c"
done

d=seeds/cms; rm -rf "$d"; mkdir -p "$d"
cp "$fx/cms-org.der" "$fx/cms-person-noattr.der" "$d/"

d=seeds/ocsp_response; rm -rf "$d"; mkdir -p "$d"
cp "$fx/ocsp-resp-person.der" "$fx/ocsp-resp-revoked.der" "$d/"

d=seeds/crl; rm -rf "$d"; mkdir -p "$d"
cp "$fx/issuing-ca.crl" "$d/"

d=seeds/signature_request; rm -rf "$d"; mkdir -p "$d"
digest=$(b64 data.sha256)
printf '{"provider":"vnpt-smartca","signer":"001099012345","purpose":"register","digest":"%s"}' \
  "$digest" >"$d/digest"
printf '{"provider":"mobile-id","signer":"+84 912 345 678","purpose":"sign","data":"%s","display_text":"Ký hợp đồng số 12","document_name":"hop-dong.pdf","timeout_s":120,"reference":"order-42","format":"cms"}' \
  "$(b64 data.txt)" >"$d/everything"
printf '{"provider":"x","signer":"0101234567-001","purpose":"login","digest":"%s","timeout_s":30,"format":"pkcs1"}' \
  "$digest" >"$d/branch"

d=seeds/verification_request; rm -rf "$d"; mkdir -p "$d"
printf '{"digest":"%s","signature":"%s","certificate":"%s","chain":["%s"],"format":"pkcs1","signer":"001099012345"}' \
  "$digest" "$(b64 sig-person.pkcs1)" "$(b64 person.der)" "$(b64 issuing-ca.der)" >"$d/pkcs1"
printf '{"content":"%s","signature":"%s","certificate":"%s","chain":["%s"],"format":"pss"}' \
  "$(b64 data.txt)" "$(b64 sig-person.pss)" "$(b64 person.der)" "$(b64 issuing-ca.pem)" >"$d/pss-pem-chain"
printf '{"challenge_id":"c1","signature":"%s","chain":["%s"],"format":"cms","signer":"0100686209-199"}' \
  "$(b64 cms-org.der)" "$(b64 issuing-ca.der)" >"$d/cms-challenge"
printf '{"content":"%s","signature":"%s","certificate":"%s","format":"cms"}' \
  "$(b64 data.txt)" "$(b64 cms-person-noattr.der)" "$(b64 issuing-ca.der)" >"$d/cms-content"
