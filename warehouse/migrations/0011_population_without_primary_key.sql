-- staging.population without its primary key, for the reason of migration 0010: a GENESIS year file of every
-- Gemeinde (583,200 cells) spent most of its load checking the key index of all earlier years. The key stays what it
-- was (table, area, reference date, sex, age group); warehouse.frames.replace_by_key keeps it unique.
CREATE TABLE staging.population_unkeyed (
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
    loaded_run_id       VARCHAR NOT NULL
);
INSERT INTO staging.population_unkeyed SELECT * FROM staging.population ORDER BY reference_date, table_code, area_code;
DROP TABLE staging.population;
ALTER TABLE staging.population_unkeyed RENAME TO population;
