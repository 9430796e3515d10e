"""Fake credentials and personal data for the secret-scan tests, made at run time (no token-shaped literal is
committed, so no scanner flags this repository), and the decoys that must never be flagged."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import uuid
from pathlib import Path

UPPER, LOWER, DIGITS = string.ascii_uppercase, string.ascii_lowercase, string.digits
ALNUM = UPPER + LOWER + DIGITS


def rand(rng: random.Random, n: int, chars: str = ALNUM) -> str:
    return "".join(rng.choice(chars) for _ in range(n))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def fake_secrets(seed: int = 0) -> dict[str, tuple[str, str]]:
    """name -> (value, type the scanner must report). Every value is unique to `seed`."""
    rng = random.Random(seed)
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"sub": rand(rng, 8), "name": "Fern Ashby", "iat": 1716000000 + seed}).encode())
    key_body = "\n".join(rand(rng, 64, ALNUM + "+/") for _ in range(6))
    user, domain = rand(rng, 6, LOWER), rand(rng, 7, LOWER)
    return {
        "aws_access_key": ("AK" + "IA" + rand(rng, 16, UPPER + DIGITS), "aws_access_key"),
        "github_token": ("gh" + "p_" + rand(rng, 36), "github_token"),
        "github_fine_grained": ("github" + "_pat_" + rand(rng, 22) + "_" + rand(rng, 59), "github_token"),
        "hf_token": ("h" + "f_" + rand(rng, 34, UPPER + LOWER), "hf_token"),
        "anthropic_key": ("sk-" + "ant-api03-" + rand(rng, 93, ALNUM + "-_") + "AA", "anthropic_key"),
        "openai_project_key": ("sk-" + "proj-" + rand(rng, 74, ALNUM + "-_") + "A", "openai_key"),
        "openai_legacy_key": ("sk-" + rand(rng, 20) + "T3Blbk" + "FJ" + rand(rng, 20), "openai_key"),
        "slack_token": (
            "xo" + "xb-" + rand(rng, 12, DIGITS) + "-" + rand(rng, 13, DIGITS) + "-" + rand(rng, 24, LOWER + DIGITS),
            "slack_token",
        ),
        "stripe_key": ("sk" + "_live_" + rand(rng, 24), "stripe_key"),
        "google_api_key": ("AI" + "za" + rand(rng, 34, ALNUM + "_-") + "Q", "google_api_key"),
        "sendgrid_key": ("S" + "G." + rand(rng, 22) + "." + rand(rng, 43), "sendgrid_key"),
        "npm_token": ("np" + "m_" + rand(rng, 36), "npm_token"),
        "jwt": (f"{header}.{payload}.{b64url(rng.randbytes(32))}", "jwt"),
        "private_key": (
            "-----BEGIN RSA " + "PRIVATE KEY-----\n" + key_body + "\n-----END RSA " + "PRIVATE KEY-----",
            "private_key",
        ),
        "url_password": (f"{user}:P4ss{rand(rng, 10)}", "url_credentials"),  # inside postgres://...@host
        "env_password": ("Zq" + rand(rng, 14) + "9!", "credential_assignment"),  # DB_PASSWORD=...
        "quoted_api_key": (rand(rng, 32, LOWER + DIGITS), "credential_assignment"),  # api_key = "..."
        "bearer_token": (rand(rng, 40, ALNUM + "-_."), "bearer_token"),  # Authorization: Bearer ...
        "email": (f"{user}.{rand(rng, 5, LOWER)}@{domain}-mail.com", "email"),
        "public_ip": (
            f"{rng.randrange(40, 90)}.{rng.randrange(32, 250)}.{rng.randrange(1, 250)}.{rng.randrange(1, 250)}",
            "public_ip",
        ),
        "home_user": (f"{rand(rng, 3, LOWER)}{domain}", "home_user"),  # /home/<it>/project
    }


def in_context(name: str, value: str) -> str:
    """The secret as agent logs show it (env dumps, configs, curl, connection strings, file paths)."""
    return {
        "url_password": f"DATABASE_URL=postgres://{value}@db.internal:5432/app",
        "env_password": f"export DB_PASSWORD={value}",
        "quoted_api_key": f'client = Client(api_key="{value}")',
        "bearer_token": f'curl -H "Authorization: Bearer {value}" https://api.service.io/v1/items',
        "home_user": f'  File "/home/{value}/project/app.py", line 3, in <module>',
        "public_ip": f"Connecting to {value}:443... connected.",
    }.get(name, f"config value: {value} (loaded)")


def decoys(seed: int = 0) -> dict[str, str]:
    """Things code and logs are full of that are not secrets: they must come through every scan unchanged."""
    rng = random.Random(1000 + seed)
    sha = hashlib.sha1(rng.randbytes(8)).hexdigest()
    return {
        "git_sha": f"commit {sha}",
        "short_shas_in_diff": f"index {sha[:7]}..{hashlib.sha1(sha.encode()).hexdigest()[:7]} 100644",
        "uuid": f"request id {uuid.UUID(int=rng.getrandbits(128))}",
        "sha256_lock": f'"sha256:{hashlib.sha256(rng.randbytes(8)).hexdigest()}"',
        "npm_integrity": f'"integrity": "sha512-{base64.b64encode(hashlib.sha512(rng.randbytes(8)).digest()).decode()}"',
        "base64_data": f"DATA = b'{base64.b64encode(rng.randbytes(300)).decode()}'",
        "md5_in_test": f'assert digest == "{hashlib.md5(rng.randbytes(4)).hexdigest()}"',
        "private_ips": "listening on 127.0.0.1:8000, peer 10.0.3.7, gateway 192.168.1.1, docs 203.0.113.9",
        "version_numbers": "Requirement already satisfied: nvidia-cudnn-cu12==9.1.0.70 (from torch) (11.10.3.66)",
        "ssh_remote": "git@github.com:carrow/carrow-tides.git",
        "matrix_product": "y = x@self.weight.T + b",
        "code_credentials": 'password = get_password(user)\ntoken = os.environ["HF_TOKEN"]\nSECRET_KEY = settings.SECRET_KEY',
        "templated_url": "postgres://app:${DB_PASSWORD}@localhost/app",
        "url_home_path": "see https://uca.edu/politicalscience/home/research-projects/ for details",
        "example_email": "write to someone@example.com",
    }


# ---------------------------------------------------------------- a corpus of leaky trajectories, every domain

SAMPLES = Path(__file__).resolve().parents[2] / "dataset_builder" / "samples"
DOMAIN_SEEDS = {"search": 1, "swe": 2, "sql": 3}


def sample_rows(rel: str) -> list[dict]:
    return [json.loads(line) for line in (SAMPLES / rel).read_text().splitlines() if line.strip()]


def planted(domain: str) -> dict[str, tuple[str, str]]:
    return fake_secrets(DOMAIN_SEEDS[domain])


def lines_with(names: list[str], secrets: dict[str, tuple[str, str]]) -> str:
    return "\n".join(in_context(n, secrets[n][0]) for n in names)


def _ask(row: dict, question: str) -> None:
    row["question"] = question
    next(m for m in row["messages"] if m["role"] == "user")["content"] = question


def leaky_search(secrets) -> list[dict]:
    """Search runs (OpenAI messages): half the kinds in the result snippets, half in the opened page, an email in
    the question; decoys in the page."""
    names = sorted(secrets)
    rows = sample_rows("search/carrow_messages.jsonl")[:3]
    email = secrets["email"][0]
    for k, row in enumerate(rows):
        row["id"] = f"leaky-{row['id']}"
        _ask(row, row["question"] + f" (asked by {email})")
        tools = [m for m in row["messages"] if m["role"] == "tool"]
        tools[0]["content"] += "\n\n5. [Deploy notes](https://ops.carrow.example/deploy)\n" + lines_with(
            names[::2], secrets
        )
        tools[-1]["content"] += "\n\nFooter of the page:\n" + lines_with(names[1::2], secrets) + "\n"
        tools[-1]["content"] += "\n".join(decoys(k).values())
    return rows


def leaky_swe(secrets) -> list[dict]:
    """A SWE run (views of the files in observations): every kind at the end of the viewed file and in the test
    file, an email in the issue; decoys (SHAs, UUID, checksums) in the file; the diff's index line is a decoy too."""
    row = sample_rows("swe/tides_messages.jsonl")[0]
    row["id"] = "leaky-tides-1"
    _ask(row, row["question"].replace("</pr_description>", f"Reported by {secrets['email'][0]}\n</pr_description>"))
    names = sorted(secrets)
    for m in row["messages"]:
        if m["role"] == "tool" and "def parse_duration" in m["content"] and "<output>" in m["content"]:
            extra = "\n# settings of the deploy\n" + "\n".join(
                f"# {line}" for line in lines_with(names, secrets).splitlines()
            )
            extra += "\n" + "\n".join(f"# {d}" for d in decoys(7).values()) + "\n"
            m["content"] = m["content"].replace("\n</output>", extra + "</output>", 1)
    return [row]


