"""The ranking as an Excel workbook (openpyxl)."""

from __future__ import annotations

import io
from datetime import datetime

from openpyxl import Workbook
from openpyxl.styles import Font

from cadre.dashboard.domain.ranking import RankingRow
from cadre.events.text import without_control_characters

HEADERS = {
    "zh-CN": ["名次", "干部编号", "姓名", "综合得分", "星级"],
    "en": ["Rank", "Cadre id", "Name", "Composite", "Stars"],
}


def ranking_workbook(
    rows: list[RankingRow],
    *,
    unit_name: str,
    period: str,
    generated_at: datetime,
    language: str,
) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = f"{period}"[:31]
    # Names stored before the directory refused control characters must not break the file.
    title = f"{without_control_characters(unit_name)} {period}" + (
        " 排名" if language == "zh-CN" else " ranking"
    )
    sheet.append([title])
    sheet["A1"].font = Font(bold=True, size=13)
    sheet.append([generated_at.strftime("%Y-%m-%d %H:%M %Z")])
    sheet.append(HEADERS.get(language, HEADERS["en"]))
    for cell in sheet[3]:
        cell.font = Font(bold=True)
    for row in rows:
        name = without_control_characters(row.name)
        sheet.append([row.rank, row.cadre_id, name, row.composite, row.stars])
    for column, width in zip("ABCDE", (8, 16, 16, 12, 8), strict=True):
        sheet.column_dimensions[column].width = width
    sheet.freeze_panes = "A4"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
