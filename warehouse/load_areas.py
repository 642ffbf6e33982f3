"""Refreshing staging.areas (names and validity per AGS, with parent codes) from staging.population."""

from __future__ import annotations

import duckdb

from transforms.areas import area_validity
from warehouse.frames import insert_frame


def refresh_areas(con: duckdb.DuckDBPyConnection) -> int:
    """Rebuild staging.areas from every name and reference date in staging.population; returns its row count.
    The table is derived data, so rebuilding it whole is what makes a second run change nothing."""
    observations = con.sql(
        "SELECT DISTINCT area_code, area_name, area_level, reference_date FROM staging.population"
    ).pl()
    areas = area_validity(observations)
    con.execute("BEGIN")
    try:
        con.execute("DELETE FROM staging.areas")
        insert_frame(con, "staging.areas", areas)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return areas.height
