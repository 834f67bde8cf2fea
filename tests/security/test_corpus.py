"""The bad-config corpus (tests/corpus/): every malformed stack file and package spec gives
exactly its expected message (`NAME.expected` beside `NAME.yaml`/`NAME.yml`), each line naming
the file and the key, and never a traceback. A sample goes through the real `pulumi preview`
to show the engine prints the same message, with nothing else from Python."""

from __future__ import annotations

import shutil

import pytest

from sim.engine import LocalProject

from . import figures
from .corpus import CORPUS, cases, error_of

CASES = cases()
ENGINE_SAMPLE = ["hosts-not-json", "secrets-not-mapping", "app-mount-comma", "many-problems", "registries-no-password"]


def test_the_corpus_has_at_least_fifty_cases():
    assert len(CASES) >= 50
    assert all(path.with_suffix(".expected").exists() for _kind, path in CASES), "every case states its message"


@pytest.mark.parametrize("kind, path", CASES, ids=[f"{k}:{p.stem}" for k, p in CASES])
def test_each_malformed_config_gives_exactly_its_message(kind, path):
    expected = path.with_suffix(".expected").read_text().rstrip("\n")
    got = error_of(kind, path)
    assert got == expected
    assert "Traceback" not in got
    prefix = "stacks/" if kind == "stack" else "packages/"
    assert all(line.startswith(prefix) for line in got.splitlines()), "every line names its file"
    figures.add("corpus.caught")


@pytest.mark.engine
def test_pulumi_preview_shows_the_same_messages_and_no_traceback(tmp_path):
    project = LocalProject.create(tmp_path / "project")
    for name in ENGINE_SAMPLE:
        path = CORPUS / "stacks" / f"{name}.yaml"
        project.pulumi("stack", "init", name, check=True)
        shutil.copy(path, project.stack_file(name))
        if name == "secrets-not-mapping":  # as a user would: a secret where a mapping belongs
            project.set_secret(name, "homefleet:secrets", "hunter2-not-a-mapping")
        run = project.pulumi("preview", stack=name)
        out = run.stdout + run.stderr
        assert not run.ok
        assert "Traceback" not in out and 'File "' not in out, out
        assert "hunter2" not in out, "a secret value echoed in an error"
        for line in path.with_suffix(".expected").read_text().splitlines():
            assert line in out, f"{name}: missing {line!r} in\n{out}"
