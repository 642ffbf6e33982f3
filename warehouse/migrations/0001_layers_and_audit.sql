-- Layers of the warehouse, in the order data flows through them:
--   raw      every delivered record as it arrived (text), keyed by file content hash and row
--   staging  typed, validated, current state of each source, with history of revisions
--   marts    indicators, rebuilt by every run from staging
--   audit    runs, load manifest, quarantine, validation results
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS marts;
CREATE SCHEMA IF NOT EXISTS audit;

CREATE TABLE audit.runs (
    run_id              VARCHAR PRIMARY KEY,
    flow_run_id         VARCHAR,          -- Prefect flow run, where the run had one
    started_at          TIMESTAMPTZ NOT NULL,
    finished_at         TIMESTAMPTZ,
    status              VARCHAR NOT NULL, -- running | published
    summary             JSON
);

-- One row per file the pipeline looked at in a run, loaded or not.
CREATE TABLE audit.load_manifest (
    run_id              VARCHAR NOT NULL,
    source_name         VARCHAR NOT NULL,
    source_format       VARCHAR NOT NULL,
    file_name           VARCHAR NOT NULL,
    file_path           VARCHAR NOT NULL,
    sha256              VARCHAR NOT NULL,
    size_bytes          BIGINT NOT NULL,
    status              VARCHAR NOT NULL, -- loaded | unchanged | superseded | duplicate | quarantined
    rows_read           BIGINT,
    rows_loaded         BIGINT,
    rows_quarantined    BIGINT,
    message             VARCHAR,
    recorded_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Rows (or whole files, row_number NULL) refused by a blocking rule. `record` holds the row as delivered.
CREATE TABLE audit.quarantine (
    run_id              VARCHAR NOT NULL,
    source_name         VARCHAR NOT NULL,
    file_name           VARCHAR NOT NULL,
    sha256              VARCHAR NOT NULL,
    row_number          BIGINT,
    rule                VARCHAR NOT NULL,
    column_name         VARCHAR,
    reason              VARCHAR NOT NULL,
    record              JSON,
    quarantined_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Every expectation evaluated on every batch, blocking or not.
CREATE TABLE audit.validation_results (
    run_id              VARCHAR NOT NULL,
    file_name           VARCHAR NOT NULL,
    sha256              VARCHAR NOT NULL,
    suite               VARCHAR NOT NULL,
    expectation         VARCHAR NOT NULL,
    column_name         VARCHAR,
    rule                VARCHAR NOT NULL,
    blocking            BOOLEAN NOT NULL,
    success             BOOLEAN NOT NULL,
    element_count       BIGINT,
    unexpected_count    BIGINT,
    details             JSON,
    validated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
