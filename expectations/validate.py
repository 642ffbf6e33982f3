"""Runs a suite with Great Expectations on one delivered batch and says which rows must be quarantined.

GX reads pandas, so the Polars batch is handed over as a pandas frame (_pandas_batch says in which dtypes). Its
positional index is the row position in the batch, which maps back to the source row.

The Data Docs are rendered once per run for that run's validations (build_docs), not by a checkpoint action per
batch: the action rendered the suite page and the index again for every delivery, a third of the time of
validating a year file of all Gemeinden.

The suite runs with the BASIC result format (counts and up to 20 example values, all that audit.validation_results
keeps); only when a blocking expectation fails are those expectations run again with COMPLETE to list every failing
row. Listing all unexpected values of a warning that fails on a tenth of a million-row batch cost more than the
whole suite, and SUMMARY's extra example indexes and value counts cost 0.65 of 1.5 s for a million check-ins: GX
filters the nulls out of the whole batch, every column, once for each of them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import polars as pl


class ValidationError(RuntimeError):
    """An expectation could not be evaluated: a pipeline defect, not bad input."""


@dataclass(frozen=True)
class ValidationOutcome:
    failed_rows: dict[int, list[tuple[str, str]]]  # row position → [(rule, column)] of blocking failures
    results: pl.DataFrame  # one row per expectation, for audit.validation_results

    @property
    def passed_all_blocking(self) -> bool:
        return not self.failed_rows


COUNTS_AND_EXAMPLES = {"result_format": "BASIC", "partial_unexpected_count": 20}
EVERY_FAILING_ROW = {"result_format": "COMPLETE", "include_unexpected_rows": False}


def _skip_batch_fingerprint() -> None:
    """GX hashes every in-memory pandas batch under 1 GB to fingerprint it (8 of 11 s for a million check-ins).
    A delivery is already identified by its sha256 in audit.load_manifest, so the fingerprint adds nothing."""
    from great_expectations.execution_engine import pandas_execution_engine

    if not hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
        raise ValidationError("great_expectations no longer has pandas_execution_engine.HASH_THRESHOLD: review "
                              "_skip_batch_fingerprint in expectations/validate.py after the upgrade")
    pandas_execution_engine.HASH_THRESHOLD = 0


BATCHES = "delivered_batches"  # the GX data source of every suite's in-memory batches


@cache
def _context(root: str):
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    _skip_batch_fingerprint()
    context = gx.get_context(mode="file", project_root_dir=root)
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    # once per process: updating the data source again would drop the assets that cached checkpoints use, and the
    # one read from the context's file has no link to its context (GX 1.x: MissingDataContextError when validating)
    context.data_sources.add_or_update_pandas(BATCHES)
    return context


def _batch_definition(context, suite_name: str):
    source = context.data_sources.get(BATCHES)
    asset = next((a for a in source.assets if a.name == suite_name), None) or source.add_dataframe_asset(suite_name)
    return next(iter(asset.batch_definitions), None) or asset.add_batch_definition_whole_dataframe("whole_batch")


_checkpoints: dict[tuple[str, str], tuple[str, object]] = {}


def _checkpoint(context, root: str, suite_name: str, expectations: list):
    """The suite's checkpoint, saved again only when the suite changed: saving suite, validation definition and
    checkpoint cost 0.13 s per batch."""
    import great_expectations as gx

    content = json.dumps([e.configuration.to_json_dict() for e in expectations], sort_keys=True, default=str)
    cached = _checkpoints.get((root, suite_name))
    if cached and cached[0] == content:
        return cached[1]
    suite = context.suites.add_or_update(gx.ExpectationSuite(name=suite_name, expectations=expectations))
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite_name, data=_batch_definition(context, suite_name), suite=suite)
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(name=suite_name, validation_definitions=[definition], actions=[], result_format=COUNTS_AND_EXAMPLES)
    )
    _checkpoints[(root, suite_name)] = (content, checkpoint)
    return checkpoint


def _checks_by_column(expectations: list) -> dict[str, set[str]]:
    """Column → the types of the expectations that read it."""
    checks: dict[str, set[str]] = {}
    for expectation in expectations:
        kwargs = expectation.configuration.kwargs
        columns = [v for k, v in kwargs.items() if k in ("column", "column_A", "column_B")]
        for column in columns + list(kwargs.get("column_list") or []):
            checks.setdefault(column, set()).add(expectation.configuration.type)
    return checks


FEW_DISTINCT = 1_000  # text with at most this many distinct values among the first SAMPLE_ROWS goes in as categories
SAMPLE_ROWS = 10_000
PRESENCE = "expect_column_values_to_not_be_null"
PATTERN = "expect_column_values_to_match_regex"


def _pandas_batch(frame: pl.DataFrame, expectations: list):
    """Only the columns the suite checks, in the dtypes GX handles fastest.

    GX copies the whole batch for every row filter it applies (dropping the nulls of the column an expectation
    checks), and casts a column to `str` before matching it against a pattern. So text goes in as pandas' own
    Arrow-backed `str` (the cast is then free) and text with few distinct values as categories (a row filter copies
    their codes, not their text) unless a pattern checks it: the cast of a category to `str` builds the text again
    value by value (3.5 of 10 s of validation in a 10M ingest). A column that is only checked for being present
    goes in as one byte per row that is null where the value is (the pseudonym, the parsed time): the check and its
    failing rows are the same, and every row filter copies a byte instead of a text or a time. Numbers go in as
    NumPy (GX compares Arrow-backed numbers one value at a time), times Arrow-backed.
    """
    import pandas as pd
    import pyarrow as pa

    checks = _checks_by_column(expectations)
    checked = frame.select(sorted(checks))
    presence_only = [name for name, types in checks.items() if types == {PRESENCE}]
    integers = [name for name, dtype in checked.schema.items() if dtype.is_integer() and name not in presence_only]
    few = [name for name, dtype in checked.schema.items()
           if dtype == pl.String and PATTERN not in checks[name] and name not in presence_only
           and checked[name].head(SAMPLE_ROWS).n_unique() <= FEW_DISTINCT]
    table = checked.with_columns(
        pl.col(integers).cast(pl.Int64),
        pl.col(few).cast(pl.Categorical),
        *(pl.when(pl.col(name).is_not_null()).then(pl.lit(1, pl.Int8)).alias(name) for name in presence_only),
    ).to_arrow()
    text = pd.StringDtype("pyarrow", na_value=float("nan"))  # what `astype(str)` gives in pandas 3

    def gx_friendly(dtype: pa.DataType):
        if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_dictionary(dtype):
            return None  # NumPy numbers, pandas categories
        if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
            return text
        return pd.ArrowDtype(dtype)

    return table.to_pandas(types_mapper=gx_friendly)


def _column(config) -> str:
    return config.kwargs.get("column") or ",".join(config.kwargs.get("column_list", []))


def _unsaved(config):
    expectation = config.to_domain_obj()
    expectation.id = None  # a suite refuses expectations that belong to another (the saved) suite
    return expectation


def _failing_rows(context, suite_name: str, failing: list, batch) -> dict[int, list[tuple[str, str]]]:
    """Every failing row of the blocking expectations that failed, from a second, COMPLETE run of just those."""
    import great_expectations as gx

    again = gx.ExpectationSuite(name=f"{suite_name} failing rows", expectations=[_unsaved(c) for c in failing])
    gx_batch = _batch_definition(context, suite_name).get_batch(batch_parameters={"dataframe": batch})
    result = gx_batch.validate(again, result_format=EVERY_FAILING_ROW)
    failed: dict[int, list[tuple[str, str]]] = {}
    for r in result.results:
        _raise_if_errored(r, suite_name)
        for index in r.result.get("unexpected_index_list") or []:
            position = index if isinstance(index, int) else index.get("index")
            failed.setdefault(int(position), []).append((r.expectation_config.meta["rule"], _column(r.expectation_config)))
    return failed


def _raise_if_errored(result, suite_name: str) -> None:
    if result.exception_info and result.exception_info.get("raised_exception"):
        config = result.expectation_config
        raise ValidationError(f"{suite_name}: {config.type} on {_column(config)!r} could not run: "
                              f"{result.exception_info.get('exception_message')}")


def docs_index(root: Path) -> Path:
    return root / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"


def run_name(run_id: str, file_name: str, rows: tuple[int, int] | None = None) -> str:
    """How a batch's validation is named in the Data Docs: the pipeline run, the delivered file and, for a file
    validated in pieces (transforms/log_pieces.py), the piece's first and last row."""
    return f"{run_id} {file_name}" + (f" rows {rows[0]}–{rows[1]}" if rows else "")


