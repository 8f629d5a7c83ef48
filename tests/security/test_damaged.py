"""One bad file breaks nothing else: a truncated run.json, a garbage line in metrics.jsonl or a corrupt manifest.json
leaves every listing and page answering, the damaged item listed as damaged with its reason, and deletable (over
the API, with ownership, and with the real `deepyard` command). Also: the listings' file caches never show stale
data (a run.json rewritten to the same size and mtime, metrics appended, rewritten or truncated)."""

from __future__ import annotations

import json
import os
import shutil
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from deepyard import db, users
from deepyard.config import Settings
from deepyard.datasets.catalog import MANIFEST, dataset_dir
from deepyard.files import read_json, write_json_atomic
from deepyard.train import runs
from deepyard.train.metricsfile import METRICS, metric_figures
from deepyard.train.runs import RUN_FILE, run_dir
from tests.cli.test_datasets_cli import run as cli
from tests.web.conftest import Server, browser, page, shot  # noqa: F401  (fixtures are found by name)

DAMAGES = ["truncated run.json", "garbage line in metrics.jsonl", "corrupt manifest.json"]
BAD_RUNS = ["20990101-000001-dead", "20990101-000002-dead"]  # one deleted over the API, one with the CLI
BAD_SETS = ["20990101-000001-beef", "20990101-000002-beef"]


def _copy_run(settings: Settings, run_id: str, new_id: str) -> None:
    """A copy of a real run folder under another id, as if trained separately."""
    shutil.copytree(run_dir(settings, run_id), run_dir(settings, new_id))
    info = read_json(run_dir(settings, new_id) / RUN_FILE)
    write_json_atomic(run_dir(settings, new_id) / RUN_FILE, {**info, "id": new_id, "name": f"copy {new_id}"})


def _copy_dataset(settings: Settings, dataset_id: str, new_id: str) -> None:
    shutil.copytree(dataset_dir(settings, dataset_id), dataset_dir(settings, new_id))
    manifest = read_json(dataset_dir(settings, new_id) / MANIFEST)
    write_json_atomic(dataset_dir(settings, new_id) / MANIFEST, {**manifest, "id": new_id, "name": "copy"})


def _damage(settings: Settings, damage: str) -> None:
    for run_id, dataset_id in zip(BAD_RUNS, BAD_SETS, strict=True):
        if damage == "truncated run.json":
            path = run_dir(settings, run_id) / RUN_FILE
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        elif damage == "garbage line in metrics.jsonl":
            path = run_dir(settings, run_id) / METRICS
            lines = path.read_bytes().splitlines(keepends=True)
            path.write_bytes(b"".join([*lines[:2], b"\x00\xffnot {json\n", *lines[2:]]))
        else:
            (dataset_dir(settings, dataset_id) / MANIFEST).write_bytes(b'{"id": "' + dataset_id.encode() + b'", \xff')


def _rows(c: httpx.Client, kind: str) -> dict[str, dict[str, Any]]:
    res = c.get(f"/api/v1/{kind}")
    assert res.status_code == 200, res.text
    return {row["id"]: row for row in res.json()}


def _first_event(c: httpx.Client, url: str, kind: str) -> Any:
    with c.stream("GET", url) as res:
        assert res.status_code == 200
        lines = res.iter_lines()
        for line in lines:
            if line == f"event: {kind}":
                return json.loads(next(lines).removeprefix("data: "))
    raise AssertionError(f"no {kind} event")


