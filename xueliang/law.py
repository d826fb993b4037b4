"""Plain-language legal information (法律政策宣传), by life situation, in the household's
language, paged for a TV screen."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from xueliang import validation
from xueliang.errors import NotFound
from xueliang.storage.tables import law_articles
from xueliang.storage.types import utcnow
from xueliang.storage.upsert import insert_or_update

Category = Literal["family", "land", "labour", "fraud", "consumer", "elderly"]
Lang = Literal["zh_CN", "en"]
CATEGORIES: tuple[str, ...] = get_args(Category)
LANGS: tuple[str, ...] = get_args(Lang)
DEFAULT_LANG: Lang = "zh_CN"

_Line = Annotated[str, Field(min_length=1, pattern=r"^[^\x00-\x1f\x7f]+$")]


class ArticleInput(BaseModel):
    """An article as staff (or the demo file) write it; validated before storing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,47}$")]
    lang: Lang
    category: Category
    title: Annotated[_Line, Field(max_length=100)]
    summary: Annotated[str, Field(max_length=300, pattern=r"^[^\x00-\x1f\x7f]*$")] = ""
    body: Annotated[
        list[Annotated[_Line, Field(max_length=2000)]], Field(min_length=1, max_length=60)
    ]
    law: Annotated[str, Field(max_length=300, pattern=r"^[^\x00-\x1f\x7f]*$")] = ""
    in_force: date
    reviewed: date


@dataclass(frozen=True, slots=True)
class Article:
    id: str
    lang: str
    category: str
    title: str
    summary: str
    paragraphs: tuple[str, ...]
    law: str
    in_force: date
    reviewed: date

    def pages(self, budget: int) -> list[tuple[str, ...]]:
        """Paragraphs grouped into screens of about `budget` characters; a long
        paragraph is cut at sentence ends so that no screen overflows."""
        pieces = [piece for p in self.paragraphs for piece in _split(p, budget)]
        pages: list[tuple[str, ...]] = []
        current: list[str] = []
        used = 0
        for piece in pieces:
            if current and used + len(piece) > budget:
                pages.append(tuple(current))
                current, used = [], 0
            current.append(piece)
            used += len(piece)
        if current:
            pages.append(tuple(current))
        return pages


def _split(paragraph: str, budget: int) -> list[str]:
    if len(paragraph) <= budget:
        return [paragraph]
    parts: list[str] = []
    rest = paragraph
    while len(rest) > budget:
        window = rest[:budget]
        cut = max(window.rfind(mark) for mark in ("。", "；", "！", "？", ". ", "; "))
        cut = cut + 1 if cut > budget // 3 else budget
        parts.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        parts.append(rest)
    return parts


def check(data: dict[str, Any]) -> ArticleInput:
    """Validate an article; the first problem is raised as InvalidInput."""
    return validation.model(ArticleInput, data, "article")


async def put(conn: AsyncConnection, article: ArticleInput) -> None:
    """Create or replace one language version of an article."""
    values = {
        "category": article.category,
        "title": article.title,
        "summary": article.summary,
        "body": "\n\n".join(article.body),
        "law": article.law,
        "in_force": article.in_force,
        "reviewed": article.reviewed,
        "updated_at": utcnow(),
    }
    key = {"id": article.id, "lang": article.lang}
    await insert_or_update(conn, law_articles, key, values)


async def in_category(conn: AsyncConnection, category: str, lang: str) -> list[Article]:
    """The category's articles in `lang`, each falling back to Chinese where untranslated."""
    if category not in CATEGORIES:
        raise NotFound("category", category)
    rows = await conn.execute(
        select(law_articles)
        .where(law_articles.c.category == category, law_articles.c.lang.in_({lang, DEFAULT_LANG}))
        .order_by(law_articles.c.id)
    )
    return _preferred(rows, lang)


async def get(conn: AsyncConnection, id: str, lang: str) -> Article:
    rows = await conn.execute(
        select(law_articles).where(
            law_articles.c.id == id, law_articles.c.lang.in_({lang, DEFAULT_LANG})
        )
    )
    found = _preferred(rows, lang)
    if not found:
        raise NotFound("article", id)
    return found[0]


async def counts(conn: AsyncConnection) -> dict[str, int]:
    """Articles per category (counting each article once, whatever its languages)."""
    rows = await conn.execute(
        select(law_articles.c.category, func.count(func.distinct(law_articles.c.id))).group_by(
            law_articles.c.category
        )
    )
    return {row[0]: row[1] for row in rows}


def demo_articles() -> list[ArticleInput]:
    """The demo set written for this project (xueliang/data/law_articles.json)."""
    text = resources.files("xueliang").joinpath("data/law_articles.json").read_text("utf-8")
    return [check(item) for item in json.loads(text)["articles"]]


async def seed_demo(conn: AsyncConnection) -> int:
    """Add the demo articles that are missing; never overwrite what staff edited."""
    existing = {
        (r.id, r.lang) for r in await conn.execute(select(law_articles.c.id, law_articles.c.lang))
    }
    added = 0
    for article in demo_articles():
        if (article.id, article.lang) not in existing:
            await put(conn, article)
            added += 1
    return added


def _preferred(rows: Any, lang: str) -> list[Article]:
    by_id: dict[str, Row[Any]] = {}
    for row in rows:
        if row.id not in by_id or row.lang == lang:
            by_id[row.id] = row
    return [_article(by_id[id]) for id in sorted(by_id)]


def _article(row: Row[Any]) -> Article:
    return Article(
        id=row.id,
        lang=row.lang,
        category=row.category,
        title=row.title,
        summary=row.summary,
        paragraphs=tuple(p for p in row.body.split("\n\n") if p),
        law=row.law,
        in_force=row.in_force,
        reviewed=row.reviewed,
    )
