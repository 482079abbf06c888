"""How the settings are read: each variable from the environment (or the file its
``<VARIABLE>_FILE`` names), and one line per mistake naming the variable, never a secret.

Kept apart from ``settings.py``, which declares the settings themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

FILE_SUFFIX = "_FILE"
MASK = "***"


class SettingsError(ValueError):
    """A setting that cannot be read or used; names the variable (and file), never a value
    that might be a secret."""


def field_env(info: FieldInfo) -> tuple[str, bool]:
    """(variable, secret) that ``_setting`` stored on a field."""
    extra = info.json_schema_extra
    assert isinstance(extra, dict), "every setting is declared with _setting()"
    return str(extra["env"]), bool(extra["secret"])


# -- the environment source ---------------------------------------------------------------------

@dataclass(frozen=True)
class Origin:
    """Where a value came from, so an error can name it: the variable's text, or a file."""

    raw: str
    path: str | None = None


class EnvironmentSource(PydanticBaseSettingsSource):
    """Each setting from its variable in ``env``, else from the file ``<VARIABLE>_FILE`` names.

    pydantic-settings' own env source reads only ``os.environ`` (tests pass a mapping) and
    its secrets source wants one directory of files named after fields, where Docker and
    Kubernetes name one file per variable.
    """

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.env = env
        self.origins: dict[str, Origin] = {}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        found = _lookup(self.env, field_env(field)[0])
        if found is not None:
            self.origins[field_name] = found
        return (None if found is None else found.raw), field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, info in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(info, name)
            if value is not None:
                values[key] = value
        return values


ACTIVE_SOURCE: ContextVar[EnvironmentSource | None] = ContextVar("tillbridge_settings_source",
                                                                  default=None)


@contextmanager
def reading(source: EnvironmentSource) -> Iterator[None]:
    """Make ``source`` one of the settings sources for constructions in this context only."""
    token = ACTIVE_SOURCE.set(source)
    try:
        yield
    finally:
        ACTIVE_SOURCE.reset(token)


def _lookup(env: Mapping[str, str], name: str) -> Origin | None:
    """The value of one setting and where it came from, or None when it is not set either way."""
    raw = env.get(name)
    if raw:
        return Origin(raw)
    path = env.get(name + FILE_SUFFIX)
    if not path:
        return None
    var = name + FILE_SUFFIX
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SettingsError(f"{var}={path}: the file is not UTF-8 text") from None
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise SettingsError(f"{var}={path}: cannot read the file ({why})") from None
    text = text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text
    return Origin(text, path) if text else None


# -- pydantic's errors as one line per variable -------------------------------------------------

_EXPECTED = {"int_parsing": "int", "int_type": "int", "int_from_float": "int",
             "float_parsing": "float", "float_type": "float", "string_type": "str"}
_BOUNDS = {"greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="),
           "less_than": ("lt", "<"), "less_than_equal": ("le", "<=")}
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def explain(exc: ValidationError, origins: Mapping[str, Origin], settings: Any) -> str:
    """All problems of one construction on one line, each naming its variable
    (``settings``: the settings class, which knows each field's variable and secrecy)."""
    return "; ".join(_problem(err, origins, settings) for err in exc.errors())


def _problem(err: ErrorDetails, origins: Mapping[str, Origin], Settings: Any) -> str:  # noqa: N803
    """``VAR=value: what is wrong``; a value is quoted only when it came from the environment
    or the code and is not a secret, and a file's content never is."""
    field = str(err["loc"][0]) if err["loc"] else ""
    if field not in Settings.model_fields:
        return f"unknown setting {field!r}" if err["type"] == "extra_forbidden" else err["msg"]
    var = Settings.env_var(field)
    origin = origins.get(field)
    value: object = origin.raw if origin is not None else err.get("input")
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "literal_error":
        choices = ", ".join(map(str, get_args(Settings.model_fields[field].annotation)))
        if origin is not None and origin.path:
            return f"{var}{FILE_SUFFIX}={origin.path}: must be one of {choices}"
        return f"{var} must be one of {choices}, not {value!r}"
    if kind in _EXPECTED:
        why = f"expected {_EXPECTED[kind]}"
        if origin is not None and origin.path:
            return (f"{var}{FILE_SUFFIX}={origin.path}: the file does not hold a valid "
                    f"{_EXPECTED[kind]}")
    elif kind in _BOUNDS:
        key, op = _BOUNDS[kind]
        why = f"must be {op} {_shown(ctx.get(key))}"
    elif kind == "finite_number":
        why = "must be a finite number"
    elif kind == "value_error" and "error" in ctx:
        why = str(ctx["error"])
    else:
        why = err["msg"][:1].lower() + err["msg"][1:]
    if origin is not None and origin.path:
        return f"{var}{FILE_SUFFIX}={origin.path}: {why}"
    if Settings.is_secret(field):
        return f"{var}: {why}"
    return f"{var}={_shown(value)}: {why}"


def _shown(value: object) -> str:
    """Numbers as written (``NETSUITE_TIMEOUT_S=-1``), anything else quoted (``'x'``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a bound of a float setting: > 0, not > 0.0
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return value.strip()
    return repr(value)
