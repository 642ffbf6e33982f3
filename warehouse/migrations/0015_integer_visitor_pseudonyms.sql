-- Visitor pseudonyms: from the first 72 bits of the HMAC-SHA256 in base64 (12 characters) to its first 64 bits as
-- a BIGINT (why, and how likely two visitors share one: transforms/pseudonymise.py). The stored pseudonyms are
-- converted, not recomputed (raw references are never stored): the first 16 of their 18 hex digits are exactly
-- those 64 bits, read as a signed big-endian integer (two's complement: shift by 2⁶³, wrap at 2⁶⁴, shift back),
-- so the visitors of earlier deliveries still match those of new ones.
CREATE TEMP MACRO pseudonym_bits(base64_text) AS (
    (('0x' || left(hex(from_base64(base64_text)), 16))::UBIGINT::HUGEINT + 9223372036854775808)
        % 18446744073709551616 - 9223372036854775808
)::BIGINT;

ALTER TABLE staging.checkins ALTER visitor_pseudonym TYPE BIGINT USING pseudonym_bits(visitor_pseudonym);

-- the quarantined rows' records, so that they still match the loaded rows of the same visitor
UPDATE audit.quarantine
SET record = json_merge_patch(record, json_object(
        'visitor_pseudonym', pseudonym_bits(record ->> 'visitor_pseudonym')))
WHERE length(record ->> 'visitor_pseudonym') = 12;

DROP MACRO pseudonym_bits;
