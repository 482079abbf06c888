"""The registry's state: schemas by id, subjects' versions, compatibility levels.

Thread-safe (one lock) and, when a path is given, persisted to a JSON file rewritten
atomically after every change, so a restarted registry hands out the same ids and the ids
already embedded in Kafka messages stay resolvable. The API's rules it applies (validation,
versions, compatibility) are in :mod:`.rules`.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from tillbridge.devstack.registry.rules import (
    DEFAULT_LEVEL,
    LEVELS,
    RegistryError,
    canonical,
    compat_messages,
    parse_version,
    subject_not_found,
    validate,
)


class SchemaStore:
    """Thread-safe registry state, optionally persisted to a JSON file."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._path = Path(path) if path is not None else None
        self._lock = threading.RLock()
        self._next_id = 1
        # id -> {"schema", "schemaType", "references"}
        self._schemas: dict[int, dict[str, Any]] = {}
        self._by_canonical: dict[str, int] = {}
        # subject -> list of {"version", "id", "deleted"}
        self._subjects: dict[str, list[dict[str, Any]]] = {}
        self._global_level = DEFAULT_LEVEL
        self._subject_levels: dict[str, str] = {}
        if self._path is not None and self._path.exists():
            self._load()

    # -- persistence -------------------------------------------------------
    def _load(self) -> None:
        assert self._path is not None
        data = json.loads(self._path.read_text(encoding="utf-8"))
        self._next_id = int(data.get("next_id", 1))
        self._schemas = {int(k): v for k, v in data.get("schemas", {}).items()}
        self._subjects = data.get("subjects", {})
        self._global_level = data.get("global_level", DEFAULT_LEVEL)
        self._subject_levels = data.get("subject_levels", {})
        self._by_canonical = {
            canonical(v["schema"], v["schemaType"], v["references"]): k
            for k, v in self._schemas.items()
        }

    def _save(self) -> None:
        if self._path is None:
            return
        data = {
            "next_id": self._next_id,
            "schemas": {str(k): v for k, v in self._schemas.items()},
            "subjects": self._subjects,
            "global_level": self._global_level,
            "subject_levels": self._subject_levels,
        }
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=self._path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1, sort_keys=True)
            os.replace(tmp, self._path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # -- helpers -----------------------------------------------------------
    def _live_versions(self, subject: str) -> list[dict[str, Any]]:
        versions = [v for v in self._subjects.get(subject, []) if not v["deleted"]]
        if not versions:
            raise subject_not_found(subject)
        return versions

    def _find_version(self, subject: str, version: str, deleted: bool = False) -> dict[str, Any]:
        number = parse_version(version)
        if deleted:
            versions = self._subjects.get(subject, [])
            if not versions:
                raise subject_not_found(subject)
        else:
            versions = self._live_versions(subject)
        if number is None:
            return versions[-1]
        for entry in versions:
            if entry["version"] == number:
                return entry
        raise RegistryError(404, 40402, f"Version {version} not found.")

    def _describe(self, subject: str, entry: dict[str, Any]) -> dict[str, Any]:
        record = self._schemas[entry["id"]]
        out: dict[str, Any] = {
            "subject": subject,
            "version": entry["version"],
            "id": entry["id"],
            "schema": record["schema"],
        }
        if record["schemaType"] != "AVRO":
            out["schemaType"] = record["schemaType"]
        return out

    def level(self, subject: str | None = None) -> str:
        with self._lock:
            if subject is not None and subject in self._subject_levels:
                return self._subject_levels[subject]
            return self._global_level

    # -- API operations ----------------------------------------------------
    def register(self, subject: str, body: Any) -> dict[str, Any]:
        schema, schema_type, references = validate(body)
        key = canonical(schema, schema_type, references)
        with self._lock:
            versions = self._subjects.get(subject, [])
            live = [v for v in versions if not v["deleted"]]
            existing_id = self._by_canonical.get(key)
            for entry in live:
                if entry["id"] == existing_id:
                    return {"id": existing_id}
            problems = compat_messages(
                schema, [self._schemas[v["id"]]["schema"] for v in live], self.level(subject)
            )
            if problems:
                raise RegistryError(
                    409,
                    409,
                    "Schema being registered is incompatible with an earlier schema for subject "
                    f"'{subject}', details: {problems}",
                )
            if existing_id is None:
                existing_id = self._next_id
                self._next_id += 1
                self._schemas[existing_id] = {
                    "schema": schema,
                    "schemaType": schema_type,
                    "references": references,
                }
                self._by_canonical[key] = existing_id
            next_version = max((v["version"] for v in versions), default=0) + 1
            versions.append({"version": next_version, "id": existing_id, "deleted": False})
            self._subjects[subject] = versions
            self._save()
            return {"id": existing_id}

    def lookup(self, subject: str, body: Any, deleted: bool = False) -> dict[str, Any]:
        schema, schema_type, references = validate(body)
        key = canonical(schema, schema_type, references)
        with self._lock:
            versions = self._subjects.get(subject, [])
            candidates = versions if deleted else [v for v in versions if not v["deleted"]]
            if not candidates:
                raise subject_not_found(subject)
            schema_id = self._by_canonical.get(key)
            for entry in reversed(candidates):
                if entry["id"] == schema_id:
                    return self._describe(subject, entry)
            raise RegistryError(404, 40403, "Schema not found")

    def schema_by_id(self, schema_id: int) -> dict[str, Any]:
        with self._lock:
            record = self._schemas.get(schema_id)
            if record is None:
                raise RegistryError(404, 40403, "Schema not found")
            out: dict[str, Any] = {"schema": record["schema"]}
            if record["schemaType"] != "AVRO":
                out["schemaType"] = record["schemaType"]
            if record["references"]:
                out["references"] = record["references"]
            return out

    def subject_versions_of_id(self, schema_id: int, deleted: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            if schema_id not in self._schemas:
                raise RegistryError(404, 40403, "Schema not found")
            return [
                {"subject": s, "version": v["version"]}
                for s, versions in sorted(self._subjects.items())
                for v in versions
                if v["id"] == schema_id and (deleted or not v["deleted"])
            ]

    def subjects(self, deleted: bool = False) -> list[str]:
        with self._lock:
            return sorted(
                s
                for s, vs in self._subjects.items()
                if deleted or any(not v["deleted"] for v in vs)
            )

    def versions(self, subject: str, deleted: bool = False) -> list[int]:
        with self._lock:
            if deleted:
                entries = self._subjects.get(subject, [])
                if not entries:
                    raise subject_not_found(subject)
            else:
                entries = self._live_versions(subject)
            return [v["version"] for v in entries]

    def get_version(self, subject: str, version: str, deleted: bool = False) -> dict[str, Any]:
        with self._lock:
            return self._describe(subject, self._find_version(subject, version, deleted))

    def delete_subject(self, subject: str, permanent: bool = False) -> list[int]:
        with self._lock:
            versions = self._subjects.get(subject, [])
            if not versions:
                raise subject_not_found(subject)
            if permanent:
                if any(not v["deleted"] for v in versions):
                    raise RegistryError(
                        404,
                        40405,
                        f"Subject '{subject}' was not deleted first before being permanently "
                        "deleted",
                    )
                del self._subjects[subject]
                self._subject_levels.pop(subject, None)
                self._save()
                return [v["version"] for v in versions]
            live = [v for v in versions if not v["deleted"]]
            if not live:
                raise RegistryError(404, 40404, f"Subject '{subject}' was soft deleted.")
            for v in live:
                v["deleted"] = True
            self._save()
            return [v["version"] for v in live]

    def delete_version(self, subject: str, version: str, permanent: bool = False) -> int:
        with self._lock:
            entry = self._find_version(subject, version, deleted=permanent)
            if permanent:
                if not entry["deleted"]:
                    raise RegistryError(
                        404,
                        40407,
                        f"Subject '{subject}' Version {entry['version']} was not "
                        "deleted first before being permanently deleted",
                    )
                self._subjects[subject].remove(entry)
                if not self._subjects[subject]:
                    del self._subjects[subject]
            else:
                entry["deleted"] = True
            self._save()
            return int(entry["version"])

    def check_compatibility(self, subject: str, body: Any, version: str | None) -> dict[str, Any]:
        """``version=None`` checks against all live versions (``.../versions``)."""
        schema, _, _ = validate(body)
        with self._lock:
            live = self._subjects.get(subject, [])
            live = [v for v in live if not v["deleted"]]
            level = self.level(subject)
            if version is None:
                against = [self._schemas[v["id"]]["schema"] for v in live]
                if level == "NONE":
                    messages: list[str] = []
                else:
                    base = level.removesuffix("_TRANSITIVE") + "_TRANSITIVE"
                    messages = compat_messages(schema, against, base)
            else:
                if not live:
                    raise subject_not_found(subject)
                entry = self._find_version(subject, version)
                old = self._schemas[entry["id"]]["schema"]
                messages = compat_messages(schema, [old], level.removesuffix("_TRANSITIVE"))
        return {"is_compatible": not messages, "messages": messages}

    def set_level(self, subject: str | None, body: Any) -> dict[str, Any]:
        level = body.get("compatibility") if isinstance(body, dict) else None
        if not isinstance(level, str) or level.upper() not in LEVELS:
            raise RegistryError(
                422, 42203, f"Invalid compatibility level. Valid values are {list(LEVELS)}"
            )
        with self._lock:
            if subject is None:
                self._global_level = level.upper()
            else:
                self._subject_levels[subject] = level.upper()
            self._save()
        return {"compatibility": level.upper()}

    def get_level(self, subject: str | None, default_to_global: bool = False) -> dict[str, Any]:
        with self._lock:
            if subject is None:
                return {"compatibilityLevel": self._global_level}
            if subject in self._subject_levels:
                return {"compatibilityLevel": self._subject_levels[subject]}
            if default_to_global:
                return {"compatibilityLevel": self._global_level}
            raise RegistryError(
                404,
                40408,
                f"Subject '{subject}' does not have subject-level compatibility configured",
            )

    def delete_level(self, subject: str) -> dict[str, Any]:
        with self._lock:
            if subject not in self._subject_levels:
                raise subject_not_found(subject)
            level = self._subject_levels.pop(subject)
            self._save()
            return {"compatibilityLevel": level}
