"""Each tenant's ruleset, from `<tenant>.toml` in the rulesets directory (the packaged
default for tenants without a file). `reload` picks up edits; a file that does not parse
is reported and the tenant keeps the ruleset it had."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cadre.events.logging import get_logger
from cadre.scoring.domain.ruleset import Ruleset, RulesetError, default_ruleset, parse_ruleset

log = get_logger(__name__)
DEFAULT_SOURCE = "default.toml (packaged)"


@dataclass(frozen=True)
class ActiveRuleset:
    ruleset: Ruleset
    source: str
    fingerprint: str


class RulesetBook:
    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._default = ActiveRuleset(default_ruleset(), DEFAULT_SOURCE, "default")
        self._active: dict[str, ActiveRuleset] = {}
        self.errors: dict[str, str] = {}

    @classmethod
    def load(cls, directory: Path | None) -> RulesetBook:
        """Load every file now; a broken one stops start-up, since nothing was active yet."""
        book = cls(directory)
        book.reload()
        if book.errors:
            raise RulesetError("; ".join(book.errors.values()))
        return book

    def for_tenant(self, tenant: str) -> Ruleset:
        return self.active(tenant).ruleset

    def active(self, tenant: str) -> ActiveRuleset:
        return self._active.get(tenant, self._default)

    def reload(self) -> set[str]:
        """Read the directory again; returns the tenants whose active ruleset changed."""
        found: dict[str, Path] = {}
        if self.directory is not None and self.directory.is_dir():
            found = {path.stem: path for path in sorted(self.directory.glob("*.toml"))}
        changed = {tenant for tenant in self._active if tenant not in found}
        for tenant in changed:
            del self._active[tenant]
            self.errors.pop(tenant, None)
            log.info("ruleset file removed, tenant back on the default", tenant=tenant)
        for tenant, path in found.items():
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                self.errors[tenant] = f"{path}: cannot read: {exc.strerror}"
                continue
            fingerprint = hashlib.sha256(text.encode()).hexdigest()
            current = self._active.get(tenant)
            if current is not None and current.fingerprint == fingerprint:
                continue
            try:
                ruleset = parse_ruleset(text, str(path))
            except RulesetError as exc:
                if self.errors.get(tenant) != str(exc):
                    log.error(
                        "ruleset rejected, the previous one stays active",
                        tenant=tenant,
                        error=str(exc),
                        active_version=self.active(tenant).ruleset.version,
                    )
                self.errors[tenant] = str(exc)
                continue
            self.errors.pop(tenant, None)
            self._active[tenant] = ActiveRuleset(ruleset, str(path), fingerprint)
            changed.add(tenant)
            log.info("ruleset active", tenant=tenant, version=ruleset.version, file=str(path))
        return changed
