"""Several host commands in one SSH exec: `sh -c` over argv lists quoted in the one place.

Section markers let the caller split the combined stdout back into each command's output.
"""

from typing import Sequence

from ..transport.quoting import to_command_line

SECTION = "@@homefleet:section:{}@@"


def q(argv: Sequence[str]) -> str:
    return to_command_line(argv)


def section(name: str) -> str:
    return q(["echo", SECTION.format(name)])


def sh(lines: Sequence[str]) -> list:
    return ["sh", "-c", "\n".join(lines)]


def split_sections(stdout: str) -> dict:
    """{section name: its text}; text before the first marker is under ''."""
    sections = {"": []}
    current = ""
    for line in stdout.split("\n"):
        if line.startswith("@@homefleet:section:") and line.endswith("@@"):
            current = line[len("@@homefleet:section:"):-2]
            sections[current] = []
            continue
        sections[current].append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()}


def on_exit(argv: Sequence[str]) -> str:
    """`trap '<argv>' EXIT`: trap takes its command as one word, so quote the line again."""
    return f"trap {q([q(argv)])} EXIT"
