"""The site's interface strings, per language: English, Chinese, Hindi; English fills any gap.

Templates read them as ``t.<key>``; a string with ``%(name)s`` takes values through jinja's
``format`` filter. Add a language by adding a mapping: keys it lacks fall back to English.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from types import MappingProxyType

ENGLISH: Mapping[str, str] = {
    "top_stories": "Top stories of the last %(window)s",
    "channel_stories": "%(channel)s: top stories of the last %(window)s",
    "no_stories": "No stories in the last %(window)s yet. Check back after the next crawl.",
    "all_stories": "All stories",
    "back": "← All stories",
    "channels": "Channels",
    "feeds": "Feeds",
    "first_seen": "first seen %(time)s",
    "updated": "updated %(time)s",
    "whats_new": "What's new:",
    "why_it_matters": "Why it matters:",
    "talking_points": "Talking points",
    "perspectives": "Perspectives",
    "timeline": "Timeline",
    "no_summary": "No summary yet: read the sources below.",
    "sources_heading": "Sources (%(n)s)",
    "more_sources": "and %(n)s more sources",
    "also_in": "also in %(names)s",
    "list_sep": ", ",
    "names_and": "%(names)s and %(last)s",
    "names_more": "%(names)s and %(n)s more",
    "sources_1": "1 source",
    "sources_n": "%(n)s sources",
    "languages_n": "in %(n)s languages",
    "articles_n": "%(n)s articles",
    "sources_label": "Sources:",
    "just_now": "just now",
    "minutes_ago": "%(n)s min ago",
    "hours_ago": "%(n)s h ago",
    "days_ago": "%(n)s days ago",
    "footer_updated": "Updated %(time)s.",
    "footer_note": "Summaries are machine-written from the linked sources; "
    "follow the citations to check them.",
    "made_with": "Made with",
    "summaries_line": "Summaries: %(parts)s.",
    "summaries_by": "%(n)s by %(model)s",
    "summaries_extractive": "%(n)s extractive",
    "now_part_of": "This story is now part of",
    "window_1": "1 hour",
    "history": "How the story grew",
    "history_first": "first reported by %(names)s",
    "history_added": "%(names)s reported",
    "related": "Related stories",
    "search": "Search",
    "weekdays": "Mon Tue Wed Thu Fri Sat Sun",
    "months": "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec",
    "date": "%(weekday)s %(day)s %(month)s %(year)s",
    "date_time": "%(date)s, %(time)s UTC",
    "window_n": "%(n)s hours",
    "edition": "Daily edition",
    "editions": "Daily editions",
    "edition_of": "Top stories of %(day)s",
    "edition_final": "As the day ended; last updated %(time)s.",
    "edition_so_far": "Today so far, updated %(time)s; the edition is final when the day ends.",
    "edition_stories_n": "%(n)s stories",
    "previous_day": "← Previous day",
    "next_day": "Next day →",
    "no_editions": "No editions yet.",
    "digest_title": "%(site)s · daily edition",
    "digest_entry": "Daily edition: %(day)s",
    "all_feeds": "All feeds (OPML)",
}

_CHINESE: Mapping[str, str] = {
    "top_stories": "过去%(window)s的热门新闻",
    "channel_stories": "%(channel)s：过去%(window)s的热门新闻",
    "no_stories": "过去%(window)s还没有新闻。请在下次抓取后再来看看。",
    "all_stories": "全部新闻",
    "back": "← 全部新闻",
    "channels": "频道",
    "feeds": "订阅",
    "first_seen": "首次出现于%(time)s",
    "updated": "更新于%(time)s",
    "whats_new": "最新进展：",
    "no_summary": "暂无摘要：请阅读下面的来源。",
    "sources_heading": "来源（%(n)s）",
    "more_sources": "另有 %(n)s 个来源",
    "also_in": "亦见于 %(names)s",
    "list_sep": "、",
    "names_and": "%(names)s和%(last)s",
    "names_more": "%(names)s等 %(n)s 家",
    "sources_1": "1 个来源",
    "sources_n": "%(n)s 个来源",
    "languages_n": "涵盖 %(n)s 种语言",
    "articles_n": "%(n)s 篇文章",
    "sources_label": "来源：",
    "just_now": "刚刚",
    "minutes_ago": "%(n)s 分钟前",
    "hours_ago": "%(n)s 小时前",
    "days_ago": "%(n)s 天前",
    "footer_updated": "更新于 %(time)s。",
    "footer_note": "摘要由机器根据所链接的来源撰写；请点击引用核实。",
    "made_with": "制作工具：",
    "summaries_line": "摘要：%(parts)s。",
    "summaries_by": "%(n)s 篇由 %(model)s 撰写",
    "summaries_extractive": "%(n)s 篇摘自原文",
    "now_part_of": "此新闻现已并入",
    "window_1": "1 小时",
    "history": "报道进展",
    "history_first": "%(names)s 首先报道",
    "history_added": "%(names)s 跟进报道",
    "related": "相关新闻",
    "search": "搜索",
    "weekdays": "周一 周二 周三 周四 周五 周六 周日",
    "months": "1月 2月 3月 4月 5月 6月 7月 8月 9月 10月 11月 12月",
    "date": "%(year)s年%(month)s%(day)s日（%(weekday)s）",
    "date_time": "%(date)s %(time)s UTC",
    "window_n": "%(n)s 小时",
    "edition": "每日版",
    "editions": "每日版",
    "edition_of": "%(day)s的热门新闻",
    "edition_final": "当日结束时的版本；最后更新于%(time)s。",
    "edition_so_far": "今日截至目前，更新于%(time)s；当日结束后定稿。",
    "edition_stories_n": "%(n)s 条新闻",
    "previous_day": "← 前一天",
    "next_day": "后一天 →",
    "no_editions": "还没有每日版。",
    "digest_title": "%(site)s · 每日版",
    "digest_entry": "每日版：%(day)s",
    "all_feeds": "全部订阅（OPML）",
}

_HINDI: Mapping[str, str] = {
    "top_stories": "पिछले %(window)s की प्रमुख ख़बरें",
    "channel_stories": "%(channel)s: पिछले %(window)s की प्रमुख ख़बरें",
    "no_stories": "पिछले %(window)s में अभी कोई ख़बर नहीं। अगली क्रॉल के बाद फिर देखें।",
    "all_stories": "सभी ख़बरें",
    "back": "← सभी ख़बरें",
    "channels": "चैनल",
    "feeds": "फ़ीड",
    "first_seen": "पहली बार %(time)s",
    "updated": "अपडेट %(time)s",
    "whats_new": "नया क्या है:",
    "no_summary": "अभी सारांश नहीं: नीचे दिए स्रोत पढ़ें।",
    "sources_heading": "स्रोत (%(n)s)",
    "more_sources": "और %(n)s स्रोत",
    "also_in": "%(names)s में भी",
    "names_and": "%(names)s और %(last)s",
    "names_more": "%(names)s और %(n)s अन्य",
    "sources_1": "1 स्रोत",
    "sources_n": "%(n)s स्रोत",
    "languages_n": "%(n)s भाषाओं में",
    "articles_n": "%(n)s लेख",
    "sources_label": "स्रोत:",
    "just_now": "अभी",
    "minutes_ago": "%(n)s मिनट पहले",
    "hours_ago": "%(n)s घंटे पहले",
    "days_ago": "%(n)s दिन पहले",
    "footer_updated": "अपडेट %(time)s।",
    "footer_note": "सारांश लिंक किए गए स्रोतों से मशीन द्वारा लिखे गए हैं; जाँचने के लिए उद्धरण देखें।",
    "made_with": "बनाया गया",
    "summaries_line": "सारांश: %(parts)s।",
    "summaries_by": "%(n)s %(model)s द्वारा",
    "summaries_extractive": "%(n)s स्रोतों के वाक्यों से",
    "now_part_of": "यह ख़बर अब इसका हिस्सा है:",
    "window_1": "1 घंटे",
    "history": "ख़बर कैसे बढ़ी",
    "history_first": "सबसे पहले %(names)s ने बताया",
    "history_added": "%(names)s ने बताया",
    "related": "संबंधित ख़बरें",
    "search": "खोजें",
    "weekdays": "सोम मंगल बुध गुरु शुक्र शनि रवि",
    "months": "जनवरी फ़रवरी मार्च अप्रैल मई जून जुलाई अगस्त सितंबर अक्टूबर नवंबर दिसंबर",
    "date": "%(weekday)s, %(day)s %(month)s %(year)s",
    "date_time": "%(date)s, %(time)s UTC",
    "window_n": "%(n)s घंटों",
    "edition": "दैनिक संस्करण",
    "editions": "दैनिक संस्करण",
    "edition_of": "%(day)s की प्रमुख ख़बरें",
    "edition_final": "दिन के अंत का संस्करण; आख़िरी अपडेट %(time)s।",
    "edition_so_far": "आज अब तक, अपडेट %(time)s; दिन ख़त्म होने पर संस्करण अंतिम होगा।",
    "edition_stories_n": "%(n)s ख़बरें",
    "previous_day": "← पिछला दिन",
    "next_day": "अगला दिन →",
    "no_editions": "अभी कोई संस्करण नहीं।",
    "digest_title": "%(site)s · दैनिक संस्करण",
    "digest_entry": "दैनिक संस्करण: %(day)s",
    "all_feeds": "सभी फ़ीड (OPML)",
}

CATALOGUES: Mapping[str, Mapping[str, str]] = {"en": ENGLISH, "zh": _CHINESE, "hi": _HINDI}


def catalogue(language: str) -> Mapping[str, str]:
    """The strings for a language tag ("zh", "zh-Hans-CN", "hi-IN"); English fills any gap."""
    primary = language.strip().lower().replace("_", "-").split("-")[0]
    return MappingProxyType({**ENGLISH, **CATALOGUES.get(primary, {})})


def relative(hours: float, strings: Mapping[str, str]) -> str:
    """How long ago, rounded as times.ago rounds it, in the catalogue's words."""
    minutes = round(max(hours, 0.0) * 60)
    if minutes < 1:
        return strings["just_now"]
    if minutes < 60:
        return strings["minutes_ago"] % {"n": minutes}
    if round(hours) < 48:
        return strings["hours_ago"] % {"n": round(hours)}
    return strings["days_ago"] % {"n": round(hours / 24)}


