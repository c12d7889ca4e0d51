"""Roster files for the stack program: `litellm:users_file` and `litellm:teams_file` hold the same entries as
`litellm:users` / `litellm:teams`, in YAML, JSON or CSV, so that thousands of users need not travel in the
stack config (the engine hands the whole config to the program in one environment variable, PULUMI_CONFIG,
and Linux caps one environment string at 128 KiB).

Every entry keeps the place it came from (`litellm:users[3]`, `rosters/users.csv:17`), so each error names
the line to fix. A CSV cell is converted by the field that takes it (providers/fields.py): numbers, true/false,
lists separated by `;`, maps as JSON; an empty cell is left out, so the default applies.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import yaml  # installed with pulumi

from components.user_with_key import team_ids
from providers import fields as f

ENV_CAP = 128 * 1024 - len("PULUMI_CONFIG=") - 1  # Linux's MAX_ARG_STRLEN for "NAME=value\0", measured
ENV_WARN = 96 * 1024  # a preview warns from here on: a few more users and the program cannot start
SUFFIXES = (".csv", ".yaml", ".yml", ".json")
LIST_SEPARATOR = ";"
NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One entry of a list of users or teams, and where it was written."""

    place: str  # `litellm:users[3]` or `rosters/users.csv:17`
    values: Any  # a dict for a well-formed entry; anything else is reported as not an object


@dataclasses.dataclass
class Roster:
    """The users and teams a stack declares, inline and from roster files, each with where it is written."""

    users: list[Entry]
    teams: list[Entry]
    max_deletions: Optional[int]  # None: not given (the ledger's default, and no emptying the stack)
    errors: list[str]  # of the roster keys themselves: files, defaults, max_deletions

    def user_values(self) -> list[Any]:
        return [entry.values for entry in self.users]

    def team_values(self) -> list[Any]:
        return [entry.values for entry in self.teams]


def inline(key: str, entries: list[Any]) -> list[Entry]:
    return [Entry(f"{key}[{index}]", entry) for index, entry in enumerate(entries)]


# ---------------------------------------------------------------------------------------- CSV cells
def _number(text: str) -> Any:
    if not NUMBER_RE.match(text):
        return text  # the field refuses it, in its own words
    value = float(text)
    return int(value) if value.is_integer() and not re.search(r"[.eE]", text) else value


def _boolean(text: str) -> Any:
    return {"true": True, "false": False}.get(text.lower(), text)


def _list(text: str) -> list[str]:
    return [item.strip() for item in text.split(LIST_SEPARATOR) if item.strip()]


