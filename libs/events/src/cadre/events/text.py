"""Names people read: on screens, in notifications and in exported workbooks."""

from __future__ import annotations

import re

# C0 controls and DEL. A name has no use for them, and Excel (XML 1.0) cannot hold most of
# them: openpyxl refuses to write a cell containing one.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
NAME_PATTERN = r"^[^\x00-\x1f\x7f]+$"
MAX_NAME_LENGTH = 200


def name_problem(name: str) -> str | None:
    """Why `name` (already stripped) cannot name a unit or a person, or None if it can."""
    if not name:
        return "is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"is longer than {MAX_NAME_LENGTH} characters"
    if _CONTROL.search(name):
        return "contains control characters (a tab, a line break or similar)"
    return None


def without_control_characters(text: str) -> str:
    """`text` fit for a cell or a header: for names stored before they were checked."""
    return _CONTROL.sub(" ", text)
