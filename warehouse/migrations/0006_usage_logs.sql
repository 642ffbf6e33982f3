-- Usage logs of the facilities. Visitor references arrive raw and are replaced at parse time by an HMAC-SHA256
-- pseudonym (key from the environment): no column here ever holds a raw reference.

-- One row per visit. The key makes overlapping deliveries idempotent: the same visit delivered twice is one row.
CREATE TABLE staging.checkins (
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
    loaded_run_id       VARCHAR NOT NULL,
    PRIMARY KEY (facility_id, visited_at, visitor_pseudonym, offer)
);

-- One row per room booking by a provider (Träger); a re-delivered booking id replaces the earlier version.
CREATE TABLE staging.room_bookings (
    booking_id          VARCHAR PRIMARY KEY,
    facility_id         VARCHAR NOT NULL,
    room_id             VARCHAR NOT NULL,
    provider            VARCHAR NOT NULL,
    starts_at           TIMESTAMPTZ NOT NULL,
    ends_at             TIMESTAMPTZ NOT NULL,
    attendees           INTEGER,
    purpose             VARCHAR,
    source_file         VARCHAR NOT NULL,
    source_row          BIGINT NOT NULL,
    sha256              VARCHAR NOT NULL,
    loaded_run_id       VARCHAR NOT NULL
);

-- The facility registry as of the last run (config/facilities.toml), for joins by analysts.
CREATE TABLE staging.facilities (
    facility_id         VARCHAR PRIMARY KEY,
    name                VARCHAR NOT NULL,
    provider            VARCHAR NOT NULL,
    type                VARCHAR NOT NULL,
    address             VARCHAR,
    lat                 DOUBLE,
    lon                 DOUBLE,
    area_code           VARCHAR NOT NULL,
    capacity            INTEGER NOT NULL
);

-- Usage indicators per facility, breakdown (total | offer | age_band | home_district), category and period.
-- distinct_visitors: persons behind the value; exports suppress values resting on fewer than min_count.
CREATE TABLE marts.usage_visitors (
    facility_id         VARCHAR NOT NULL,
    breakdown           VARCHAR NOT NULL,
    category            VARCHAR NOT NULL,
    period              VARCHAR NOT NULL,   -- week | month
    period_start        DATE NOT NULL,
    indicator_id        VARCHAR NOT NULL,
    value               DOUBLE,
    unit                VARCHAR NOT NULL,
    flag                VARCHAR,
    numerator           DOUBLE,
    denominator         DOUBLE,
    distinct_visitors   BIGINT
);

-- Room use per facility, room, provider and period: booked hours and idle hours within opening hours.
-- Bookings are by providers, not persons: no visitor count, nothing to suppress.
CREATE TABLE marts.usage_rooms (
    facility_id         VARCHAR NOT NULL,
    room_id             VARCHAR NOT NULL,
    provider            VARCHAR NOT NULL,
    period              VARCHAR NOT NULL,
    period_start        DATE NOT NULL,
    indicator_id        VARCHAR NOT NULL,
    value               DOUBLE,
    unit                VARCHAR NOT NULL,
    flag                VARCHAR,
    numerator           DOUBLE,
    denominator         DOUBLE
);
