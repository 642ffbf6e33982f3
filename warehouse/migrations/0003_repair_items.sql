-- Open Repair Data: every delivered record as it arrived, one row per delivery file and record.
CREATE TABLE raw.open_repair_records (
    sha256                          VARCHAR NOT NULL,
    source_file                     VARCHAR NOT NULL,
    source_row                      BIGINT NOT NULL,
    delivery                        VARCHAR NOT NULL,
    id                              VARCHAR,
    data_provider                   VARCHAR,
    country                         VARCHAR,
    partner_product_category        VARCHAR,
    product_category                VARCHAR,
    product_category_id             VARCHAR,
    brand                           VARCHAR,
    year_of_manufacture             VARCHAR,
    product_age                     VARCHAR,
    repair_status                   VARCHAR,
    repair_barrier_if_end_of_life   VARCHAR,
    group_identifier                VARCHAR,
    event_date                      VARCHAR,
    problem                         VARCHAR,
    PRIMARY KEY (sha256, source_row)
);

-- Deliveries applied per data provider. Each delivery is a full snapshot of that provider's records.
CREATE TABLE audit.open_repair_deliveries (
    data_provider       VARCHAR NOT NULL,
    delivery            VARCHAR NOT NULL,   -- YYYY-MM, from the file name
    sha256              VARCHAR NOT NULL,
    file_name           VARCHAR NOT NULL,
    run_id              VARCHAR NOT NULL,
    applied_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (data_provider, delivery)
);

-- Current state of every repair item ever delivered. A record missing from a later full delivery of its
-- provider is marked withdrawn (not deleted); one that reappears is current again.
CREATE TABLE staging.repair_items (
    id                              VARCHAR PRIMARY KEY,
    data_provider                   VARCHAR NOT NULL,
    country                         VARCHAR,
    partner_product_category        VARCHAR,
    product_category                VARCHAR,
    product_category_id             INTEGER,
    brand                           VARCHAR,
    year_of_manufacture             VARCHAR,
    product_age                     VARCHAR,
    repair_status                   VARCHAR NOT NULL,
    repair_barrier_if_end_of_life   VARCHAR,
    group_identifier                VARCHAR NOT NULL,
    event_date                      DATE NOT NULL,
    problem                         VARCHAR,
    status                          VARCHAR NOT NULL,  -- current | withdrawn
    first_delivery                  VARCHAR NOT NULL,
    last_delivery                   VARCHAR NOT NULL,  -- latest delivery that contained the record
    withdrawn_in_delivery           VARCHAR,
    source_file                     VARCHAR NOT NULL,
    source_row                      BIGINT NOT NULL
);