def names(items: list[str], strings: Mapping[str, str], shown: int = 2) -> str:
    """A compact list of names: "Reuters", "Reuters and BBC", "Reuters, BBC and 7 more"."""
    sep = strings["list_sep"]
    if len(items) <= 1:
        return "".join(items)
    if len(items) <= shown + 1:
        return strings["names_and"] % {"names": sep.join(items[:-1]), "last": items[-1]}
    return strings["names_more"] % {"names": sep.join(items[:shown]), "n": len(items) - shown}


def date_text(day: date, strings: Mapping[str, str] = ENGLISH) -> str:
    """A calendar day for people, in the site's language: "Fri 14 Mar 2025", "2025年3月14日（周五）"
    (the formats are the catalogue's "date", "weekdays" and "months")."""
    weekdays, months = strings["weekdays"].split(), strings["months"].split()
    return strings["date"] % {
        "weekday": weekdays[day.weekday()],
        "day": day.day,
        "month": months[day.month - 1],
        "year": day.year,
    }


def date_time_text(when: datetime, strings: Mapping[str, str] = ENGLISH) -> str:
    """A UTC instant for people, in the site's language: "Fri 14 Mar 2025, 09:30 UTC"."""
    return strings["date_time"] % {"date": date_text(when.date(), strings), "time": f"{when:%H:%M}"}