def prepare(root: Path) -> None:
    """Import Great Expectations and open the context of `root` now rather than at the first batch: ~2–4 s once per
    process, which a run spends while its first files are still being parsed. Not from two threads at once: GX's
    package cannot be imported concurrently (ImportError from a partially initialised module)."""
    _context(str(root))


def build_docs(root: Path, run_id: str) -> Path:
    """The Data Docs pages of every batch validated in pipeline run `run_id` (see run_name), their suites' pages
    and the index; older runs' pages stay as they are."""
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    context = _context(str(root))
    results = [key for key in context.validation_results_store.list_keys()
               if key.run_id.run_name.startswith(run_name(run_id, ""))]
    if results:  # no identifiers at all would make GX rebuild every page of every earlier run
        suites = {key.expectation_suite_identifier.name for key in results}
        context.build_data_docs(resource_identifiers=[*results, *(ExpectationSuiteIdentifier(name=n) for n in suites)])
    return docs_index(root)


def validate_batch(frame: pl.DataFrame, suite_name: str, expectations: list, root: Path, run_name: str) -> ValidationOutcome:
    from great_expectations.core.run_identifier import RunIdentifier

    context = _context(str(root))
    checkpoint = _checkpoint(context, str(root), suite_name, expectations)
    batch = _pandas_batch(frame, expectations)
    result = checkpoint.run(batch_parameters={"dataframe": batch}, run_id=RunIdentifier(run_name=run_name))

    failing_blocking = []
    rows = []
    for validation in result.run_results.values():
        for r in validation.results:
            _raise_if_errored(r, suite_name)
            config = r.expectation_config
            meta = config.meta or {}
            if meta.get("blocking") and not r.success:
                failing_blocking.append(config)
            rows.append(
                {
                    "suite": suite_name,
                    "expectation": config.type,
                    "column_name": _column(config),
                    "rule": meta.get("rule", config.type),
                    "blocking": bool(meta.get("blocking")),
                    "success": bool(r.success),
                    "element_count": r.result.get("element_count"),
                    "unexpected_count": r.result.get("unexpected_count"),
                    "details": json.dumps({"partial_unexpected_list": [str(v) for v in (r.result.get("partial_unexpected_list") or [])[:20]]}),
                }
            )
    failed = _failing_rows(context, suite_name, failing_blocking, batch) if failing_blocking else {}
    schema = {"suite": pl.String, "expectation": pl.String, "column_name": pl.String, "rule": pl.String,
              "blocking": pl.Boolean, "success": pl.Boolean, "element_count": pl.Int64,
              "unexpected_count": pl.Int64, "details": pl.String}
    return ValidationOutcome(failed_rows=failed, results=pl.DataFrame(rows, schema=schema))
