"""Search evidence: the full text of the pages the agent visited; distractors are results it saw but did not open.

Visited pages (gold, kind `page`):
- `visit_webpage` / `visit` / `open` / `fetch` ... steps with a `url` argument: the observation is the page
  (`Error fetching ...` observations are not pages);
- smolagents CodeAgent steps whose code calls `visit_webpage` once with a literal url: the execution log is the page;
- ReAct `search` steps whose observation is a Wikipedia paragraph: a page titled with the searched entity (url
  `https://en.wikipedia.org/wiki/<Entity>`); the sentences later found by `lookup` on it are appended to it.
  `Could not find [X]. Similar: [...]` is not a page.
Pages are deduplicated by url (a page visited twice keeps its most complete text). One observation holding the
pages of several visits (smolagents `joined_observations`) is one page titled with all their urls: it is never
replaced by a later visit of one of them, nor by one cached page. A page whose whole text is part of another page
(the same page seen again on its own, a ReAct search that found the same article twice) is not a second document.

Seen but not opened (distractors, kind `snippet`): entries of search-result listings (smolagents markdown
`0. [Title](url)` + snippet, Search-R1 `Doc k(Title: ...) text` blocks, ReAct `Similar: [...]` titles) whose url /
title was never visited. With a page cache, an unopened result whose url is cached becomes a `page` distractor.

Page cache (`opts.page_cache_dir`, optional): full texts by url, in either or both of
- `index.jsonl`: one `{"url": "...", "text": "..."}` object per line;
- `<sha256 of the normalized url>.txt` files (`cache_key(url)` gives the name without `.txt`).
Urls are normalized (lower-case scheme and host, no fragment, no trailing slash) before matching. The cache supplies
the text of visited pages whose observation was truncated (smolagents cuts pages at 40,000 characters) and the
unopened-result distractors; a complete observation is always used as is (it is what the agent read).

No visited page: when the answer (gold, else the agent's final answer) appears in some of the snippets the agent
saw, those snippets are the gold evidence and the rest are distractors (SimpleQA-style runs often answer from the
result listing alone; Search-R1 only ever sees retrieved passages). Otherwise CompileError: nothing to compile.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from dataset_builder.domains import CompileError, DomainOptions, Evidence
from dataset_builder.schema import Piece, Step, Trajectory

VISIT_TOOLS = {
    "visit_webpage",
    "visit",
    "open",
    "fetch",
    "open_url",
    "fetch_url",
    "visit_page",
    "browse",
    "get_webpage",
}
SEARCH_TOOLS = {
    "web_search",
    "search",
    "google_search",
    "duckduckgo_search",
    "bing_search",
    "wikipedia_search",
    "retrieve",
}
CODE_TOOLS = {"python_interpreter", "python", "code"}
TRUNCATION_MARKERS = ("..._This content has been truncated to stay below", "(truncated)")
NOT_A_PAGE = re.compile(  # tool errors and empty results (a page may well start with "Error correction ...")
    r"^\s*(Error fetching|Error:|An error occurred|Could not find|There were no results|No results found|"
    r"Request timed out|The request timed out|Failed to (fetch|retrieve|load))",
    re.IGNORECASE,
)
MD_RESULT = re.compile(r"^\s*(?:\d+\.\s+)?\[(.+)\]\((https?://\S+)\)\s*$")
DOC_START = re.compile(r"(?:^|\n)\s*Doc\s*\d+\s*\(Title:\s*")


@dataclass
class Result:
    """One search result the agent saw: title, url (may be empty), snippet text."""

    title: str
    url: str
    text: str


@dataclass
class Page:
    title: str
    url: str
    text: str
    truncated: bool = False
    source: str = "observation"
    key: str = ""  # what identifies it among the visited pages: its normalized url, or all urls of a joined page


def extract(traj: Trajectory, opts: DomainOptions) -> Evidence:
    cache = page_cache(str(opts.page_cache_dir)) if opts.page_cache_dir else None
    pages: dict[str, Page] = {}
    results: list[Result] = []
    notes: list[str] = []
    last_page: Page | None = None
    followers = _joined_followers(traj)  # step -> the later calls whose output is in its observation
    in_a_group = {j for group in followers.values() for j in group}
    also_visited: set[str] = set()
    for i, step in enumerate(traj.steps):
        tool = step.tool.strip().lower()
        obs = _clean(step.observation)
        if i in in_a_group and not obs:
            continue
        if tool == "lookup":
            if last_page is not None and obs.startswith("(Result"):
                last_page.text += "\n\n" + obs
            continue
        page = None
        listing = tool in SEARCH_TOOLS or "## Search Results" in obs
        if tool in VISIT_TOOLS or (not listing and _arg(step, "url")):
            page = _visited_page(_arg(step, "url"), obs, i, notes)
        elif tool in CODE_TOOLS:
            page = _code_visit(step, obs, i, notes)
        if listing:
            found = parse_results(obs)
            results += found
            if not found and tool == "search" and "## Search Results" not in obs and not NOT_A_PAGE.match(obs):
                query = _arg(step, "query") or _arg(step, "entity")
                if query and obs:  # ReAct: Search[entity] returned the entity's Wikipedia paragraph
                    page = Page(title=query, url=wiki_url(query), text=obs)
        if page is not None and followers.get(i):
            urls = [u for j in followers[i] if (u := _arg(traj.steps[j], "url"))]
            if urls:  # one observation for several visits: all of them count as opened
                page.title = " + ".join([page.url, *urls])
                page.key = " + ".join(normalize_url(u) for u in [page.url, *urls])
                also_visited.update(normalize_url(u) for u in urls)
                notes.append(f"step {i}: one observation holds the pages of {len(urls) + 1} visits")
        if page is not None:
            joined = bool(page.key)
            if cache is not None and page.truncated and not joined and (full := cache.get(page.url)):
                page.text, page.truncated, page.source = full, False, "cache"
            key = page.key or normalize_url(page.url)
            if key not in pages or _more_complete(page, pages[key]):
                pages[key] = page
            last_page = pages[key]
    opened = {normalize_url(p.url) for p in pages.values()}
    pages = _without_repeated_text(pages, notes)

    answer_key = traj.gold or traj.final_answer
    seen = opened | also_visited
    snippets: list[tuple[str, Piece]] = []  # (url, piece) of each result seen but not opened, once
    for r in results:
        key = normalize_url(r.url) if r.url else ""
        text = r.text if r.text.startswith(r.title) else f"{r.title}\n{r.text}".strip()
        if key in seen or any(p.text == text and p.title == (r.url or r.title) for _, p in snippets):
            continue
        if key:
            seen.add(key)
        snippets.append((r.url, Piece(kind="snippet", title=r.url or r.title, text=text, is_distractor=True)))

    def distractor(url: str, piece: Piece) -> Piece:
        """An unopened result: its cached page when the cache has it, else the snippet the agent saw."""
        full = cache.get(url) if cache is not None and url else None
        return Piece(kind="page", title=url, text=full, is_distractor=True) if full else piece

    meta: dict[str, Any] = {"n_results_seen": len(results)}
    if pages:
        gold = [Piece(kind="page", title=p.title, text=p.text) for p in pages.values()]
        meta["evidence"] = "pages"
        meta["urls"] = [p.url for p in pages.values() if p.url]
        meta["pages"] = [
            {"title": p.title, "url": p.url, "source": p.source, "truncated": p.truncated} for p in pages.values()
        ]
        distractors = [distractor(url, piece) for url, piece in snippets]
    else:
        if not answer_key.strip():
            raise CompileError("no visited page and no answer to look for in the search snippets: nothing to compile")
        matching = [k for k, (_, piece) in enumerate(snippets) if contains_answer(piece.text, answer_key)]
        if not matching:
            raise CompileError(
                "no visited page: nothing to compile (the agent only saw search snippets"
                + (", and none of them contains the answer)" if snippets else ")")
            )
        gold = [Piece(kind="snippet", title=snippets[k][1].title, text=snippets[k][1].text) for k in matching]
        distractors = [distractor(url, piece) for k, (url, piece) in enumerate(snippets) if k not in matching]
        meta["evidence"] = "snippets"
        meta["urls"] = [snippets[k][0] for k in matching if snippets[k][0]]
    if notes:
        meta["notes"] = notes
    return Evidence(gold=gold, distractors=distractors, answer=traj.final_answer, gold_answer=traj.gold, meta=meta)


def _joined_followers(traj: Trajectory) -> dict[int, list[int]]:
    """meta["joined_observations"] (smolagents): steps whose observation also holds the output of the next calls
    of the same turn, which were left with an empty observation."""
    out: dict[int, list[int]] = {}
    for i in traj.meta.get("joined_observations") or []:
        if isinstance(i, int) and 0 <= i < len(traj.steps):
            j = i + 1
            while j < len(traj.steps) and not traj.steps[j].observation.strip():
                j += 1
            out[i] = list(range(i + 1, j))
    return out


def _without_repeated_text(pages: dict[str, Page], notes: list[str]) -> dict[str, Page]:
    """The pages less those whose whole text lies inside another (longer, or earlier and equal) page."""
    kept: list[Page] = []
    for page in sorted(pages.values(), key=lambda p: -len(p.text.strip())):  # stable: equal texts keep the first
        inside = next((other for other in kept if page.text.strip() in other.text), None)
        if inside is None:
            kept.append(page)
        else:
            notes.append(f"page {page.title} is part of page {inside.title}: not a second document")
    return {key: page for key, page in pages.items() if any(page is k for k in kept)}


def _more_complete(new: Page, old: Page) -> bool:
    return (not new.truncated, len(new.text)) > (not old.truncated, len(old.text))


def _arg(step: Step, name: str) -> str:
    value = step.args.get(name)
    return value.strip() if isinstance(value, str) else ""


def _clean(obs: str) -> str:
    obs = (obs or "").replace("\r\n", "\n")
    return re.sub(r"^\s*Observation:\s*\n", "", obs).strip()


def _visited_page(url: str, obs: str, index: int, notes: list[str]) -> Page | None:
    if not url:
        return None
    if not obs or NOT_A_PAGE.match(obs):
        notes.append(f"step {index}: visit of {url} returned no page: {obs[:120]!r}")
        return None
    truncated = any(marker in obs for marker in TRUNCATION_MARKERS)
    return Page(title=url, url=url, text=obs, truncated=truncated)


def _code_visit(step: Step, obs: str, index: int, notes: list[str]) -> Page | None:
    """A CodeAgent step that visited exactly one literal url: its execution log is the page."""
    code = step.args.get("code") or step.args.get("arguments") or ""
    if not isinstance(code, str) or "visit_webpage" not in code:
        return None
    urls = literal_call_args(code, "visit_webpage", "url")
    if len(urls) != 1:
        notes.append(f"step {index}: code visits {len(urls) or 'non-literal'} url(s); page text cannot be attributed")
        return None
    body = re.sub(r"^Execution logs:\n", "", obs)
    body = re.split(r"\nLast output from code snippet:\n", body)[0].strip()
    if not body or NOT_A_PAGE.match(body) or "Code execution failed" in obs[:300]:
        notes.append(f"step {index}: visit of {urls[0]} failed")
        return None
    return _visited_page(urls[0], body, index, notes)


def literal_call_args(code: str, func: str, keyword: str) -> list[str]:
    """String arguments of calls `func("...")` / `func(keyword="...")` / `func(name)` with `name = "..."` in code."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):  # ValueError: NUL bytes in the code
        return []
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names[target.id] = node.value.value
    found: list[str] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == func):
            continue
        args = list(node.args[:1]) + [k.value for k in node.keywords if k.arg == keyword]
        for arg in args[:1]:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.append(arg.value)
            elif isinstance(arg, ast.Name) and arg.id in names:
                found.append(names[arg.id])
            else:
                return []  # a url computed at run time: unknown
    return found


