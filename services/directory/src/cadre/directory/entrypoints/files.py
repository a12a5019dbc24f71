"""Reads an uploaded table, CSV (UTF-8, with or without BOM) or XLSX, told apart by content."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 50_000
XLSX_MAGIC = b"PK\x03\x04"


class UnreadableFile(ValueError):
    pass


def read_table(content: bytes) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the rows (as text) of the first sheet or of the CSV."""
    if len(content) > MAX_BYTES:
        raise UnreadableFile(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB")
    table = _xlsx(content) if content.startswith(XLSX_MAGIC) else _csv(content)
    if not table:
        raise UnreadableFile("the file is empty")
    header = [str(cell or "").strip() for cell in table[0]]
    rows = [
        {name: _text(value) for name, value in zip(header, row, strict=False)}
        for row in table[1:]
        if any(str(value or "").strip() for value in row)
    ]
    if len(rows) > MAX_ROWS:
        raise UnreadableFile(f"the file has more than {MAX_ROWS} rows")
    return header, rows


def _text(value: object) -> str:
    return str(value if value is not None else "").strip()


def _csv(content: bytes) -> list[list[str]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFile("a CSV file must be UTF-8 (save it as 'CSV UTF-8')") from exc
    try:
        return list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:  # for example a NUL byte in the file
        raise UnreadableFile(f"not a readable CSV file: {exc}") from exc


def _xlsx(content: bytes) -> list[list[object]]:
    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken workbook
        raise UnreadableFile(f"not a readable XLSX workbook: {type(exc).__name__}") from exc
    sheet = workbook.worksheets[0]
    rows: list[list[object]] = [list(row) for row in sheet.iter_rows(values_only=True)]
    workbook.close()
    return rows
