"""Runs a suite with Great Expectations on one delivered batch and says which rows must be quarantined.

GX reads pandas, so the Polars batch is handed over as an Arrow-backed pandas frame; its positional index is
the row position in the batch, which maps back to the source row. Every run also updates the GX Data Docs.
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


@cache
def _context(root: str):
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="file", project_root_dir=root)
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _checkpoint(context, suite_name: str, expectations: list):
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction

    source = context.data_sources.add_or_update_pandas("delivered_batches")
    asset = next((a for a in source.assets if a.name == suite_name), None) or source.add_dataframe_asset(suite_name)
    batch = next(iter(asset.batch_definitions), None) or asset.add_batch_definition_whole_dataframe("whole_batch")
    suite = gx.ExpectationSuite(name=suite_name, expectations=expectations)
    suite = context.suites.add_or_update(suite)
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite_name, data=batch, suite=suite)
    )
    return context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=suite_name,
            validation_definitions=[definition],
            actions=[UpdateDataDocsAction(name="update_data_docs")],
            result_format={"result_format": "COMPLETE", "include_unexpected_rows": False},
        )
    )


def docs_index(root: Path) -> Path:
    return root / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"


def validate_batch(frame: pl.DataFrame, suite_name: str, expectations: list, root: Path, run_name: str) -> ValidationOutcome:
    import pandas as pd
    from great_expectations.core.run_identifier import RunIdentifier

    context = _context(str(root))
    checkpoint = _checkpoint(context, suite_name, expectations)
    batch = frame.to_arrow().to_pandas(types_mapper=pd.ArrowDtype)
    result = checkpoint.run(batch_parameters={"dataframe": batch}, run_id=RunIdentifier(run_name=run_name))

    failed: dict[int, list[tuple[str, str]]] = {}
    rows = []
    for validation in result.run_results.values():
        for r in validation.results:
            config = r.expectation_config
            meta = config.meta or {}
            column = config.kwargs.get("column") or ",".join(config.kwargs.get("column_list", []))
            if r.exception_info and r.exception_info.get("raised_exception"):
                raise ValidationError(f"{suite_name}: {config.type} on {column!r} could not run: {r.exception_info.get('exception_message')}")
            unexpected = r.result.get("unexpected_index_list") or []
            if meta.get("blocking") and not r.success:
                for index in unexpected:
                    position = index if isinstance(index, int) else index.get("index")
                    failed.setdefault(int(position), []).append((meta["rule"], column))
            rows.append(
                {
                    "suite": suite_name,
                    "expectation": config.type,
                    "column_name": column,
                    "rule": meta.get("rule", config.type),
                    "blocking": bool(meta.get("blocking")),
                    "success": bool(r.success),
                    "element_count": r.result.get("element_count"),
                    "unexpected_count": r.result.get("unexpected_count"),
                    "details": json.dumps({"partial_unexpected_list": [str(v) for v in (r.result.get("partial_unexpected_list") or [])[:20]]}),
                }
            )
    schema = {"suite": pl.String, "expectation": pl.String, "column_name": pl.String, "rule": pl.String,
              "blocking": pl.Boolean, "success": pl.Boolean, "element_count": pl.Int64,
              "unexpected_count": pl.Int64, "details": pl.String}
    return ValidationOutcome(failed_rows=failed, results=pl.DataFrame(rows, schema=schema))
