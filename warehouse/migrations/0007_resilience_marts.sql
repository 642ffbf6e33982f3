-- Marts of the resilience, room-sharing and fiscal indicators (warehouse/marts_resilience.py), and the finance
-- inputs they rest on. Marts are rebuilt by every run; declared here so that their shape is versioned.
--
-- Shared columns: indicator_id (catalogue id), value (NULL when it would not be a trustworthy number), unit (from
-- the catalogue), flag (why value is NULL), numerator / denominator (what the value was computed from).
-- distinct_visitors: the number of different visitors (pseudonyms) behind a value of a mart derived from usage
-- logs; exports suppress values resting on fewer than [exports] min_count.
--
-- convention: exports key the wide form of an area mart by indicator and convention, so a mart that has another
-- reading of the same indicator per area and period (a facility type, a projection variant, a fiscal scenario)
-- carries it there as well; NULL where the indicator has only one reading.

-- The age-structure indicators (share_65_plus, mean_age, median_age, population_change_5y/10y) join
-- marts.demography_indicators; mean_age's numerator (Σ age × persons) is not a whole number.
ALTER TABLE marts.demography_indicators ALTER COLUMN numerator TYPE DOUBLE;
ALTER TABLE marts.demography_indicators ALTER COLUMN denominator TYPE DOUBLE;

-- Finance inputs per municipality and budget year (FINANCE contract, transforms/fiscal_stress.py); a revised
-- delivery of an area and year replaces the earlier one.
CREATE TABLE staging.finance (
    area_code           VARCHAR NOT NULL,   -- AGS, 5 or 8 digits
    area_name           VARCHAR,
    year                INTEGER NOT NULL,   -- budget year
    population          BIGINT,             -- inhabitants on 31.12.
    population_basis    VARCHAR,            -- census the population is projected from (Zensus 2011 | Zensus 2022)
    tax_revenue         DOUBLE,             -- euros, as booked for the year
    total_revenue       DOUBLE,
    social_spending     DOUBLE,
    total_spending      DOUBLE,             -- including interest_paid
    debt_long_term      DOUBLE,             -- Investitionskredite and other long-term debt
    liquiditaetskredite DOUBLE,             -- Kassenkredite
    interest_paid       DOUBLE,
    reserves            DOUBLE,             -- NULL = not reported
    input_issue         VARCHAR,            -- why a value of the row is missing or was refused
    source_file         VARCHAR NOT NULL,
    source_row          BIGINT NOT NULL,
    sha256              VARCHAR NOT NULL,
    loaded_run_id       VARCHAR NOT NULL,
    PRIMARY KEY (area_code, year)
);

-- Supply per district and facility type from the registry and the population: supply_ratio, supply_gap
-- (targets in config/resilience.toml) and e2sfca_accessibility. No visitors behind these values.
CREATE TABLE marts.coverage_indicators (
    indicator_id        VARCHAR NOT NULL,
    facility_type       VARCHAR NOT NULL,   -- the facility type whose capacity is counted
    convention          VARCHAR NOT NULL,   -- = facility_type (export key, see above)
    band                VARCHAR NOT NULL,   -- the type's target age band, e.g. '65+', '6-17'
    table_code          VARCHAR,            -- population table; NULL for a district only the registry knows
    area_code           VARCHAR NOT NULL,
    area_name           VARCHAR,
    reference_date      DATE,               -- population date the value uses
    value               DOUBLE,
    unit                VARCHAR NOT NULL,
    flag                VARCHAR,
    numerator           DOUBLE,             -- places (supply); NULL for accessibility
    denominator         DOUBLE              -- persons of the target band (supply ratio, accessibility); places (gap)
);

-- Reach per home district of the visitors: penetration_rate per facility type and month (visitors of that type's
-- facilities in its target band per 1,000 of the band), participation_rate per check-in age band over the base
-- period of config/resilience.toml. area_code NULL: the visitors whose home district is unknown.
CREATE TABLE marts.reach_by_district (
    indicator_id        VARCHAR NOT NULL,
    convention          VARCHAR NOT NULL,   -- facility type (penetration_rate) or check-in age band (participation_rate)
    band                VARCHAR NOT NULL,   -- age band counted
    area_code           VARCHAR,            -- home district
    population_date     DATE,               -- latest population reference date not after period_end
    period_start        DATE NOT NULL,
    period_end          DATE NOT NULL,
    value               DOUBLE,
    unit                VARCHAR NOT NULL,
    flag                VARCHAR,
    numerator           DOUBLE,             -- distinct visitors
    denominator         DOUBLE,             -- persons of the band
    distinct_visitors   BIGINT
);

-- Reach per facility and month: outside_district_share (visitors from another district per 100 with a known one).
CREATE TABLE marts.reach_by_facility (
    indicator_id        VARCHAR NOT NULL,
    facility_id         VARCHAR NOT NULL,
    period_start        DATE NOT NULL,
    period_end          DATE NOT NULL,
    value               DOUBLE,
    unit                VARCHAR NOT NULL,
    flag                VARCHAR,
    numerator           DOUBLE,             -- visitors from another district
    denominator         DOUBLE,             -- visitors with a known home district
    distinct_visitors   BIGINT
);

