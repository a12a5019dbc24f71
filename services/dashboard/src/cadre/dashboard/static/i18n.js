// Interface text: Chinese (zh-CN) by default, English selectable. Keys missing in English
// fall back to Chinese, and unknown keys show the key, so a gap is visible, never blank.
const TEXT = {
  "zh-CN": {
    "app.title": "干部日常管理考评",
    "lang.label": "语言",
    "logout": "退出",
    "loading": "加载中…",
    "retry": "重试",
    "login.title": "登录",
    "login.username": "用户名",
    "login.password": "密码",
    "login.tenant": "单位代码（可选）",
    "login.submit": "登录",
    "login.failed": "用户名或密码错误。",
    "login.expired": "登录已过期，请重新登录。",
    "error.unavailable": "{service}暂不可用，此部分无法显示。其余内容不受影响。",
    "error.notFound": "没有找到，或您无权查看。",
    "error.generic": "出错了：{detail}",
    "svc.directory": "组织人事服务", "svc.attendance": "考勤服务", "svc.journal": "工作日志服务",
    "svc.scoring": "评分服务", "svc.notify": "通知服务", "svc.dashboard": "看板服务",
    "tree.title": "组织架构",
    "unit.lights": "预警灯",
    "unit.lightList": "预警名单",
    "unit.ranking": "排名",
    "unit.stationing": "驻村天数",
    "unit.export": "导出 Excel",
    "light.red": "红灯", "light.yellow": "黄灯", "light.green": "绿灯",
    "lights.none": "没有红灯或黄灯。",
    "period.month": "月", "period.quarter": "季度", "period.half": "半年",
    "col.rank": "名次", "col.name": "姓名", "col.composite": "综合得分", "col.stars": "星级",
    "col.light": "灯", "col.reasons": "原因", "col.cadre": "干部", "col.unit": "单位",
    "col.days": "在岗天数", "col.below": "不足{min}天",
    "col.day": "日期", "col.rule": "规则", "col.raw": "原始分", "col.cap": "封顶扣减",
    "col.points": "计入分", "col.event": "事件", "col.tag": "日志标签",
    "stars.unknown": "星级暂不可用",
    "pager": "第 {page} / {pages} 页，共 {total} 人",
    "prev": "上一页", "next": "下一页",
    "stationing.none": "本单位没有驻村干部。",
    "yes": "是", "no": "否",
    "cadre.radar": "五维雷达图",
    "cadre.unitAverage": "单位平均",
    "cadre.timeline": "每日综合得分",
    "cadre.explain": "得分明细",
    "cadre.explainHint": "点击雷达图上的维度或下方按钮，查看每一分的来源。",
    "cadre.entries": "近期工作日志",
    "cadre.noEntries": "暂无工作日志。",
    "cadre.stars": "{period} 星级",
    "cadre.back": "返回单位",
    "explain.total": "合计 {total} 分，共 {count} 条",
    "explain.voided": "已作废",
    "explain.more": "更多",
    "explain.none": "本期该维度没有得分记录。",
    "timeline.days": "{n} 天",
    "dim.politics": "政治素质", "dim.discipline": "纪律作风", "dim.learning": "学习提升",
    "dim.communication": "沟通协作", "dim.responsibility": "担当作为",
    "live.title": "实时通知",
    "live.on": "实时", "live.off": "实时更新中断，重连中…",
    "live.unavailable": "通知服务暂不可用，实时更新暂停，稍后自动重试。",
    "live.empty": "暂无通知。",
    "likes": "赞 {likes} · 踩 {dislikes}",
    "rule.day_present": "在岗", "rule.day_absent": "缺勤", "rule.check_in_flagged": "打卡异常",
    "rule.journal_missed": "日志缺记", "rule.first_entry": "当日首篇日志",
    "rule.endorsement": "同事点赞", "rule.study": "学习", "rule.branch_activity": "支部活动",
    "rule.reaction_like": "领导点赞", "rule.reaction_dislike": "领导点踩",
    "rule.task_completed": "完成任务", "rule.task_overdue": "任务逾期", "rule.task_graded": "任务评分",
    "tag.publicity": "宣传报道", "tag.coordination_success": "协调成效",
    "tag.study_notes": "学习笔记", "tag.ideological_report": "思想汇报",
  },
  en: {
    "app.title": "Cadre daily management",
    "lang.label": "Language",
    "logout": "Log out",
    "loading": "Loading…",
    "retry": "Retry",
    "login.title": "Log in",
    "login.username": "Username",
    "login.password": "Password",
    "login.tenant": "Organisation code (optional)",
    "login.submit": "Log in",
    "login.failed": "Wrong username or password.",
    "login.expired": "Your session has expired; please log in again.",
    "error.unavailable": "The {service} is not available, so this panel cannot be shown. The rest of the page works.",
    "error.notFound": "Not found, or not yours to see.",
    "error.generic": "Something went wrong: {detail}",
    "svc.directory": "directory service", "svc.attendance": "attendance service",
    "svc.journal": "journal service", "svc.scoring": "scoring service",
    "svc.notify": "notification service", "svc.dashboard": "dashboard service",
    "tree.title": "Organisation",
    "unit.lights": "Warning lights",
    "unit.lightList": "Lights and reasons",
    "unit.ranking": "Ranking",
    "unit.stationing": "Stationing days",
    "unit.export": "Export to Excel",
    "light.red": "Red", "light.yellow": "Yellow", "light.green": "Green",
    "lights.none": "No red or yellow lights.",
    "period.month": "Month", "period.quarter": "Quarter", "period.half": "Half-year",
    "col.rank": "Rank", "col.name": "Name", "col.composite": "Composite", "col.stars": "Stars",
    "col.light": "Light", "col.reasons": "Reasons", "col.cadre": "Cadre", "col.unit": "Unit",
    "col.days": "Days present", "col.below": "Under {min} days",
    "col.day": "Day", "col.rule": "Rule", "col.raw": "Raw", "col.cap": "Cap effect",
    "col.points": "Points", "col.event": "Event", "col.tag": "journal tag",
    "stars.unknown": "stars unavailable",
    "pager": "Page {page} of {pages}, {total} people",
    "prev": "Previous", "next": "Next",
    "stationing.none": "No stationed cadres in this unit.",
    "yes": "yes", "no": "no",
    "cadre.radar": "Five-dimension radar",
    "cadre.unitAverage": "Unit average",
    "cadre.timeline": "Daily composite",
    "cadre.explain": "Where the points come from",
    "cadre.explainHint": "Click a dimension on the radar or a button below to see every point behind it.",
    "cadre.entries": "Recent journal entries",
    "cadre.noEntries": "No journal entries yet.",
    "cadre.stars": "Stars {period}",
    "cadre.back": "Back to the unit",
    "explain.total": "Total {total} points from {count} items",
    "explain.voided": "voided",
    "explain.more": "More",
    "explain.none": "No points in this dimension for the period.",
    "timeline.days": "{n} days",
    "dim.politics": "Politics", "dim.discipline": "Discipline", "dim.learning": "Learning",
    "dim.communication": "Communication", "dim.responsibility": "Responsibility",
    "live.title": "Live notifications",
    "live.on": "Live", "live.off": "Live updates interrupted, reconnecting…",
    "live.unavailable": "The notification service is not available; live updates are paused and will retry.",
    "live.empty": "No notifications yet.",
    "likes": "{likes} likes · {dislikes} dislikes",
    "rule.day_present": "present", "rule.day_absent": "absent", "rule.check_in_flagged": "flagged check-in",
    "rule.journal_missed": "missed journal", "rule.first_entry": "first entry of the day",
    "rule.endorsement": "peer endorsement", "rule.study": "study", "rule.branch_activity": "branch activity",
    "rule.reaction_like": "leader's like", "rule.reaction_dislike": "leader's dislike",
    "rule.task_completed": "task completed", "rule.task_overdue": "task overdue", "rule.task_graded": "task graded",
    "tag.publicity": "publicity", "tag.coordination_success": "coordination success",
    "tag.study_notes": "study notes", "tag.ideological_report": "ideological report",
  },
};

