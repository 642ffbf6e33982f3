-- Marts are rebuilt by every run (see warehouse/marts.py); declared here so that their shape is versioned.
CREATE TABLE marts.demography_indicators (
    indicator_id        VARCHAR NOT NULL,
    convention          VARCHAR,            -- age-bound convention; NULL where the indicator has none
    table_code          VARCHAR NOT NULL,
    area_code           VARCHAR NOT NULL,
    area_name           VARCHAR,
    area_level          VARCHAR,
    reference_date      DATE NOT NULL,
    year                INTEGER NOT NULL,
    sex                 VARCHAR NOT NULL,
    value               DOUBLE,
    unit                VARCHAR NOT NULL,
    flag                VARCHAR,            -- why value is missing; NULL when it is a number
    numerator           BIGINT,
    denominator         BIGINT,
    population_basis    VARCHAR
);

CREATE TABLE marts.repair_cafe_monthly (
    indicator_id        VARCHAR NOT NULL,
    group_identifier    VARCHAR NOT NULL,
    month               DATE NOT NULL,
    value               DOUBLE,
    unit                VARCHAR NOT NULL,
    flag                VARCHAR,
    numerator           BIGINT,
    denominator         BIGINT,
    item_count          BIGINT NOT NULL     -- records behind the value; exports suppress small counts
);

CREATE TABLE marts.indicator_catalogue (
    id                  VARCHAR PRIMARY KEY,
    name_de             VARCHAR,
    name_en             VARCHAR,
    definition          VARCHAR,
    formula             VARCHAR,
    unit                VARCHAR,
    age_bounds          VARCHAR,
    inputs              VARCHAR,
    population_basis    VARCHAR,
    direction           VARCHAR,
    subject             VARCHAR,
    source              VARCHAR
);

-- For analysts: the latest value of every area indicator in the default reading (sex total).
CREATE VIEW marts.latest_area_indicators AS
SELECT indicator_id, convention, area_code, area_name, area_level, reference_date, value, unit, flag, population_basis
FROM marts.demography_indicators
WHERE sex = 'total'
QUALIFY reference_date = max(reference_date) OVER (PARTITION BY indicator_id, convention, area_code);