-- Daily visits per facility and offer against a robust same-weekday baseline (transforms/anomalies.py); not
-- catalogue indicators. value = robust z-score = (visits − baseline_median) / max(1.4826 × baseline_mad, min_scale).
CREATE TABLE marts.demand_anomalies (
    facility_id         VARCHAR NOT NULL,
    offer               VARCHAR NOT NULL,
    visit_date          DATE NOT NULL,      -- local date (Europe/Berlin)
    weekday             TINYINT NOT NULL,   -- 1 = Monday
    visits              BIGINT NOT NULL,
    history_days        INTEGER NOT NULL,   -- same-weekday open days in the baseline window
    baseline_median     DOUBLE,
    baseline_mad        DOUBLE,
    value               DOUBLE,             -- robust z; NULL when not judged (flag)
    unit                VARCHAR NOT NULL,
    flag                VARCHAR,            -- closed_day | insufficient_history
    numerator           DOUBLE,             -- visits − baseline_median
    denominator         DOUBLE,             -- the robust scale
    is_anomaly          BOOLEAN,
    direction           VARCHAR,            -- high | low
    distinct_visitors   BIGINT NOT NULL     -- visitors of the day at the offer
);

-- Weekly visits and their Theil–Sen trend per facility, offer and ISO week (Monday).
CREATE TABLE marts.demand_trends (
    indicator_id        VARCHAR NOT NULL,   -- weekly_visits | visit_trend
    facility_id         VARCHAR NOT NULL,
    offer               VARCHAR NOT NULL,
    week                DATE NOT NULL,      -- the week, or the last week of the trend's window
    value               DOUBLE,
    unit                VARCHAR NOT NULL,
    flag                VARCHAR,
    numerator           DOUBLE,             -- visits (weekly_visits)
    denominator         DOUBLE,             -- weeks with data in the window (visit_trend)
    distinct_visitors   BIGINT              -- visitors of the week, or of the trend's window
);

-- Demand projection per district, year, projection variant and rate scenario: projected_visitors,
-- required_capacity, capacity_gap. Empty unless config/resilience.toml names a population projection file.
CREATE TABLE marts.demand_projection (
    indicator_id        VARCHAR NOT NULL,
    area_code           VARCHAR NOT NULL,   -- home district of the visitors
    year                INTEGER NOT NULL,
    variant             VARCHAR NOT NULL,   -- low | medium | high
    scenario            VARCHAR NOT NULL,   -- participation-rate scenario
    convention          VARCHAR NOT NULL,   -- 'variant/scenario' (export key, see above)
    value               DOUBLE,
    unit                VARCHAR NOT NULL,
    flag                VARCHAR,
    numerator           DOUBLE,
    denominator         DOUBLE,
    distinct_visitors   BIGINT              -- visitors of the base period from the district
);

-- Shared use of rooms (transforms/room_sharing.py): a subject column that is not part of an indicator's subject
-- is NULL. Bookings are by providers; attendee counts are not visitors: nothing to suppress (as marts.usage_rooms).
CREATE TABLE marts.room_sharing (
    indicator_id        VARCHAR NOT NULL,
    area_code           VARCHAR,
    facility_id         VARCHAR,
    room_id             VARCHAR,
    provider            VARCHAR,
    week_start          DATE,               -- Monday of the week (weekly indicators)
    period_start        DATE,               -- the period of period indicators (and of the run)
    period_end          DATE,
    value               DOUBLE,
    unit                VARCHAR NOT NULL,
    flag                VARCHAR,
    numerator           DOUBLE,
    denominator         DOUBLE
);

-- Fiscal indicators per municipality and budget year, from staging.finance.
CREATE TABLE marts.fiscal_indicators (
    indicator_id        VARCHAR NOT NULL,
    area_code           VARCHAR NOT NULL,
    area_name           VARCHAR,
    year                INTEGER NOT NULL,
    value               DOUBLE,
    unit                VARCHAR NOT NULL,
    flag                VARCHAR,
    numerator           DOUBLE,
    denominator         DOUBLE,
    population_basis    VARCHAR             -- census basis; '… + …' where a multi-year mean spans the Zensus break
);

-- Fiscal stress test per municipality and scenario (config/fiscal_scenarios.toml) over the horizon from base_year.
CREATE TABLE marts.fiscal_stress (
    indicator_id        VARCHAR NOT NULL,
    area_code           VARCHAR NOT NULL,
    area_name           VARCHAR,
    scenario            VARCHAR NOT NULL,
    convention          VARCHAR NOT NULL,   -- = scenario (export key, see above)
    base_year           INTEGER NOT NULL,
    year                INTEGER,            -- NULL for the summary rows (years until reserves used, class)
    value               DOUBLE,
    unit                VARCHAR NOT NULL,
    flag                VARCHAR,
    label               VARCHAR,            -- traffic-light colour (stress_class)
    reason              VARCHAR,            -- thresholds that set the colour (stress_class)
    population_basis    VARCHAR
);