@pytest.mark.parametrize("damage", DAMAGES)
def test_one_damaged_file_breaks_nothing_else_and_can_be_deleted(
    damage: str, server: Server, dataset_id: str, run_id: str
) -> None:
    settings = server.settings
    for bad_run, bad_set in zip(BAD_RUNS, BAD_SETS, strict=True):
        _copy_run(settings, run_id, bad_run)
        _copy_dataset(settings, dataset_id, bad_set)
    _damage(settings, damage)
    kind, bad, good = ("datasets", BAD_SETS, dataset_id) if "manifest" in damage else ("runs", BAD_RUNS, run_id)
    with server.client() as c:
        run_rows, set_rows = _rows(c, "runs"), _rows(c, "datasets")
        assert run_rows[run_id]["status"] == "done" and set_rows[dataset_id]["name"] == "bars"  # the others as ever
        assert set(run_rows) == {run_id, *BAD_RUNS} and set(set_rows) == {dataset_id, *BAD_SETS}
        rows = set_rows if kind == "datasets" else run_rows
        for item in bad:
            row = rows[item]
            if "metrics" in damage:  # a usable run whose unreadable line is skipped, and said so
                assert row["status"] == "done" and row["progress"] == 1.0 and row["train_loss"] is not None
                assert "metrics.jsonl" in row["warning"] and "line 3" in row["warning"]
            else:
                file = "manifest.json" if kind == "datasets" else "run.json"
                assert row["status"] == "damaged" and row["reason"].startswith(f"{file} is not valid JSON")
        for page in ["/", "/runs/new", "/datasets/new", f"/datasets/{dataset_id}", f"/runs/{run_id}", "/compare",
                     f"/compare?runs={run_id}", f"/{kind}/{bad[0]}"]:  # fmt: skip
            res = c.get(page, headers={"accept": "text/html"})
            assert res.status_code == 200, (page, res.text[:300])
        home = c.get("/").text
        assert all(item in home for item in bad) and run_id in home and dataset_id in home
        new_run = c.get("/runs/new").text
        assert f'value="{dataset_id}"' in new_run
        if kind == "datasets":  # the New run page offers usable datasets only
            assert not any(item in new_run for item in bad) and "damaged" in c.get(f"/datasets/{bad[0]}").text
        shown = c.get(f"/api/v1/{kind}/{bad[0]}")
        assert shown.status_code == 200 and shown.json()["status"] == ("done" if "metrics" in damage else "damaged")
        if "metrics" in damage:
            metrics = c.get(f"/api/v1/runs/{bad[0]}/metrics").json()
            assert metrics["skipped"] == 1 and len(metrics["points"]) > 0
        elif kind == "runs":
            for path in [f"/api/v1/runs/{bad[0]}/metrics", f"/api/v1/events?run={bad[0]}"]:
                refused = c.get(path)
                assert refused.status_code == 404 and "run.json is not valid JSON" in refused.json()["error"]["message"]
        live = _first_event(c, "/api/v1/events", "runs")
        assert run_id in {r["id"] for r in live}
        _check_cli(settings.home, damage, bad)
        c.cookies.clear()  # a script, not the browser the pages set a CSRF cookie in
        deleted = c.delete(f"/api/v1/{kind}/{bad[0]}")
        assert deleted.status_code == 200 and deleted.json()["deleted"] == bad[0]
        noun = "dataset" if kind == "datasets" else "run"
        removed = cli(settings.home, noun, "delete", bad[1])
        assert removed.returncode == 0 and "Traceback" not in removed.stderr, removed.stderr
        after = _rows(c, kind)
        assert good in after and not set(bad) & set(after)
    folder = dataset_dir if kind == "datasets" else run_dir
    assert not any(folder(settings, item).exists() for item in bad)


