-- The cells of the visitor indicators of each slice of time (warehouse/usage_cells.py), kept from one run to the
-- next: a run recomputes only the slices whose check-ins changed since (a delivery touches a month or two of a
-- history of years). Intermediate results, not for analysts: marts.usage_visitors is built from them.
CREATE SCHEMA IF NOT EXISTS cache;

CREATE TABLE cache.usage_cell_slices (
    period      VARCHAR NOT NULL,  -- week | month
    first_day   DATE NOT NULL,
    end_day     DATE NOT NULL,     -- the day after the slice
    fingerprint VARCHAR NOT NULL,  -- of the query, its constants and the slice's check-ins when the cells were computed
    PRIMARY KEY (period, first_day, end_day)
);

CREATE TABLE cache.usage_cells (
    slice_first_day   DATE NOT NULL,
    facility_id       VARCHAR NOT NULL,
    period            VARCHAR NOT NULL,
    period_start      DATE NOT NULL,
    breakdown         VARCHAR NOT NULL,
    category          VARCHAR NOT NULL,
    visits            BIGINT NOT NULL,
    distinct_visitors BIGINT NOT NULL,
    repeat_visitors   BIGINT NOT NULL,
    person_hours      DOUBLE
);
