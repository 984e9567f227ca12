"""robots.txt rules of one origin, read with the standard library's ``urllib.robotparser``.

How an answer for ``/robots.txt`` becomes rules follows RFC 9309 (and the standard library's
own reading): a 401 or 403 forbids the whole site, any other 4xx (no file) allows it all. A
server error or an unreachable host is not an answer: the crawler retries later rather than
guessing. The text that was read is kept in the crawl status, so a resumed crawl applies the
same rules without fetching the file again.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.robotparser import RobotFileParser

DISALLOW_ALL = "User-agent: *\nDisallow: /\n"
ALLOW_ALL = ""


def text_for_status(status: int, body: str) -> str | None:
    """The rules to keep for an HTTP answer to ``/robots.txt``, or None when it says nothing
    yet (5xx: ask again later)."""
    if 200 <= status < 300:
        return body
    if status in (401, 403):
        return DISALLOW_ALL
    if 400 <= status < 500:
        return ALLOW_ALL
    return None


def robots_name(user_agent: str) -> str:
    """The name robots.txt groups are matched against: the product of a plain user agent
    (``mybot/1.0`` -> ``mybot``), or the crawler named in a browser-style one
    (``Mozilla/5.0 (compatible; Sluice/1.0; +https://...)`` -> ``Sluice``), since every
    crawler, not only a browser, would otherwise match rules meant for ``Mozilla``."""
    marker = "compatible;"
    lowered = user_agent.lower()
    if lowered.startswith("mozilla/") and marker in lowered:
        inside = user_agent[lowered.index(marker) + len(marker) :]
        name = inside.split(";", 1)[0].split(")", 1)[0].split("/", 1)[0].strip()
        if name:
            return name
    return user_agent.split("/", 1)[0].strip() or user_agent


@dataclass(frozen=True)
class Robots:
    parser: RobotFileParser
    user_agent: str

    @classmethod
    def parse(cls, text: str, user_agent: str) -> Robots:
        parser = RobotFileParser()
        parser.parse(text.splitlines())
        # Marks the rules as read: crawl_delay() answers nothing before.
        parser.modified()
        return cls(parser, robots_name(user_agent))

    def allows(self, url: str) -> bool:
        return self.parser.can_fetch(self.user_agent, url)

    def delay(self) -> float:
        """The ``Crawl-delay`` for our user agent, in seconds (0 when none)."""
        value = self.parser.crawl_delay(self.user_agent)
        try:
            return max(0.0, float(value)) if value is not None else 0.0
        except ValueError:
            return 0.0

    def sitemaps(self) -> list[str]:
        return list(self.parser.site_maps() or ())
