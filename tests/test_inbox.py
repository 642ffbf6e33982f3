"""The inbox: a file still being written is never picked up; each settled file is announced once; consumed files
leave the inbox only after their run."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

from conftest import write_config
from flows.config import is_settled, load_config
from sources.inbox import settle
from sources.inbox_watcher import InboxWatcher


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_part_files_and_files_still_changing_are_not_settled(tmp_path):
    growing = tmp_path / "checkins.csv"
    growing.write_text("timestamp,facility_id\n")
    assert not is_settled(growing, stable_seconds=2)  # modified just now: may still grow
    _age(growing, 5)
    assert is_settled(growing, stable_seconds=2)
    part = tmp_path / "checkins.csv.part"
    part.write_text("x")
    _age(part, 60)
    assert not is_settled(part, stable_seconds=2)


def test_watcher_announces_each_settled_inbox_file_once(tmp_path):
    config = load_config(write_config(tmp_path, {"inbox": ("checkin_log", "var/inbox/checkins/*")}))
    inbox_source = replace(config.sources[0], consume=True)
    config = replace(config, sources=(inbox_source,), stable_seconds=2)
    inbox = config.paths.inbox / "checkins"
    inbox.mkdir(parents=True)
    announced: list[Path] = []
    watcher = InboxWatcher(config, emit=announced.append)

    done = inbox / "a.csv"
    done.write_text("complete\n")
    writing = inbox / "b.csv.part"
    writing.write_text("half")
    stray = config.paths.inbox / "unknown.txt"
    stray.write_text("?")
    watcher.scan()
    assert watcher.announce_settled() == []  # a.csv was written a moment ago
    _age(done, 5)
    _age(writing, 5)
    _age(stray, 5)
    watcher.scan()
    assert watcher.announce_settled() == [done]
    watcher.scan()
    assert watcher.announce_settled() == []  # unchanged: not announced again
    os.replace(writing, inbox / "b.csv")  # the delivery is complete: renamed from .part
    _age(inbox / "b.csv", 5)
    watcher.scan()
    assert watcher.announce_settled() == [inbox / "b.csv"]
    assert announced == [done, inbox / "b.csv"]


def test_settled_files_move_to_processed_and_refused_ones_leave_the_inbox(tmp_path):
    loaded = tmp_path / "inbox" / "a.csv"
    refused = tmp_path / "inbox" / "b.csv"
    loaded.parent.mkdir()
    loaded.write_text("a")
    refused.write_text("b")
    target = settle(loaded, "loaded", tmp_path / "processed")
    assert target.parent == tmp_path / "processed" and target.read_text() == "a" and not loaded.exists()
    assert settle(refused, "quarantined", tmp_path / "processed") is None and not refused.exists()
    assert settle(loaded, "loaded", tmp_path / "processed") is None  # gone already: nothing to do