def _check_cli(home: Path, damage: str, bad: list[str]) -> None:
    """`deepyard run list` and `deepyard dataset list`, tables and --json: exit 0, no traceback, damage shown."""
    for noun in ("run", "dataset"):
        table, doc = cli(home, noun, "list"), cli(home, noun, "list", "--json")
        assert table.returncode == 0 and doc.returncode == 0, table.stderr + doc.stderr
        assert "Traceback" not in table.stderr + doc.stderr
        listed = {r["id"]: r for r in json.loads(doc.stdout)}
        damaged = {i: r for i, r in listed.items() if r.get("status") == "damaged"}
        mine = (noun == "dataset") == ("manifest" in damage) and "metrics" not in damage
        assert set(damaged) == (set(bad) if mine else set())
        for item in damaged:
            assert item in table.stdout and "damaged" in table.stdout and damaged[item]["reason"] in table.stdout
    shown = cli(home, "dataset" if "manifest" in damage else "run", "show", bad[0], "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == ("done" if "metrics" in damage else "damaged")


def test_the_home_page_shows_damaged_rows_sorts_and_deletes_them(
    server: Server,
    page: Page,  # noqa: F811  (the fixture imported above)
    dataset_id: str,
    run_id: str,
) -> None:
    """In a real browser (no script error: the `page` fixture checks): the reason shown, sorting by every column
    still works, and Delete selected removes the damaged run and dataset."""
    settings = server.settings
    for bad_run, bad_set in zip(BAD_RUNS, BAD_SETS, strict=True):
        _copy_run(settings, run_id, bad_run)
        _copy_dataset(settings, dataset_id, bad_set)
    _damage(settings, "truncated run.json")
    _damage(settings, "corrupt manifest.json")
    page.on("dialog", lambda d: d.accept())
    page.goto(server.url + "/")
    expect(page.locator(f'tr[data-damaged="{BAD_RUNS[0]}"] .damage-reason')).to_contain_text("run.json is not valid")
    expect(page.locator(f'#datasets tr[data-id="{BAD_SETS[0]}"]')).to_contain_text("manifest.json is not valid JSON")
    expect(page.locator(f'tr[data-run="{run_id}"] [data-field="status"]')).to_have_text("done")
    shot(page, "12-home-damaged")
    for table in ("#runs", "#datasets"):
        for th in page.locator(f"{table} th[data-sort]").all():
            th.click()
    page.fill("#filter", "damaged")
    expect(page.locator(f'tr[data-run="{run_id}"]')).to_be_hidden()
    page.fill("#filter", "")
    for table, bad, button in (("runs", BAD_RUNS, "#delete-selected"), ("datasets", BAD_SETS, "#delete-datasets")):
        for item in bad:
            page.check(f'#{table} input.pick[value="{item}"]')
        page.click(button)
        expect(page.locator(f'#{table} input.pick[value="{bad[0]}"]')).to_have_count(0)
    with server.client() as c:
        assert set(_rows(c, "runs")) == {run_id} and set(_rows(c, "datasets")) == {dataset_id}


def _tokens(settings: Settings, owner_kind: str, ref: str) -> tuple[dict[str, str], dict[str, str]]:
    """Bearer headers for ada, who owns `ref`, and for bob."""
    with closing(db.connect(settings)) as conn:
        ada, bob = users.create_user(conn, "ada", "correct horse battery"), users.create_user(conn, "bob", "x" * 12)
        users.set_owner(conn, owner_kind, ref, ada)
        heads = [{"authorization": f"Bearer {users.create_token(conn, u, 'test')}"} for u in (ada, bob)]
    return heads[0], heads[1]


@pytest.mark.parametrize("kind", ["run", "dataset"])
def test_a_damaged_item_is_still_only_its_owners_to_delete(
    kind: str, server: Server, dataset_id: str, run_id: str
) -> None:
    settings = server.settings
    for bad_run, bad_set in zip(BAD_RUNS, BAD_SETS, strict=True):
        _copy_run(settings, run_id, bad_run)
        _copy_dataset(settings, dataset_id, bad_set)
    _damage(settings, "corrupt manifest.json" if kind == "dataset" else "truncated run.json")
    bad = BAD_SETS[0] if kind == "dataset" else BAD_RUNS[0]
    as_ada, as_bob = _tokens(settings, kind, bad)
    with server.client() as c:
        refused = c.delete(f"/api/v1/{kind}s/{bad}", headers=as_bob)
        assert refused.status_code == 403 and "'ada'" in refused.json()["error"]["message"]
        listed = c.get(f"/api/v1/{kind}s", headers=as_bob).json()
        assert {r["id"]: r for r in listed}[bad]["owner"] == "ada"
        assert c.delete(f"/api/v1/{kind}s/{bad}", headers=as_ada).status_code == 200


def test_a_changed_run_json_is_seen_by_the_next_listing(
    server: Server, run_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even rewritten to the same size with its old mtime put back, in place or by an atomic rename."""
    monkeypatch.setattr("deepyard.stored.RACY_NS", 0)  # keep even files written a moment ago
    path = run_dir(server.settings, run_id) / RUN_FILE
    with server.client() as c:
        name = _rows(c, "runs")[run_id]["name"]
        before = path.stat()
        assert c.patch(f"/api/v1/runs/{run_id}", json={"name": "A" * len(name)}).status_code == 200
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert path.stat().st_size == before.st_size and _rows(c, "runs")[run_id]["name"] == "A" * len(name)
        with path.open("r+b") as fp:  # an edit in place: same inode, size and mtime
            data = fp.read()
            fp.seek(0)
            fp.write(data.replace(b'"' + b"A" * len(name) + b'"', b'"' + b"B" * len(name) + b'"'))
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert _rows(c, "runs")[run_id]["name"] == "B" * len(name)
        metrics = run_dir(server.settings, run_id) / METRICS
        last = json.loads(metrics.read_text().splitlines()[-1])
        with metrics.open("a") as fp:
            fp.write(json.dumps({**last, "step": last["step"] + 1, "val_loss": 0.5, "val_top1": 87.5}) + "\n")
        assert _rows(c, "runs")[run_id]["val_top1"] == 87.5


def test_an_unchanged_run_json_is_parsed_once(
    web_settings: Settings, run_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("deepyard.stored.RACY_NS", 0)
    parsed: list[Path] = []
    parse = runs._RUNS._parse
    monkeypatch.setattr(runs._RUNS, "_parse", lambda path: parsed.append(path) or parse(path))
    for _ in range(3):
        assert [r["id"] for r in runs.list_runs(web_settings)] == [run_id]
    assert len(parsed) == 1
    runs.annotate_run(web_settings, run_id, name="renamed")
    assert runs.list_runs(web_settings)[0]["name"] == "renamed" and len(parsed) == 2


def _point(step: int, **extra: float) -> str:
    return json.dumps({"step": step, "epoch": step / 10, "train_loss": 1 / step, "wall": step * 0.5, **extra}) + "\n"


def test_metric_figures_follow_appends_rewrites_and_skip_garbage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("deepyard.stored.RACY_NS", 0)
    path = tmp_path / METRICS
    assert metric_figures(tmp_path).epoch == 0.0  # no file yet
    path.write_text(_point(1) + _point(2) + "garbage\n" + "[1, 2]\n" + _point(3, val_loss=0.9, val_top1=40.0))
    first = metric_figures(tmp_path)
    assert (first.epoch, first.train_loss, first.val_top1) == (0.3, 1 / 3, 40.0)
    assert (first.skipped, first.first_skipped) == (2, 3)
    with path.open("a") as fp:
        fp.write(_point(4) + '{"step": 5, "epo')  # a line still being written is left for the next read
    assert (metric_figures(tmp_path).epoch, len(metric_figures(tmp_path).spark)) == (0.4, 4)
    with path.open("a") as fp:
        fp.write('ch": 0.5, "train_loss": 0.2}\n')
    assert metric_figures(tmp_path).epoch == 0.5 and metric_figures(tmp_path).train_loss == 0.2
    path.write_text(_point(1) + _point(2))  # a resume truncates to its checkpoint: same inode, smaller
    assert metric_figures(tmp_path).epoch == 0.2 and metric_figures(tmp_path).skipped == 0
    with path.open("r+") as fp:  # rewritten in place and grown past the offset read so far
        fp.write(_point(1, wall=99.0) + _point(2) + _point(3) + _point(4) + _point(5) + _point(6))
    assert (metric_figures(tmp_path).epoch, metric_figures(tmp_path).wall) == (0.6, 99.0)
    path.unlink()
    path.write_text(_point(7, val_loss=0.1, val_top1=99.0))  # a new file (another inode)
    last = metric_figures(tmp_path)
    assert (last.epoch, last.best_top1, last.spark) == (0.7, 99.0, (round(1 / 7, 5),))


@pytest.mark.parametrize("damage", [b'{"skipped": [', b"\xff\xfe", b'{"skipped": 3}', None])
def test_a_damaged_build_report_leaves_the_dataset_usable(
    damage: bytes | None,
    server: Server,
    dataset_id: str,
    page: Page,  # noqa: F811
) -> None:
    """report.json truncated, not UTF-8, of the wrong shape or missing: the dataset's page, its report over the API
    and `deepyard dataset show` still answer, saying the report is damaged; the dataset itself is untouched."""
    report = dataset_dir(server.settings, dataset_id) / "report.json"
    report.unlink() if damage is None else report.write_bytes(damage)
    with server.client() as c:
        res = c.get(f"/api/v1/datasets/{dataset_id}/report")
        assert res.status_code == 200, res.text
        assert res.json()["skipped"] == [] and "report.json" in res.json()["damaged"]
        assert c.get(f"/api/v1/datasets/{dataset_id}").json()["name"] == "bars"
    shown = cli(server.settings.home, "dataset", "show", dataset_id)
    assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
    assert "report damaged" in shown.stderr and "bars" in shown.stdout
    page.goto(f"{server.url}/datasets/{dataset_id}")
    expect(page.locator("text=None: every file was used")).to_have_count(0)  # not said when it cannot be known
    expect(page.locator("#report-damaged")).to_contain_text("The build report is damaged (report.json")
    if damage == b'{"skipped": [':
        shot(page, "dataset-report-damaged")
