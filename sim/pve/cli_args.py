"""Command-line parsing the way PVE's CLIHandler does it (Getopt::Long + JSON schema).

* `--opt value`, `-opt value`, `--opt=value`; unique abbreviations are accepted.
* Booleans take an optional value (`--force`, `--force 0`, `--onboot yes`); any other option
  needs one, which may start with `-`.
* A scalar given twice keeps the last value; `*-list` formats join repeats with `,`.
* Non-option words are the positional parameters, in order, wherever they appear;
  `--` ends option parsing.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field

from . import paths
from .errors import OptionError, ParamError, PveError
from .schema import Prop, check_prop, parse_boolean

_OPTION_RE = re.compile(r"--?([A-Za-z][\w\-]*)(?:=(.*))?", re.S)


@dataclass
class Command:
    tool: str
    name: str
    args: list[str]
    props: dict[str, Prop]
    optional_args: set[str] = field(default_factory=set)

    @property
    def usage(self) -> str:
        words = [self.tool, self.name]
        for arg in self.args:
            words.append(f"[<{arg}>]" if arg in self.optional_args or arg == "extra-args"
                         else f"<{arg}>")
        if any(p not in self.args for p in self.props):
            words.append("[OPTIONS]")
        return " ".join(words)


def _is_list(prop: Prop) -> bool:
    return isinstance(prop.format, str) and re.search(r"-a?list$", prop.format) is not None


def _resolve(name: str, props: dict[str, Prop], warnings: list[str]) -> str | None:
    if name in props:
        return name
    matches = sorted(p for p in props if p.startswith(name))
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        warnings.append(f"Option {name} is ambiguous ({', '.join(matches)})\n")
    else:
        warnings.append(f"Unknown option: {name}\n")
    return None


def parse(cmd: Command, argv: list[str]) -> dict[str, object]:
    """Return the parameters; raise OptionError/ParamError (with the usage line set)."""
    try:
        return _parse(cmd, argv)
    except ParamError as err:
        err.usage = cmd.usage
        raise


def _parse(cmd: Command, argv: list[str]) -> dict[str, object]:
    props = cmd.props
    values: dict[str, object] = {}
    positional: list[str] = []
    warnings: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        if token == "--":
            positional.extend(argv[i:])
            break
        m = _OPTION_RE.fullmatch(token)
        if not m:
            positional.append(token)
            continue
        name = _resolve(m.group(1), props, warnings)
        value = m.group(2)
        if name is None:
            continue
        prop = props[name]
        if value is None:
            if prop.type == "boolean":
                if i < len(argv) and not argv[i].startswith("-"):
                    value = argv[i]
                    i += 1
                else:
                    value = ""
            elif i < len(argv):
                value = argv[i]
                i += 1
            else:
                warnings.append(f"Option {name} requires an argument\n")
                continue
        if _is_list(prop) and name in values:
            values[name] = f"{values[name]},{value}"
        else:
            values[name] = value
    if warnings:
        raise OptionError("unable to parse option", preamble="".join(warnings))

    for name, value in list(values.items()):
        if props[name].type == "boolean":
            if value == "":
                values[name] = "1"
            else:
                b = parse_boolean(str(value))
                if b is not None:
                    values[name] = str(b)

    for arg in cmd.args:
        if arg == "extra-args":
            values[arg] = positional
            positional = []
            continue
        if not positional:
            if arg in cmd.optional_args:
                continue
            raise OptionError("not enough arguments")
        values[arg] = positional.pop(0)
    if positional:
        raise OptionError("too many arguments")

    errors: dict[str, str] = {}
    for name, prop in props.items():
        if name == "extra-args":
            continue
        value = values.get(name)
        check_prop(value if isinstance(value, str) else None if value is None else "",
                   prop, name, errors)
    if errors:
        raise ParamError(errors)
    return values


def run_tool(tool: str, commands: dict, argv: list) -> int:
    """`TOOL <command> args...` as the PVE CLIs dispatch it: errors on stderr, exit 255."""
    if not argv or argv[0] not in commands:
        name = argv[0] if argv else ""
        sys.stderr.write(f"ERROR: unknown command '{tool} {name}'\nUSAGE: {tool} <COMMAND> [ARGS] [OPTIONS]\n")
        return 255
    cmd, handler = commands[argv[0]]
    paths.ensure_layout()
    try:
        return handler(parse(cmd, argv[1:]))
    except ParamError as err:
        err.usage = err.usage or cmd.usage
        sys.stderr.write(err.render())
        return err.exit_code
    except PveError as err:
        sys.stderr.write(err.render())
        return err.exit_code
