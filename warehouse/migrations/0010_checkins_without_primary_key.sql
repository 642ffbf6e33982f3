-- staging.checkins without its primary key: checking the key made each million-row delivery cost 4.6 s against a
-- warehouse of 10 million visits (the index grows with every delivery and must fit in memory); replacing a
-- delivery's visits by key within its time span (warehouse.frames.replace_by_key) costs 0.6 s. The key stays what it
-- was: facility, time, visitor pseudonym and offer identify a visit, and a delivery never holds a key twice (the
-- check-in suite quarantines repeats).
CREATE TABLE staging.checkins_unkeyed (
    facility_id         VARCHAR NOT NULL,
    visited_at          TIMESTAMPTZ NOT NULL,
    visit_date          DATE NOT NULL,      -- calendar date in Europe/Berlin
    offer               VARCHAR NOT NULL,
    visitor_pseudonym   VARCHAR NOT NULL,
    age_band            VARCHAR NOT NULL,
    age_from            INTEGER NOT NULL,
    age_to              INTEGER,            -- exclusive; NULL = open oldest band
    home_district       VARCHAR,
    party_size          INTEGER,
    duration_minutes    INTEGER,
    source_file         VARCHAR NOT NULL,
    source_row          BIGINT NOT NULL,
    sha256              VARCHAR NOT NULL,
    loaded_run_id       VARCHAR NOT NULL
);
INSERT INTO staging.checkins_unkeyed SELECT * FROM staging.checkins ORDER BY visited_at;
DROP TABLE staging.checkins;
ALTER TABLE staging.checkins_unkeyed RENAME TO checkins;