def leaky_sql(secrets, db_dir: Path) -> list[dict]:
    """A SQL run over a real sqlite database whose rows hold every kind; decoys in another column."""
    import sqlite3

    db = db_dir / "leaky.sqlite"
    con = sqlite3.connect(db)
    con.execute("create table accounts (id integer primary key, name text, note text, checksum text)")
    for i, name in enumerate(sorted(secrets)):
        d = list(decoys(i).values())[i % len(decoys(i))]
        con.execute("insert into accounts values (?, ?, ?, ?)", (i + 1, name, in_context(name, secrets[name][0]), d))
    con.commit()
    con.close()
    row = sample_rows("sql/ferries_messages.jsonl")[0]
    row.update(
        id="leaky-sql-1",
        db_id="leaky",
        gold="SELECT name FROM accounts WHERE id = 1",
        answer="| name |\n|---|\n| anthropic_key |",
    )
    _ask(row, f"Which account has id 1? (ticket from {secrets['email'][0]})")
    calls = [m for m in row["messages"] if m.get("tool_calls")]
    tools = [m for m in row["messages"] if m["role"] == "tool"]
    calls[-1]["tool_calls"][0]["function"]["arguments"] = json.dumps({"query": row["gold"]})
    tools[-1]["content"] = "[('anthropic_key',)]"
    tools[0]["content"] = "accounts"
    calls[1]["tool_calls"][0]["function"]["arguments"] = json.dumps({"table_names": "accounts"})
    tools[1]["content"] = "CREATE TABLE accounts (id integer primary key, name text, note text, checksum text)"
    final = row["messages"][-1]
    final["content"] = "The answer is\n\n| name |\n|---|\n| anthropic_key |"
    return [row]