# ---------------------------------------------------------------- result listings


def parse_results(text: str) -> list[Result]:
    """Search results in an observation: markdown listings, Search-R1 Doc blocks, ReAct `Similar:` lists."""
    if m := re.match(r"Could not find \[?(.*?)\]?\. Similar: (\[.*\])", text, re.DOTALL):
        try:
            titles = ast.literal_eval(m.group(2).strip().rstrip("."))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return []
        return [Result(title=str(t), url=wiki_url(str(t)), text=str(t)) for t in titles if str(t).strip()]
    if DOC_START.search(text):
        return _doc_blocks(text)
    return _markdown_results(text)


def _markdown_results(text: str) -> list[Result]:
    out: list[Result] = []
    current: Result | None = None
    body: list[str] = []
    for line in text.split("\n"):
        m = MD_RESULT.match(line)
        if m:
            if current:
                current.text = "\n".join(body).strip()
                out.append(current)
            current, body = Result(title=m.group(1).strip(), url=m.group(2), text=""), []
        elif current is not None:
            body.append(line)
    if current:
        current.text = "\n".join(body).strip()
        out.append(current)
    return out


def _doc_blocks(text: str) -> list[Result]:
    out: list[Result] = []
    starts = list(DOC_START.finditer(text))
    for n, m in enumerate(starts):
        end = starts[n + 1].start() if n + 1 < len(starts) else len(text)
        block = text[m.end() : end]
        title, rest = _split_title(block)
        rest = re.sub(r"</?information>\s*$", "", rest.strip()).strip()
        out.append(Result(title=title, url="", text=rest))
    return out