// Scoring states light reasons in English; these patterns give the Chinese.
const REASONS_ZH = [
  [/^(\d+) absences in the last 30 days$/, "近30天缺勤$1次"],
  [/^(\d+) missed journals in the last 30 workdays$/, "近30个工作日缺记日志$1次"],
  [/^stationed but present (\d+) days last month$/, "驻村干部上月仅在岗$1天"],
  [/^(\d+) spoofing flags in the last 30 days$/, "近30天打卡作弊嫌疑$1次"],
  [/^in the bottom ([\d.]+)% of the unit this quarter$/, "本季度处于单位后$1%"],
  [/^a task overdue for (\d+) days$/, "任务逾期$1天"],
  [/^this month's composite is below (\d+)%(.*)$/, "本月综合得分低于本人近三月平均的$1%"],
];

export const LANGUAGES = Object.keys(TEXT);

export function chooseLanguage() {
  const saved = localStorage.getItem("cadre.lang");
  return LANGUAGES.includes(saved) ? saved : "zh-CN";
}

let current = chooseLanguage();

export function language() { return current; }

export function setLanguage(lang) {
  current = LANGUAGES.includes(lang) ? lang : "zh-CN";
  localStorage.setItem("cadre.lang", current);
  document.documentElement.lang = current;
  document.title = t("app.title");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
}

export function t(key, params = {}) {
  const text = TEXT[current][key] ?? TEXT["zh-CN"][key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
}

export function has(key) { return key in TEXT["zh-CN"]; }

export function reason(text) {
  if (current !== "zh-CN") return text;
  for (const [pattern, zh] of REASONS_ZH) if (pattern.test(text)) return text.replace(pattern, zh);
  return text;
}
