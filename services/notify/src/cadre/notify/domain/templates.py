"""One template per kind of notification, in Chinese and English. Pure: parameters in,
title and body out. A message is written in the reader's language; an email adds the other
language underneath as a fallback for readers who cannot read the first."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cadre.notify.domain.kinds import Kind

Language = Literal["zh-CN", "en"]
LANGUAGES: tuple[Language, ...] = ("zh-CN", "en")

# Words the templates put in from closed vocabularies.
_WORDS: dict[Language, dict[str, str]] = {
    "zh-CN": {
        "red": "红灯",
        "yellow": "黄灯",
        "green": "绿灯",
        "like": "点赞",
        "dislike": "点踩",
        "annual": "年休假",
        "sick": "病假",
        "personal": "事假",
        "marriage": "婚假",
        "maternity": "产假",
        "bereavement": "丧假",
        "compensatory": "调休",
        "none": "无",
    },
    "en": {"none": "none"},
}

_TEMPLATES: dict[Kind, dict[Language, tuple[str, str]]] = {
    Kind.LIGHT_CHANGED: {
        "zh-CN": (
            "您的预警灯变为{current}",
            "您的预警灯由{previous}变为{current}（{as_of}）。原因：{reasons}",
        ),
        "en": (
            "Your warning light is now {current}",
            "Your warning light changed from {previous} to {current} on {as_of}. "
            "Reasons: {reasons}",
        ),
    },
    Kind.LIGHT_CHANGED_IN_UNIT: {
        "zh-CN": (
            "{cadre_name}的预警灯变为{current}",
            "{cadre_name}（{cadre_id}）的预警灯由{previous}变为{current}（{as_of}）。原因：{reasons}",
        ),
        "en": (
            "{cadre_name}'s warning light is now {current}",
            "The warning light of {cadre_name} ({cadre_id}) changed from {previous} to "
            "{current} on {as_of}. Reasons: {reasons}",
        ),
    },
    Kind.RANKING_SHOWCASED: {
        "zh-CN": (
            "{period}排名：您位列前茅",
            "祝贺！您在{unit_id}的{period}排名中名列前茅，予以表扬展示。",
        ),
        "en": (
            "{period} ranking: you are among the best",
            "Congratulations: you are showcased among the top of {unit_id} for {period}.",
        ),
    },
    Kind.RANKING_BOTTOM: {
        "zh-CN": (
            "{period}排名：请关注",
            "您在{unit_id}的{period}排名中靠后。建议结对帮带导师：{mentor_name}。",
        ),
        "en": (
            "{period} ranking: needs attention",
            "You are at the bottom of the {period} ranking of {unit_id}. "
            "Suggested mentor: {mentor_name}.",
        ),
    },
    Kind.RANKING_MENTOR: {
        "zh-CN": (
            "结对帮带：{cadre_name}",
            "{cadre_name}在{unit_id}的{period}排名中靠后，建议由您结对帮带。",
        ),
        "en": (
            "Mentoring: {cadre_name}",
            "{cadre_name} is at the bottom of the {period} ranking of {unit_id}; "
            "you are suggested as their mentor.",
        ),
    },
    Kind.RANKING_PUBLISHED: {
        "zh-CN": (
            "{unit_id}{period}排名已发布",
            "{unit_id}的{period}排名已发布。表扬：{showcased}；靠后：{bottom}。",
        ),
        "en": (
            "{period} ranking of {unit_id} published",
            "The {period} ranking of {unit_id} is out. Showcased: {showcased}; bottom: {bottom}.",
        ),
    },
    Kind.JOURNAL_MISSED: {
        "zh-CN": ("{day}工作日志缺记", "您{day}（工作日）未填写工作日志，已记为缺记。"),
        "en": (
            "No work journal for {day}",
            "You wrote no work journal on the workday {day}; it was recorded as missed.",
        ),
    },
    Kind.LEAVE_AWAITING: {
        "zh-CN": (
            "待审批：{requester_name}的请假",
            "{requester_name}申请{kind}，{starts_on}至{ends_on}，等待您审批（第{step_number}步）。",
        ),
        "en": (
            "Waiting for you: leave of {requester_name}",
            "{requester_name} asks for {kind} leave from {starts_on} to {ends_on}; "
            "step {step_number} waits for your decision.",
        ),
    },
    Kind.LEAVE_APPROVED: {
        "zh-CN": ("请假已批准", "您的{kind}（{starts_on}至{ends_on}）已批准。"),
        "en": (
            "Leave approved",
            "Your {kind} leave from {starts_on} to {ends_on} was approved.",
        ),
    },
    Kind.LEAVE_REJECTED: {
        "zh-CN": ("请假未获批准", "您的请假申请未获批准。理由：{reason}"),
        "en": ("Leave rejected", "Your leave request was rejected. Reason: {reason}"),
    },
    Kind.TASK_ASSIGNED: {
        "zh-CN": (
            "新任务：{title}",
            "{assigner_name}给您下达任务「{title}」，截止{due_local}。完成加{reward_points}分，逾期扣{penalty_points}分。",
        ),
        "en": (
            "New task: {title}",
            '{assigner_name} assigned you "{title}", due {due_local}. '
            "Done: +{reward_points}; overdue: -{penalty_points}.",
        ),
    },
    Kind.TASK_OVERDUE: {
        "zh-CN": (
            "任务逾期：{title}",
            "任务「{title}」已于{due_local}逾期，扣{penalty_points}分。",
        ),
        "en": (
            "Task overdue: {title}",
            'The task "{title}" became overdue at {due_local}: -{penalty_points}.',
        ),
    },
    Kind.TASK_OVERDUE_ASSIGNER: {
        "zh-CN": (
            "您下达的任务逾期：{title}",
            "{assignee_name}的任务「{title}」已于{due_local}逾期。",
        ),
        "en": (
            "A task you assigned is overdue: {title}",
            'The task "{title}" of {assignee_name} became overdue at {due_local}.',
        ),
    },
    Kind.ENTRY_REACTED: {
        "zh-CN": (
            "{reactor_name}{reaction}了您的工作日志",
            "{reactor_name}{reaction}了您{entry_day}的工作日志。理由：{reason}",
        ),
        "en": (
            "{reactor_name} gave your journal a {reaction}",
            "{reactor_name} gave your journal of {entry_day} a {reaction}. Reason: {reason}",
        ),
    },
    Kind.REMIND_JOURNAL: {
        "zh-CN": ("提醒：今天还没写工作日志", "今天（{day}）是工作日，您还没有填写工作日志。"),
        "en": (
            "Reminder: no work journal yet today",
            "Today ({day}) is a workday and you have not written your work journal yet.",
        ),
    },
    Kind.REMIND_APPROVAL: {
        "zh-CN": (
            "提醒：{requester_name}的请假待审批已超过{hours}小时",
            "{requester_name}的请假申请已等待您审批{hours}小时，请及时处理。",
        ),
        "en": (
            "Reminder: leave of {requester_name} waiting over {hours} h",
            "The leave request of {requester_name} has waited {hours} hours for your decision.",
        ),
    },
    Kind.REMIND_TASK_DUE: {
        "zh-CN": (
            "提醒：任务「{title}」明天到期",
            "任务「{title}」将于{due_local}到期，请按时完成。",
        ),
        "en": (
            'Reminder: "{title}" is due tomorrow',
            'The task "{title}" is due {due_local}. Please complete it in time.',
        ),
    },
}


@dataclass(frozen=True)
class Rendered:
    title: str
    body: str


class _Blank(dict[str, str]):
    """Missing parameters render as empty text instead of failing a delivery."""

    def __missing__(self, key: str) -> str:
        return ""


def _word(language: Language, value: Any) -> str:
    if value is None or value == "":
        return _WORDS[language]["none"]
    if isinstance(value, list | tuple):
        if not value:
            return _WORDS[language]["none"]
        separator = "、" if language == "zh-CN" else ", "
        return separator.join(_word(language, v) for v in value)
    text = str(value)
    return _WORDS[language].get(text, text)


def render(kind: Kind, params: Mapping[str, Any], language: Language) -> Rendered:
    title, body = _TEMPLATES[kind].get(language) or _TEMPLATES[kind]["en"]
    values = _Blank({key: _word(language, value) for key, value in params.items()})
    step = params.get("step")
    values["step_number"] = str(step + 1) if isinstance(step, int) else ""
    for key in ("cadre", "mentor", "requester", "assigner", "assignee", "reactor"):
        # Names are added by the adapter when the directory replica knows them.
        if not values.get(f"{key}_name"):
            values[f"{key}_name"] = values.get(f"{key}_id", "")
    return Rendered(title.format_map(values), body.format_map(values))


def other_language(language: Language) -> Language:
    return "en" if language == "zh-CN" else "zh-CN"


def email_text(kind: Kind, params: Mapping[str, Any], language: Language) -> Rendered:
    """Subject in the reader's language; the body in it, then in the other as a fallback."""
    first = render(kind, params, language)
    second = render(kind, params, other_language(language))
    return Rendered(first.title, f"{first.body}\n\n-- \n{second.title}\n{second.body}\n")


def digest_text(items: list[tuple[Kind, Mapping[str, Any]]], language: Language) -> Rendered:
    """One email listing several notifications (the daily digest)."""
    count = len(items)
    title = f"今日通知汇总（{count}条）" if language == "zh-CN" else f"Your daily digest ({count})"
    lines = []
    for kind, params in items:
        rendered = render(kind, params, language)
        lines.append(f"• {rendered.title}\n  {rendered.body}")
    return Rendered(title, "\n\n".join(lines) + "\n")
