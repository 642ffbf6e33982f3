"""The warehouse: migrations, loading deliveries, and publishing without blocking analysts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from conftest import GENESIS_2018, ORDS_202303, ORDS_202309, ROOT, SAMPLE
from transforms.pseudonymise import KEY_VARIABLE, PseudonymKeyError, pseudonym_key_from_env, pseudonymise

CHECKINS_JAN = SAMPLE / "usage" / "checkins_2024-01.csv"
from warehouse.ingest import IngestContext, ingest_file
from warehouse.migrate import MigrationError, migrate
from warehouse.publish import connect_build, publish_build, start_build


@pytest.fixture
def dirs(tmp_path: Path) -> IngestContext:
    return IngestContext(landing=tmp_path / "landing", quarantine=tmp_path / "quarantine",
                         validation=tmp_path / "validation", facility_registry=ROOT / "config" / "facilities.toml")


def _state(con) -> list[tuple]:
    return con.sql("SELECT * FROM staging.repair_items ORDER BY id").fetchall()


def test_migrations_apply_once_and_refuse_edits(con, tmp_path, monkeypatch):
    assert migrate(con) == []
    versions = con.sql("SELECT version FROM main.schema_migrations ORDER BY 1").fetchall()
    assert [v for (v,) in versions] == [int(f.name[:4]) for f in sorted(Path("warehouse/migrations").glob("*.sql"))]
    schemas = {s for (s,) in con.sql("SELECT schema_name FROM information_schema.schemata").fetchall()}
    assert {"raw", "staging", "marts", "audit"} <= schemas
    edited = tmp_path / "migrations"
    edited.mkdir()
    for f in Path("warehouse/migrations").glob("*.sql"):
        (edited / f.name).write_text(f.read_text() + ("\n-- edited" if f.name.startswith("0002") else ""))
    monkeypatch.setattr("warehouse.migrate.MIGRATIONS", edited)
    with pytest.raises(MigrationError, match="0002_population.sql was changed"):
        migrate(con)


def migrations_before(folder: Path, first_left_out: str) -> Path:
    """A copy of the migrations that come before `first_left_out`: what an older release applied."""
    folder.mkdir()
    for f in sorted(Path("warehouse/migrations").glob("*.sql")):
        if f.name < first_left_out:
            (folder / f.name).write_text(f.read_text())
    return folder


def test_a_warehouse_from_before_migration_0010_keeps_its_rows_and_loses_only_the_key_indexes(tmp_path, dirs, monkeypatch):
    with connect_build(tmp_path / "old.duckdb") as old:
        monkeypatch.setattr("warehouse.migrate.MIGRATIONS", migrations_before(tmp_path / "older", "0010"))
        migrate(old)
        ingest_file(old, "r1", "checkins", "checkin_log", CHECKINS_JAN, dirs)
        ingest_file(old, "r1", "population", "genesis_csv", GENESIS_2018, dirs)
        query = "SELECT * FROM staging.{} ORDER BY ALL"
        before = {t: old.sql(query.format(t)).fetchall() for t in ("checkins", "population")}
        # only these two: the pseudonyms that today's code stored in the old text column are no longer of that time
        monkeypatch.setattr("warehouse.migrate.MIGRATIONS", migrations_before(tmp_path / "then", "0012"))
        assert migrate(old) == ["0010_checkins_without_primary_key.sql", "0011_population_without_primary_key.sql"]
        assert {t: old.sql(query.format(t)).fetchall() for t in before} == before
        keys = old.sql("""SELECT table_name FROM duckdb_constraints()
                          WHERE schema_name = 'staging' AND constraint_type = 'PRIMARY KEY'""").fetchall()
        assert not {"checkins", "population"} & {t for (t,) in keys}


# how the code before each of these migrations stored a visitor's pseudonym
STORED_BEFORE = {
    "0012_short_visitor_pseudonyms.sql": lambda key, ref: hmac.new(key, ref.encode(), hashlib.sha256).hexdigest(),
    "0015_integer_visitor_pseudonyms.sql":
        lambda key, ref: base64.b64encode(hmac.digest(key, ref.encode(), "sha256")[:9]).decode(),
}


@pytest.mark.parametrize("first_new", list(STORED_BEFORE))
def test_stored_pseudonyms_of_earlier_formats_become_those_of_new_deliveries(first_new, tmp_path, dirs, monkeypatch):
    """Pseudonyms stored before 0012 (the whole HMAC in hex) or before 0015 (its first 72 bits in base64) become the
    integers that parsing gives now, in the check-ins and in the records of quarantined rows; the visitors of old and
    new deliveries still match."""
    refs = ["card-1", "Jürgen-7", "card-3"]
    rows = [f"2024-01-08T1{n}:00:00+01:00,{facility},Treff,{ref},30-49,05962,1,60\n"
            for n, (ref, facility) in enumerate(zip(refs, ["mk-seniorentreff-luedenscheid", "nowhere", "nowhere"]))]
    delivery = tmp_path / "checkins_2024-01-08.csv"
    delivery.write_text(CHECKINS_JAN.read_text(encoding="utf-8").splitlines(keepends=True)[0] + "".join(rows),
                        encoding="utf-8")
    key = pseudonym_key_from_env()
    now = dict(zip(refs, pseudonymise(pl.Series(refs), key)))
    stored = {ref: STORED_BEFORE[first_new](key, ref) for ref in refs}
    with connect_build(tmp_path / "old.duckdb") as old:
        monkeypatch.setattr("warehouse.migrate.MIGRATIONS", migrations_before(tmp_path / "older", first_new))
        migrate(old)
        assert ingest_file(old, "r1", "checkins", "checkin_log", delivery, dirs).rows_quarantined == 2
        for ref in refs:  # as the code before `first_new` stored them: text, also in the quarantined records
            old.execute("UPDATE staging.checkins SET visitor_pseudonym = ? WHERE visitor_pseudonym = ?",
                        [stored[ref], str(now[ref])])
            old.execute("UPDATE audit.quarantine SET record = replace(record, ?, ?)",
                        [f'"visitor_pseudonym": {now[ref]}', f'"visitor_pseudonym": "{stored[ref]}"'])
        assert old.sql("SELECT visitor_pseudonym FROM staging.checkins").fetchall() == [(stored["card-1"],)]
        assert old.sql("SELECT count(*) FROM audit.quarantine WHERE record ->> 'visitor_pseudonym' IN ?",
                       params=[[stored["Jürgen-7"], stored["card-3"]]]).fetchall() == [(2,)]
        monkeypatch.undo()
        applied = migrate(old)
        assert applied[0] == first_new and "0015_integer_visitor_pseudonyms.sql" in applied
        assert old.sql("SELECT visitor_pseudonym FROM staging.checkins").fetchall() == [(now["card-1"],)]
        # a JSON number, as in the records that today's code writes
        quarantined = old.sql("""SELECT DISTINCT json_type(record -> 'visitor_pseudonym') IN ('BIGINT', 'UBIGINT'),
                                        (record ->> 'visitor_pseudonym')::BIGINT, record ->> 'facility_id'
                                 FROM audit.quarantine ORDER BY 2""").fetchall()
        assert quarantined == sorted([(True, now["Jürgen-7"], "nowhere"), (True, now["card-3"], "nowhere")],
                                     key=lambda r: r[1])


def test_successive_deliveries_leave_the_current_records_and_mark_withdrawn(con, dirs):
    first = ingest_file(con, "r1", "repairs", "open_repair", ORDS_202303, dirs)
    second = ingest_file(con, "r1", "repairs", "open_repair", ORDS_202309, dirs)
    assert (first.status, first.rows_loaded, second.status, second.rows_loaded) == ("loaded", 12_399, "loaded", 15_100)
    counts = dict(con.sql("SELECT status, count(*) FROM staging.repair_items GROUP BY ALL").fetchall())
    assert counts == {"current": 15_100, "withdrawn": 32}
    withdrawn = con.sql("SELECT DISTINCT withdrawn_in_delivery, last_delivery FROM staging.repair_items WHERE status = 'withdrawn'").fetchall()
    assert withdrawn == [("2023-09", "2023-03")]
    current_ids = {i for (i,) in con.sql("SELECT id FROM staging.repair_items WHERE status = 'current'").fetchall()}
    assert current_ids == set(pl.read_csv(ORDS_202309, infer_schema=False)["id"])
    assert con.execute("SELECT count(*) FROM raw.open_repair_records").fetchall()[0] == (12_399 + 15_100,)


def test_loading_either_delivery_again_changes_nothing(con, dirs):
    ingest_file(con, "r1", "repairs", "open_repair", ORDS_202303, dirs)
    ingest_file(con, "r1", "repairs", "open_repair", ORDS_202309, dirs)
    before = _state(con)
    again = [ingest_file(con, "r2", "repairs", "open_repair", f, dirs) for f in (ORDS_202303, ORDS_202309)]
    assert [o.status for o in again] == ["unchanged", "unchanged"]
    assert _state(con) == before


def test_an_older_delivery_after_a_newer_one_is_kept_but_not_applied(con, dirs):
    ingest_file(con, "r1", "repairs", "open_repair", ORDS_202309, dirs)
    before = _state(con)
    late = ingest_file(con, "r2", "repairs", "open_repair", ORDS_202303, dirs)
    assert late.status == "superseded" and "older than the applied 2023-09" in late.message
    assert _state(con) == before
    assert con.execute("SELECT count(*) FROM raw.open_repair_records WHERE delivery = '2023-03'").fetchall()[0] == (12_399,)


def test_a_quarantined_record_keeps_its_previous_version(con, dirs, tmp_path):
    ingest_file(con, "r1", "repairs", "open_repair", ORDS_202303, dirs)
    text = ORDS_202309.read_text(encoding="utf-8").replace(",Fixed,,5073,2012-06-20,", ",Kaputt,,5073,2012-06-20,", 1)
    broken = tmp_path / "anstiftung_202309.csv"
    broken.write_text(text, encoding="utf-8")
    outcome = ingest_file(con, "r2", "repairs", "open_repair", broken, dirs)
    assert (outcome.status, outcome.rows_quarantined, outcome.rows_loaded) == ("loaded", 1, 15_099)
    rule, row, reason = con.execute("SELECT rule, row_number, reason FROM audit.quarantine").fetchall()[0]
    assert (rule, row) == ("repair status is an ORDS status", 1) and "Kaputt" in reason
    kept = con.execute("SELECT status, repair_status, last_delivery FROM staging.repair_items WHERE id = 'anstiftung_2746'").fetchall()[0]
    assert kept == ("current", "Fixed", "2023-03")


def test_bad_file_is_quarantined_and_changes_nothing(con, dirs, tmp_path):
    ingest_file(con, "r1", "repairs", "open_repair", ORDS_202309, dirs)
    before = _state(con)
    truncated = tmp_path / "anstiftung_202310.csv"
    truncated.write_bytes(ORDS_202309.read_bytes()[:100_000])
    outcome = ingest_file(con, "r2", "repairs", "open_repair", truncated, dirs)
    assert outcome.status == "quarantined" and "truncated" in outcome.message
    assert _state(con) == before
    kept = list(dirs.quarantine.glob("*anstiftung_202310.csv"))
    assert len(kept) == 1 and kept[0].read_bytes() == truncated.read_bytes()
    assert "truncated" in kept[0].with_name(kept[0].name + ".reason.txt").read_text()
    manifest = con.sql("SELECT status, file_name FROM audit.load_manifest WHERE run_id = 'r2'").fetchall()
    assert manifest == [("quarantined", "anstiftung_202310.csv")]


def test_same_content_under_another_name_is_a_duplicate_delivery(con, dirs, tmp_path):
    ingest_file(con, "r1", "repairs", "open_repair", ORDS_202309, dirs)
    copy = tmp_path / "anstiftung_202309_resent.csv"
    copy.write_bytes(ORDS_202309.read_bytes())
    outcome = ingest_file(con, "r2", "repairs", "open_repair", copy, dirs)
    assert outcome.status == "duplicate" and "same content as anstiftung_202309.csv" in outcome.message
    assert list(dirs.quarantine.glob("*anstiftung_202309_resent.csv"))


def test_revised_population_values_replace_and_are_kept_in_history(con, dirs, tmp_path):
    ingest_file(con, "r1", "population", "genesis_csv", GENESIS_2018, dirs)
    revised = tmp_path / "12411-02-03-5-B_2018_kreise_revised.csv"
    revised.write_bytes(GENESIS_2018.read_bytes().replace(b"01001;Flensburg, Kreisfreie Stadt;2629;", b"01001;Flensburg, Kreisfreie Stadt;2630;"))
    outcome = ingest_file(con, "r2", "population", "genesis_csv", revised, dirs)
    assert outcome.status == "loaded" and outcome.message.startswith("1 revised value")
    now = con.execute("SELECT value FROM staging.population WHERE area_code = '01001' AND sex = 'total' AND age_label = 'unter 3 Jahre'").fetchall()[0]
    old = con.sql("SELECT value, loaded_run_id, superseded_by_run_id FROM staging.population_history").fetchall()
    assert now == (2630,) and old == [(2629, "r1", "r2")]


def test_published_file_swaps_under_an_open_reader(tmp_path):
    published = tmp_path / "demand.duckdb"
    with connect_build(published) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS v")
    reader = duckdb.connect(str(published), read_only=True)
    build = start_build(published, "r2")
    with connect_build(build) as con:
        con.execute("UPDATE t SET v = 2")
    publish_build(build, published)
    assert reader.execute("SELECT v FROM t").fetchall()[0] == (1,)  # the open reader keeps its snapshot
    # a new analyst session (another process: DuckDB shares one instance per file within a process)
    assert _read_in_new_process(published, "SELECT v FROM t") == "2"
    reader.close()


def _read_in_new_process(path: Path, query: str) -> str:
    code = f"import duckdb; print(duckdb.connect({str(path)!r}, read_only=True).sql({query!r}).fetchall()[0][0])"
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()


def test_overlapping_checkin_deliveries_never_duplicate_a_visit(con, dirs, tmp_path):
    first = ingest_file(con, "r1", "checkins", "checkin_log", CHECKINS_JAN, dirs)
    assert first.status == "loaded" and first.rows_quarantined == 0
    lines = CHECKINS_JAN.read_text(encoding="utf-8").splitlines(keepends=True)
    overlap = tmp_path / "checkins_2024-01_resent_part.csv"
    overlap.write_text("".join(lines[:501]), encoding="utf-8")  # header and the first 500 visits again
    again = ingest_file(con, "r2", "checkins", "checkin_log", overlap, dirs)
    assert (again.status, again.rows_loaded, again.message) == ("loaded", 500, "0 new, 500 already known (replaced)")
    assert con.execute("SELECT count(*) FROM staging.checkins").fetchall()[0] == (first.rows_loaded,)


def test_a_corrected_visit_replaces_the_stored_one_and_new_visits_are_added(con, dirs, tmp_path):
    ingest_file(con, "r1", "checkins", "checkin_log", CHECKINS_JAN, dirs)
    delivered = pl.read_csv(CHECKINS_JAN, infer_schema=False)
    corrected = delivered.head(3).with_columns(duration_minutes=pl.lit("7"))
    later = delivered.head(2).with_columns(pl.col("timestamp").str.replace("^2024-01", "2024-02"))
    resent = tmp_path / "checkins_2024-01_corrections.csv"
    pl.concat([corrected, later]).write_csv(resent)

    outcome = ingest_file(con, "r2", "checkins", "checkin_log", resent, dirs)

    assert outcome.message == "2 new, 3 already known (replaced)"
    counts = con.execute("""SELECT count(*), count(*) FILTER (WHERE source_file = 'checkins_2024-01_corrections.csv'
                                                              AND duration_minutes = 7)
                            FROM staging.checkins""").fetchall()[0]
    assert counts == (delivered.height + 2, 3)
    keys = con.execute("""SELECT count(*) FROM (SELECT facility_id, visited_at, visitor_pseudonym, offer
                          FROM staging.checkins GROUP BY ALL HAVING count(*) > 1)""").fetchall()[0][0]
    assert keys == 0


def test_raw_visitor_references_never_reach_the_warehouse(con, dirs):
    ingest_file(con, "r1", "checkins", "checkin_log", CHECKINS_JAN, dirs)
    raw_refs = set(pl.read_csv(CHECKINS_JAN, infer_schema=False)["visitor_ref"])
    stored = con.execute("SELECT DISTINCT visitor_pseudonym FROM staging.checkins").fetchall()
    assert not raw_refs & {p for (p,) in stored}
    everything = " ".join(str(r) for r in con.execute(
        "SELECT * FROM staging.checkins LIMIT 2000").fetchall()) + " ".join(str(r) for r in con.execute(
        "SELECT * FROM audit.quarantine").fetchall())
    assert not any(ref in everything for ref in list(raw_refs)[:200])


def test_checkins_without_a_key_stop_and_ingest_nothing(con, dirs, monkeypatch):
    monkeypatch.delenv(KEY_VARIABLE)
    with pytest.raises(PseudonymKeyError, match="not set"):
        ingest_file(con, "r1", "checkins", "checkin_log", CHECKINS_JAN, dirs)
    assert con.execute("SELECT count(*) FROM staging.checkins").fetchall()[0] == (0,)
    assert con.execute("SELECT count(*) FROM audit.load_manifest").fetchall()[0] == (0,)


def test_a_projection_table_is_ingested_like_any_delivery(con, dirs):
    from warehouse.load_projection import land_projection

    table = SAMPLE / "projection" / "12421-0004_14kBV_NRW_Insgesamt_excerpt.csv"
    outcome = ingest_file(con, "r1", "projection", "genesis_projection", table, dirs)
    assert (outcome.status, outcome.rows_loaded, outcome.rows_quarantined) == ("loaded", 12_852, 0)
    land = land_projection(con, "12421-0004")
    nrw_2030 = land.filter(pl.col("is_total"), pl.col("variant") == "G2L2W2",
                           pl.col("reference_date") == pl.date(2030, 12, 31))
    assert nrw_2030["value"].to_list() == [17_767_000]  # as published, in persons
    assert ingest_file(con, "r2", "projection", "genesis_projection", table, dirs).status == "unchanged"


def test_a_projection_file_without_table_code_in_its_name_is_refused(con, dirs, tmp_path):
    renamed = tmp_path / "vorausberechnung.csv"
    renamed.write_bytes((SAMPLE / "projection" / "12421-0004_14kBV_NRW_Insgesamt_excerpt.csv").read_bytes())
    outcome = ingest_file(con, "r1", "projection", "genesis_projection", renamed, dirs)
    assert outcome.status == "quarantined" and "no GENESIS table code" in outcome.message


def test_every_loaded_row_names_its_delivery_and_run(con, dirs):
    """sha256 and loaded_run_id reach DuckDB as values of the insert, not as columns of the frame: each row still
    carries the ones of the file and run that loaded it."""
    ingest_file(con, "run-checkins", "checkins", "checkin_log", CHECKINS_JAN, dirs)
    ingest_file(con, "run-population", "population", "genesis_csv", GENESIS_2018, dirs)
    for table, path, run in (("staging.checkins", CHECKINS_JAN, "run-checkins"),
                             ("staging.population", GENESIS_2018, "run-population")):
        lineage = con.sql(f"SELECT DISTINCT sha256, loaded_run_id, source_file FROM {table}").fetchall()
        assert lineage == [(hashlib.sha256(path.read_bytes()).hexdigest(), run, path.name)]


def test_a_big_delivery_is_validated_and_loaded_in_pieces_with_the_result_of_one_batch(tmp_path, dirs):
    """A check-in log bigger than a piece (here ~100 kB of 0.9 MB): the same rows loaded and the same rows
    quarantined, for the same reasons, as when the file is one batch; a repeat of a row of an earlier piece is
    found too. Each piece is a validation of its own, named by its first row."""
    lines = CHECKINS_JAN.read_bytes().splitlines(keepends=True)
    late_repeat = lines[3]  # row 3 again, at the end: another piece
    bad = b"2024-01-31T10:00:00+01:00,mk-seniorentreff-luedenscheid,Gymnastik,card-1,99+,05962,1,60\n"
    delivery = tmp_path / "checkins_2024-01-big.csv"
    delivery.write_bytes(b"".join(lines) + bad + late_repeat)
    rows = len(lines) + 1

    def ingested(name: str, ctx: IngestContext) -> tuple:
        with connect_build(tmp_path / f"{name}.duckdb") as con:
            migrate(con)
            outcome = ingest_file(con, "r1", "checkins", "checkin_log", delivery, ctx)
            loaded = con.sql("SELECT * FROM staging.checkins ORDER BY source_row").fetchall()
            quarantined = con.sql("SELECT row_number, rule, reason FROM audit.quarantine ORDER BY ALL").fetchall()
            batches = con.sql("""SELECT first_row, max(element_count) FROM audit.validation_results
                                 GROUP BY first_row ORDER BY first_row""").fetchall()
        return (outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined, outcome.message), loaded, quarantined, batches

    one_batch = ingested("whole", dirs)
    pieces = ingested("pieces", IngestContext(dirs.landing, dirs.quarantine, tmp_path / "validation-pieces",
                                              dirs.facility_registry, piece_bytes=100_000))
    assert pieces[:3] == one_batch[:3]
    assert one_batch[0][:3] == (rows, rows - 2, 2)  # the unknown age band, the repeat of row 3
    assert (rows, "not a repeat of an earlier row (same facility, time, offer and visitor); the earlier row is loaded",
            ) in [(row, rule) for row, rule, _ in pieces[2]]
    assert one_batch[3] == [(1, rows)]
    first_rows = [first for first, _ in pieces[3]]
    assert len(first_rows) > 5 and first_rows[0] == 1 and sum(count for _, count in pieces[3]) == rows


def test_a_big_delivery_with_a_bad_line_in_its_last_piece_leaves_nothing_but_its_refusal(tmp_path, con, dirs):
    """The whole file is parsed before any piece is loaded: a ragged last line refuses all of it."""
    delivery = tmp_path / "checkins_2024-01-big.csv"
    delivery.write_bytes(CHECKINS_JAN.read_bytes() + b"2024-01-31T10:00:00+01:00,mk-seniorentreff-luedenscheid\n")
    ctx = IngestContext(dirs.landing, dirs.quarantine, dirs.validation, dirs.facility_registry, piece_bytes=100_000)
    outcome = ingest_file(con, "r1", "checkins", "checkin_log", delivery, ctx)
    assert (outcome.status, outcome.rows_loaded) == ("quarantined", 0)
    assert con.sql("SELECT count(*) FROM staging.checkins").fetchall() == [(0,)]
    assert con.sql("SELECT count(*) FROM audit.validation_results").fetchall() == [(0,)]
    assert con.sql("SELECT row_number, reason FROM audit.quarantine").fetchall() == [
        (9305, "expected 8 comma-separated fields, found 2 field(s) (line 9306)")]