def write_corpus(root: Path) -> dict[str, Path]:
    """inputs/ (one JSONL per domain) and dbs/ (the sqlite database): what `acc compile` gets."""
    inputs, dbs = root / "inputs", root / "dbs"
    inputs.mkdir(parents=True)
    dbs.mkdir()
    for name, rows in [
        ("search_runs.jsonl", leaky_search(planted("search"))),
        ("swe_runs.jsonl", leaky_swe(planted("swe"))),
        ("sql_runs.jsonl", leaky_sql(planted("sql"), dbs)),
    ]:
        (inputs / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"inputs": inputs, "db_dir": dbs}


def all_planted() -> dict[str, str]:
    """'domain/name' -> value of every planted secret."""
    return {f"{d}/{n}": v for d in DOMAIN_SEEDS for n, (v, _) in planted(d).items()}


def all_decoys() -> list[str]:
    """The values inside the decoys planted by `write_corpus` (hashes, UUIDs, checksums): they must come through."""
    import re

    texts = [t for k in (0, 1, 2, 7) for t in decoys(k).values()]
    texts += [list(decoys(i).values())[i % len(decoys(i))] for i in range(len(planted("sql")))]
    found = [m for t in texts for m in re.findall(r"sha512-[A-Za-z0-9+/=]{40,}|[0-9a-f-]{36}|[0-9a-f]{7,64}", t)]
    return sorted(set(found))
