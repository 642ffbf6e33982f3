-- Population by sex and age group per area and reference date, from GENESIS exports (long form).
-- age_to is exclusive ("x bis unter y"); NULL for the open oldest group and for the total row.
-- value is NULL exactly when flag holds an official special value (-, ., x, ..., /).
CREATE TABLE staging.population (
    table_code          VARCHAR NOT NULL,
    area_code           VARCHAR NOT NULL,   -- AGS
    area_name           VARCHAR,
    area_level          VARCHAR NOT NULL,   -- germany | land | regierungsbezirk | kreis | gemeinde | other
    reference_date      DATE NOT NULL,
    sex                 VARCHAR NOT NULL,   -- total | male | female
    age_label           VARCHAR NOT NULL,
    age_from            INTEGER NOT NULL,
    age_to              INTEGER,
    is_total            BOOLEAN NOT NULL,
    value               BIGINT,
    flag                VARCHAR,
    population_basis    VARCHAR,            -- e.g. 'Zensus 2011', as the publisher states it
    source_file         VARCHAR NOT NULL,
    source_row          BIGINT NOT NULL,
    sha256              VARCHAR NOT NULL,
    loaded_run_id       VARCHAR NOT NULL,
    PRIMARY KEY (table_code, area_code, reference_date, sex, age_label)
);

-- Values that a later delivery revised: the old row, and the run and file that replaced it.
CREATE TABLE staging.population_history AS
SELECT *, NULL::VARCHAR AS superseded_by_run_id, NULL::VARCHAR AS superseded_by_file, NULL::TIMESTAMPTZ AS superseded_at
FROM staging.population WITH NO DATA;
