-- A signer's certificate with the chain its provider handed over, stored once under a
-- SHA-256 over its DER certificates (each preceded by its length, the signer's first). An
-- unfinished session's `work` names it by that digest instead of carrying its ~4 KB: every
-- status change and claim rewrites the whole row, so the bundle was written three times per
-- session, and many sessions share one signer's bundle.
CREATE TABLE cert_bundles (
    digest     TEXT PRIMARY KEY NOT NULL,   -- lowercase hex; see engine/bundles.rs
    bundle     TEXT NOT NULL,               -- {"certificate": base64 DER, "chain": [...]}
    created_at INTEGER NOT NULL             -- unix ms
) STRICT;