def _json_cell(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


# How a cell becomes the value its field parses; a parser not listed here takes text.
CELL: dict[Callable[[Any], Any], Callable[[str], Any]] = {
    f.budget: _number, f.count: _number, f.spend: _number, f.boolean: _boolean, f.flag: _boolean,
    f.string_list: _list, team_ids: _list, f.json_map: _json_cell, f.model_budgets: _json_cell,
}


def cell(field: f.Field, text: str) -> Any:
    return CELL.get(field.parse, lambda value: value)(text)


# -------------------------------------------------------------------------------------------- files
def read(key: str, path: str, root: Path, table: Mapping[str, f.Field]) -> tuple[list[Entry], list[str]]:
    """The entries of a roster file (`path` relative to the project folder `root`), and every problem of
    the file itself: missing, unreadable, not a list, a CSV header naming no input."""
    if not isinstance(path, str) or not path.strip():
        return [], [f"{key} must be the path of a roster file relative to the project, such as 'rosters/users.csv'"]
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        return [], [f"{key}: {path} must end in {', '.join(SUFFIXES)}"]
    try:
        text = (root / path).read_text(encoding="utf-8-sig")  # a BOM from a spreadsheet export is not a name
    except FileNotFoundError:
        return [], [f"{key}: {path} does not exist (the path is relative to the project folder)"]
    except (OSError, UnicodeDecodeError) as err:
        return [], [f"{key}: {path} cannot be read: {type(err).__name__}: {getattr(err, 'strerror', None) or err}"]
    if suffix == ".csv":
        return _csv(path, text, table)
    return (_json if suffix == ".json" else _yaml)(key, path, text)


def _yaml(key: str, path: str, text: str) -> tuple[list[Entry], list[str]]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as err:
        return [], [f"{key}: {path} is not valid YAML: {err}"]
    finally:
        loader.dispose()
    if not isinstance(data, list):
        return [], [f"{key}: {path} must hold a list of entries (as litellm:users does)"]
    return [Entry(f"{path}:{item.start_mark.line + 1}", entry) for item, entry in zip(node.value, data)], []


def _json(key: str, path: str, text: str) -> tuple[list[Entry], list[str]]:
    """A top-level JSON array, each element located by the line it starts on."""
    decoder, entries = json.JSONDecoder(), []
    blank = re.compile(r"[ \t\r\n]*")
    at = blank.match(text, 0).end()
    if not text.startswith("[", at):
        return [], [f"{key}: {path} must hold a JSON array of entries (as litellm:users does)"]
    at = blank.match(text, at + 1).end()
    try:
        while not text.startswith("]", at):
            entry, end = decoder.raw_decode(text, at)
            entries.append(Entry(f"{path}:{text.count(chr(10), 0, at) + 1}", entry))
            at = blank.match(text, end).end()
            if text.startswith(",", at):
                at = blank.match(text, at + 1).end()
            elif not text.startswith("]", at):
                raise json.JSONDecodeError("expected ',' or ']'", text, at)
        if text[blank.match(text, at + 1).end():]:
            raise json.JSONDecodeError("extra data", text, at + 1)
    except json.JSONDecodeError as err:
        return [], [f"{key}: {path} is not valid JSON: {err}"]
    return entries, []


def _csv(path: str, text: str, table: Mapping[str, f.Field]) -> tuple[list[Entry], list[str]]:
    """A header row of input names, then one entry per row; an empty cell is left out (the default)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader, [])]
    except csv.Error as err:
        return [], [f"{path}:1: not valid CSV: {err}"]
    if not any(header):
        return [], []  # an empty file: no entries (an error of its own)
    errors = [f"{path}:1: column {index + 1}: {f.unknown_name(name, table)}"
              for index, name in enumerate(header) if name not in table]
    errors += [f"{path}:1: column {name!r} appears twice" for index, name in enumerate(header) if name in header[:index]]
    required = [name for name, field in table.items() if field.required and field.default is None]
    errors += [f"{path}:1: no {name!r} column: every entry needs one" for name in required if name not in header]
    if errors:  # one message for the header, not one per row
        return [], errors
    entries, line = [], reader.line_num + 1
    try:
        for row in reader:
            if len(row) > len(header):
                errors.append(f"{path}:{line}: {len(row)} cells for {len(header)} columns")
            elif any(text.strip() for text in row):
                values = {name: cell(table[name], text.strip()) for name, text in zip(header, row) if text.strip()}
                entries.append(Entry(f"{path}:{line}", values))
            line = reader.line_num + 1
    except csv.Error as err:
        errors.append(f"{path}:{line}: not valid CSV: {err}")
    return entries, errors


# ----------------------------------------------------------------------------------------- defaults
def with_defaults(entries: list[Entry], defaults: Mapping[str, Any]) -> list[Entry]:
    """Each entry over the defaults: an entry's own value (null included) wins."""
    if not defaults:
        return entries
    return [Entry(e.place, {**e.values, **{k: v for k, v in defaults.items() if k not in e.values}})
            if isinstance(e.values, dict) else e for e in entries]


# ------------------------------------------------------------------------------------- config size
def config_bytes(config: Mapping[str, Any]) -> int:
    """How long PULUMI_CONFIG is for this stack config: a JSON object of strings, objects and lists as JSON."""
    as_strings = {k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for k, v in config.items()}
    return len(json.dumps(as_strings, separators=(",", ":")).encode())


def environment_bytes() -> int:
    """How long this program's PULUMI_CONFIG is (the config the runtime holds when there is none: tests)."""
    given = os.environ.get("PULUMI_CONFIG")
    if given is not None:
        return len(given.encode())
    from pulumi.runtime import config as runtime_config

    return config_bytes(runtime_config.CONFIG.get())


def size_message(size: int) -> str:
    return (f"the stack config is {size:,} bytes in PULUMI_CONFIG, the environment variable the engine starts the "
            f"program with; Linux allows {ENV_CAP:,}. Move the users to a roster file: litellm:users_file "
            f"(docs/rosters.md)")
