"""Tool names of every harness, mapped in one table to the actions the domain compilers read.

A new source is a table entry here, not a new compiler. `normalize(name, args)` gives the tool name and arguments
the compilers understand:

    kind        compilers' tool name        what the compiler does with it
    shell       bash (args: command)        swe: views (cat/sed/head), listings, edits by redirection
    editor      str_replace_editor          swe: view / create / str_replace / insert (args: command, path, ...)
    swe_agent   the command itself          swe: SWE-agent windowed editor (open, goto, edit, find_file, ...)
    search      web_search (args: query)    search: result listings (snippets, distractors)
    open_page   visit_webpage (args: url)   search: the page the agent read (gold evidence)
    run_sql     sql_db_query (args: sql)    sql: the tables the statement reads
    sql_schema  sql_db_schema               sql: the tables the agent asked about (args: table_names)
    python      python                      swe: an opaque command (may change the files it names)
    finish      submit / final_answer       the end of the run (its text is the final answer)

Names are matched lower-cased, exactly first, then by MCP server prefix (`exa-search-web_search_exa`: the part
after the server name), then by the patterns at the bottom. Unknown names are kept as they are.
"""

from __future__ import annotations

import re
from typing import Any

CANONICAL = {
    "shell": "bash",
    "editor": "str_replace_editor",
    "search": "web_search",
    "open_page": "visit_webpage",
    "run_sql": "sql_db_query",
    "sql_schema": "sql_db_schema",
    "python": "python",
}

TOOL_KINDS: dict[str, str] = {
    # shells
    "bash": "shell", "execute_bash": "shell", "run": "shell", "shell": "shell", "terminal": "shell",
    "execute_command": "shell", "run_command": "shell", "cmd_run": "shell", "exec": "shell", "cmd": "shell",
    # file editors (OpenHands, Anthropic, SWE-agent 1.x)
    "str_replace_editor": "editor", "str_replace_based_edit_tool": "editor", "file_editor": "editor",
    "text_editor": "editor", "edit_file": "editor",
    # SWE-agent windowed-editor commands (the swe compiler reads them by name)
    "open": "swe_agent", "goto": "swe_agent", "scroll_up": "swe_agent", "scroll_down": "swe_agent",
    "create": "swe_agent", "edit": "swe_agent", "insert": "swe_agent", "append": "swe_agent",
    "find_file": "swe_agent", "search_dir": "swe_agent", "search_file": "swe_agent", "submit": "finish",
    # python
    "execute_ipython_cell": "python", "ipython": "python", "run_ipython": "python", "python": "python",
    "python_interpreter": "python",
    # web search and pages
    "web_search": "search", "search": "search", "google_search": "search", "bing_search": "search",
    "duckduckgo_search": "search", "brave_web_search": "search", "tavily_search": "search", "tavily-search": "search",
    "web_search_exa": "search", "search_web": "search", "wikipedia_search": "search",
    "visit_webpage": "open_page", "visit": "open_page", "fetch": "open_page", "fetch_url": "open_page",
    "open_url": "open_page", "browse": "open_page", "scrape": "open_page", "crawl": "open_page",
    "firecrawl_scrape": "open_page", "tavily-extract": "open_page", "get_webpage": "open_page",
    "crawling_exa": "open_page", "fetch_html": "open_page", "fetch_markdown": "open_page",
    # SQL
    "sql_db_query": "run_sql", "execute_sql": "run_sql", "execute_mysql": "run_sql", "run_query": "run_sql",
    "query": "run_sql", "mysql_query": "run_sql", "sqlite_query": "run_sql", "read_query": "run_sql",
    "execute_snowflake_sql": "run_sql", "operation": "run_sql",
    "sql_db_schema": "sql_schema", "describe_table": "sql_schema", "sql_db_list_tables": "sql_schema",
    "list_tables": "sql_schema",
    # the end of a run
    "finish": "finish", "final_answer": "finish", "terminate": "finish", "answer": "finish",
}  # fmt: skip

PATTERNS: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(r"(^|[_-])(fetch|scrape|crawl|visit|read_url|get_page|extract)([_-]|$)"), "open_page"),
    (re.compile(r"(^|[_-])(web_?search|search_web|google|bing|brave|duckduckgo|serp|tavily)([_-]|$)"), "search"),
    (re.compile(r"(^|[_-])(sql|query_db|run_query)([_-]|$)"), "run_sql"),
)
SQL_ARG_KEYS = ("sql", "query", "sql_query", "statement", "command")
URL_ARG_KEYS = ("url", "urls", "link", "href", "page")
QUERY_ARG_KEYS = ("query", "q", "search_query", "queries", "input")


def kind_of(name: str) -> str:
    key = name.strip().lower()
    if key in TOOL_KINDS:
        return TOOL_KINDS[key]
    if "-" in key:  # MCP tools are named <server>-<tool>
        for k in range(key.count("-"), 0, -1):
            tail = key.split("-", k)[-1]
            if tail in TOOL_KINDS:
                return TOOL_KINDS[tail]
    for pattern, kind in PATTERNS:
        if pattern.search(key):
            return kind
    return ""


def normalize(name: str, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(tool name, arguments) as the domain compilers read them; unknown tools unchanged."""
    kind = kind_of(name)
    args = dict(args)
    if kind in ("", "swe_agent", "finish"):
        return (name.strip().lower() if kind else name), args
    if kind == "open_page":
        url = _first_str(args, URL_ARG_KEYS)
        if url:
            args["url"] = url
    elif kind == "search":
        query = _first_str(args, QUERY_ARG_KEYS)
        if query:
            args["query"] = query
    elif kind == "run_sql":
        sql = _first_str(args, SQL_ARG_KEYS)
        if sql:
            args["sql"] = sql
    elif kind == "shell" and "command" not in args:
        command = _first_str(args, ("cmd", "code", "input", "script"))
        if command:
            args["command"] = command
    return CANONICAL[kind], args


def _first_str(args: dict[str, Any], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = args.get(key)
        if isinstance(value, list) and value and isinstance(value[0], str):
            value = value[0]
        if isinstance(value, str) and value.strip():
            return value
    return ""
