-- Visitor pseudonyms: from the 64 hex characters of the whole HMAC-SHA256 to its first 72 bits in base64 (12
-- characters; why and how likely two visitors share one: transforms/pseudonymise.py). DuckDB keeps strings of up to
-- 12 bytes inside the row, which halves the time of the distinct-visitor counts of the usage marts.
-- The stored pseudonyms are converted, not recomputed (raw references are never stored): their first 18 hex
-- characters are exactly those 72 bits, so the visitors of earlier deliveries still match those of new ones.
UPDATE staging.checkins
SET visitor_pseudonym = to_base64(unhex(left(visitor_pseudonym, 18)))
WHERE length(visitor_pseudonym) = 64;

-- the quarantined rows' records, so that they still match the loaded rows of the same visitor
UPDATE audit.quarantine
SET record = json_merge_patch(record, json_object(
        'visitor_pseudonym', to_base64(unhex(left(record ->> 'visitor_pseudonym', 18)))))
WHERE length(record ->> 'visitor_pseudonym') = 64;
