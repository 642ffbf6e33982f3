-- Official population projections by Land, variant, sex and single year of age (GENESIS 12421 tables), as
-- delivered: the ratio method (transforms/population_projection.py) applies them to the observed Kreise when the
-- marts are built. value is NULL exactly when flag holds an official special value.
CREATE TABLE staging.population_projection (
    table_code          VARCHAR NOT NULL,   -- e.g. 12421-0004
    area_code           VARCHAR NOT NULL,   -- Land (2 digits)
    area_name           VARCHAR,
    variant_code        VARCHAR NOT NULL,   -- BEV-VARIANTE-02
    variant             VARCHAR NOT NULL,   -- the assumptions, e.g. G2L2W2
    variant_label       VARCHAR,
    sex                 VARCHAR NOT NULL,
    age_label           VARCHAR NOT NULL,
    age_from            INTEGER NOT NULL,
    age_to              INTEGER,            -- exclusive; NULL = open oldest age or the total
    is_total            BOOLEAN NOT NULL,
    reference_date      DATE NOT NULL,
    value               BIGINT,             -- persons (the published cell × its unit, e.g. 1000)
    flag                VARCHAR,
    source_file         VARCHAR NOT NULL,
    source_row          BIGINT NOT NULL,
    sha256              VARCHAR NOT NULL,
    loaded_run_id       VARCHAR NOT NULL,
    PRIMARY KEY (table_code, area_code, variant_code, sex, age_label, reference_date)
);