def _split_title(block: str) -> tuple[str, str]:
    """`"Creed (band)") Creed was ...` -> (`Creed (band)`, `Creed was ...`): the title ends at its balancing paren."""
    if block.startswith('"'):
        end = block.find('")', 1)
        if end > 0:
            return block[1:end], block[end + 2 :]
    depth = 0
    for i, ch in enumerate(block):
        if ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                return block[:i].strip().strip('"'), block[i + 1 :]
            depth -= 1
    return block.split("\n", 1)[0].strip(), block


# ---------------------------------------------------------------- answers in snippets


def normalize_answer(text: str) -> str:
    """SQuAD-style normalization: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def contains_answer(text: str, answer: str) -> bool:
    want = normalize_answer(answer)
    return bool(want) and f" {want} " in f" {normalize_answer(text)} "


# ---------------------------------------------------------------- urls and the page cache


def wiki_url(title: str) -> str:
    return "https://en.wikipedia.org/wiki/" + quote(title.strip().replace(" ", "_"), safe="()_,'-.:")


@lru_cache(maxsize=65536)
def normalize_url(url: str) -> str:
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme:
        return url
    path = parts.path.rstrip("/") if parts.path not in ("", "/") else ""
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def cache_key(url: str) -> str:
    """File name (without `.txt`) of a url in a page cache directory."""
    return hashlib.sha256(normalize_url(url).encode("utf-8")).hexdigest()


class PageCache:
    """Full page texts by url: `index.jsonl` lines and/or `<cache_key(url)>.txt` files in one directory."""

    def __init__(self, root: Path):
        self.root = root
        self._offsets: dict[str, int] = {}
        index = root / "index.jsonl"
        if index.is_file():
            with open(index, "rb") as f:
                offset = 0
                for line in f:
                    try:
                        url = json.loads(line).get("url")
                    except (ValueError, AttributeError):
                        url = None
                    if isinstance(url, str):
                        self._offsets.setdefault(normalize_url(url), offset)
                    offset += len(line)

    def get(self, url: str) -> str | None:
        if not url:
            return None
        key = normalize_url(url)
        if key in self._offsets:
            with open(self.root / "index.jsonl", "rb") as f:
                f.seek(self._offsets[key])
                try:
                    text = json.loads(f.readline()).get("text")
                except ValueError:  # the file changed since it was indexed
                    text = None
            if isinstance(text, str) and text.strip():
                return text
        path = self.root / f"{cache_key(url)}.txt"
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            return text if text.strip() else None
        return None


@lru_cache(maxsize=8)
def page_cache(root: str) -> PageCache:
    path = Path(root)
    if not path.is_dir():
        raise CompileError(f"page cache directory {root} does not exist")
    return PageCache(path)
