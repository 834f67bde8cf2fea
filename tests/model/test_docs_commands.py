"""Commands in the docs run as written (issue 19.10): the project's Python is the venv's."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_docs_run_project_modules_with_the_venv_python():
    bare = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for match in re.finditer(r"(\S*)python3? -m (sim|homefleet)\b", line):
                if not match.group(1).endswith(".venv/bin/"):
                    bare.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not bare, "write .venv/bin/python -m ...:\n" + "\n".join(bare)
