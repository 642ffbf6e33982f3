-- Answers of the GENESIS web services, as landed by sources/genesis/fetch.py: one row per answer received.
-- The answer itself stays unchanged in the landing area (body_path); its sidecar JSON holds the same metadata.
-- request_params never contain credentials: the services take them in request headers.
CREATE TABLE raw.genesis_responses (
    source_name         VARCHAR NOT NULL,
    body_sha256         VARCHAR NOT NULL,   -- the answer as received (a ZIP for ffcsv)
    table_sha256        VARCHAR NOT NULL,   -- the table file taken out of it, the one the ingest reads
    service             VARCHAR NOT NULL,   -- regionalstatistik | destatis | landesdatenbank_nrw …
    url                 VARCHAR NOT NULL,
    table_code          VARCHAR NOT NULL,
    request_params      JSON NOT NULL,
    http_status         INTEGER NOT NULL,
    content_type        VARCHAR,
    job_id              VARCHAR,            -- set when the table came through the service's job mode
    body_path           VARCHAR NOT NULL,
    table_path          VARCHAR NOT NULL,
    retrieved_at        TIMESTAMPTZ NOT NULL,
    run_id              VARCHAR NOT NULL,
    PRIMARY KEY (source_name, body_sha256)
);

-- Areas (AGS) with their names and the period each name was seen valid, derived from staging.population by
-- warehouse/load_areas.py. Municipal mergers retire codes: such a code keeps its rows with valid_to set.
-- Parent codes follow the AGS: Gemeinde (8 digits) → Kreis (5) → Regierungsbezirk (3) → Land (2).
CREATE TABLE staging.areas (
    area_code           VARCHAR NOT NULL,
    area_name           VARCHAR NOT NULL,
    area_level          VARCHAR NOT NULL,   -- germany | land | regierungsbezirk | kreis | gemeinde | other
    kreis_code          VARCHAR,
    regbez_code         VARCHAR,
    land_code           VARCHAR,
    valid_from          DATE NOT NULL,      -- first reference date the code was seen with this name
    valid_to            DATE,               -- last reference date with this name, when a later one shows another name or none; NULL = current
    PRIMARY KEY (area_code, valid_from)
);
