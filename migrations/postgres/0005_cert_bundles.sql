-- A signer's certificate with the chain its provider handed over, stored once under the
-- SHA-256 of its JSON. An unfinished session's `work` names it by that digest instead of
-- carrying its ~4 KB, which every status change wrote to TOAST again and every push's claim
-- read back, and many sessions share one signer's bundle.
CREATE TABLE cert_bundles (
    digest     TEXT PRIMARY KEY,            -- lowercase hex SHA-256 of `bundle`
    bundle     TEXT NOT NULL,               -- {"certificate": base64 DER, "chain": [...]}
    created_at BIGINT NOT NULL              -- unix ms
);
