-- Frames of the resilience marts computed from one piece of the check-ins (a month, a facility), kept from one
-- run to the next with the fingerprint of what they rest on (warehouse/piece_cache.py): a run computes only the
-- pieces its deliveries changed. Intermediate results, not for analysts.
CREATE TABLE cache.pieces (
    piece       VARCHAR NOT NULL,  -- e.g. "month 2024-01-01", "facility ha-stadtteilhaus-wehringhausen"
    part        VARCHAR NOT NULL,  -- which of the piece's frames
    fingerprint VARCHAR NOT NULL,
    frame       BLOB NOT NULL,     -- Arrow IPC
    PRIMARY KEY (piece, part)
);
