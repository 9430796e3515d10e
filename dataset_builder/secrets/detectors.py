"""What counts as a credential or personal data in a text: detectors, each a regex with the span to redact.

Built on detect-secrets' regex detector plugins, used directly: their compiled `denylist` patterns are run here with
`finditer` (not through `scan_line`, whose eager mode flags ordinary words, nor `analyze_string`, which for several
plugins yields only a capture group: the GitHub detector reports just the `ghp` prefix). The WHOLE match is
redacted, extended over the token's own characters where the plugin's pattern stops short (the JWT pattern ends
with a lazy `*?`, so its match never includes the signature). The plugins that cannot tell a secret from what code
and logs are full of are not used: the high-entropy detectors (git SHAs, UUIDs, lock-file checksums, base64 test
data), the keyword detector (flags `password = get_password()`), the basic-auth and public-IP detectors (replaced
below by bounded patterns: theirs backtrack on long lines, and the IP one knows no reserved ranges).

Added here: Hugging Face, Anthropic, OpenAI project / service keys, GitHub fine-grained tokens, Google API keys and
OAuth secrets, Stripe test keys and webhook secrets, npm / DigitalOcean / Databricks / Groq / Replicate tokens, whole
private key blocks, bearer tokens, passwords in URLs and connection strings, `KEY=value` credentials in env dumps and
quoted credential assignments, and personal data: emails, public IPv4 addresses (`ipaddress.is_global`, so never
private, loopback, link-local or documentation ranges) and user names in home-directory paths.

Every detector has lowercase trigger strings; its regex runs only on texts that contain one (`str.__contains__`
runs at memory speed), and every quantifier is bounded, so long lines stay linear.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache

PII_PLACEHOLDERS = {"email": "EMAIL", "public_ip": "IP", "home_user": "USER"}
TOKEN_CHARS = "A-Za-z0-9_\\-"
PLACEHOLDER_WORDS = (
    "example",
    "placeholder",
    "your_",
    "your-",
    "yourpass",
    "xxxx",
    "redacted",
    "changeme",
    "dummy",
    "fake",
    "mock",
)
# well-known public services, not anyone's address
PUBLIC_SERVICE_IPS = frozenset({"8.8.8.8", "8.8.4.4", "1.1.1.1", "1.0.0.1", "9.9.9.9", "208.67.222.222"})
GENERIC_USERS = frozenset(
    "user username users runner runneradmin ubuntu admin administrator root jenkins travis circleci vagrant vscode "
    "codespace codespaces node app docker ec2-user centos debian fedora pi guest shared public default test tester "
    "dev developer you yourname me name someone coder jovyan build builder ci agent".split()
)
FILE_TLDS = frozenset(
    "py js ts jsx tsx json yaml yml toml ini cfg txt md rst png jpg jpeg gif svg webp ico css scss html htm xml csv "
    "tsv log sh bat exe dll so pdf zip gz tar whl lock pyc java rs go rb php cpp hpp lua".split()
)
COMMON_TLDS = frozenset(
    "com org net edu gov mil int io ai dev app co info biz me tech cloud xyz online site email name pro mobi page "
    "jobs museum aero coop travel systems solutions company agency digital network software science academy".split()
)
RESERVED_DOMAINS = ("example.com", "example.org", "example.net", "example.edu", "localhost")
RESERVED_TLDS = ("example", "test", "invalid", "localhost", "local", "internal")
NOT_EMAIL_USERS = frozenset({"git", "noreply", "no-reply"})  # git@github.com:org/repo is an SSH remote
# agent harnesses' own commit identities (in every run of theirs), not anyone's address
SERVICE_EMAILS = frozenset({"openhands@all-hands.dev"})


@dataclass(frozen=True)
class Detector:
    """One pattern: `type` names what it finds; `group` is the span to redact (0: the whole match)."""

    type: str
    pattern: re.Pattern
    triggers: tuple[str, ...]  # the regex runs only on texts with one of these (case-sensitive if it has capitals)
    group: int = 0
    extend: str = ""  # character class the span is extended over at its end (the rest of a token)
    check: Callable[[str, int, int], bool] | None = None  # (text, start, end) of the span must pass it
    priority: int = 0  # overlapping spans merge; the merged span takes the type of the lowest priority
    anchors: tuple[str, ...] = ()  # lowercase: the regex runs only in windows around their occurrences
    window: tuple[int, int] = (0, 0)  # characters before and after an anchor

    @property
    def is_pii(self) -> bool:
        return self.type in PII_PLACEHOLDERS


# ---------------------------------------------------------------- value checks


def looks_like_secret(value: str) -> bool:
    """A credential value, not a placeholder, a variable, an expression, a path or a plain word."""
    v = value.strip()
    low = v.lower()
    if len(v) < 6 or v[0] in "$<{%[(*&@/~." or "${" in v or "{{" in v or "(" in v or len(set(v)) <= 2 or v[-1] == ">":
        return False
    if any(w in low for w in PLACEHOLDER_WORDS) or low in ("password", "secret", "token", "none", "null"):
        return False
    if re.fullmatch(r"[A-Z][A-Z0-9_]+", v) or re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", v):
        return False  # an environment variable's name, a dotted expression (self.token, settings.SECRET_KEY)
    if re.fullmatch(r"https?://\S+", v):
        return False
    kinds = sum(bool(re.search(p, v)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9_\-]"))
    return kinds >= 2 or len(v) >= 16


def secret_value(text: str, start: int, end: int) -> bool:
    return looks_like_secret(text[start:end])


def url_password(text: str, start: int, end: int) -> bool:
    return looks_like_secret(text[start:end].split(":", 1)[1])


def is_jwt(text: str, start: int, end: int) -> bool:
    from detect_secrets.plugins.jwt import JwtTokenDetector

    return JwtTokenDetector.is_formally_valid(text[start:end])


IP_CONTEXT = re.compile(
    r"(?i)(?:://|@|\b(?:ip|ipv4|inet|addr|address|host|hostname|server|remote|client|forwarded|connect|connected|"
    r"connecting|peer|ping|resolved|proxy|nameserver|src|dst)\b)[^\n]{0,12}$"
)


def is_public_ip(text: str, start: int, end: int) -> bool:
    """A global address (not private, loopback, link-local, reserved or documentation ranges), not a version number.

    Four-part versions (`nvidia-cudnn-cu12 9.1.0.70`, `(11.10.3.66)` in pip logs) parse as addresses: a value whose
    first three parts are all below 32 counts as an address only after words like `ip`, `host`, `from`, `@`, `://`."""
    if start and (text[start - 1].isalnum() or text[start - 1] in "._=~^<>-"):
        return False
    value = text[start:end]
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return False
    if not ip.is_global or value in PUBLIC_SERVICE_IPS:
        return False
    if all(int(part) < 32 for part in value.split(".")[:3]):
        return bool(IP_CONTEXT.search(text, max(0, start - 40), start))
    return True


def is_personal_email(text: str, start: int, end: int) -> bool:
    local, _, domain = text[start:end].rpartition("@")
    domain = domain.lower()
    tld = domain.rsplit(".", 1)[-1]
    if (
        local.lower() in NOT_EMAIL_USERS
        or tld in FILE_TLDS
        or tld in RESERVED_TLDS
        or f"{local}@{domain}" in SERVICE_EMAILS
    ):
        return False
    if any(domain == d or domain.endswith("." + d) for d in RESERVED_DOMAINS):
        return False
    return len(tld) == 2 or tld in COMMON_TLDS  # not `x@self.weight` (matrix product in Python)


def is_personal_user(text: str, start: int, end: int) -> bool:
    """A user name in a home directory path (`/home/kevin/...`), not a URL path nor a generic account."""
    prefix = text.rfind("/", 0, start - 1) if text[start - 1] == "/" else -1
    if prefix > 0 and (text[prefix - 1].isalnum() or text[prefix - 1] in "._~/-"):
        return False  # https://site.org/app/home/supporthub: a URL path, not a home directory
    value = text[start:end]
    return value.lower() not in GENERIC_USERS and not value.startswith(("$", "<", "%", "{", "."))


# ---------------------------------------------------------------- the detectors


def _ds(cls_name: str, module: str, type_: str, triggers: tuple[str, ...], **kw) -> list[Detector]:
    """Detectors from one detect-secrets plugin: each of its compiled patterns, whole-match."""
    import importlib

    plugin = getattr(importlib.import_module(f"detect_secrets.plugins.{module}"), cls_name)
    return [Detector(type_, pattern, triggers, **kw) for pattern in plugin.denylist]


def _re(pattern: str, flags: int = 0) -> re.Pattern:
    return re.compile(pattern, flags)


B = r"(?<![A-Za-z0-9_\-])"  # a token starts here: not inside a longer token (base64 data, a hash)
E = r"(?![A-Za-z0-9_\-])"
KEYWORDS = (
    r"(?:password|passwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key|auth[_-]?key|private[_-]?key"
    r"|client[_-]?secret|credentials?)"
)
KEY_TRIGGERS = ("pass", "secret", "token", "key", "credential")
ARTIFACTORY_TRIGGERS = ("AKC", *(f"AP{c}" for c in "0123456789ABCDEF"))


@lru_cache(maxsize=1)
def detectors() -> tuple[Detector, ...]:
    out: list[Detector] = []
    # detect-secrets plugins, whole match (see the module docstring for those left out). Triggers with capitals
    # are matched case-sensitively.
    out += _ds("AWSKeyDetector", "aws", "aws_access_key", ("AKIA", "ASIA", "ABIA", "ACCA", "A3T", "aws"))
    out += _ds("ArtifactoryDetector", "artifactory", "artifactory_token", ARTIFACTORY_TRIGGERS)
    out += _ds("AzureStorageKeyDetector", "azure_storage_key", "azure_storage_key", ("AccountKey=",))
    out += _ds("CloudantDetector", "cloudant", "cloudant_credentials", ("cloudant",))
    out += _ds("DiscordBotTokenDetector", "discord", "discord_bot_token", (".",))
    out += _ds("GitHubTokenDetector", "github_token", "github_token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"))
    out += _ds("GitLabTokenDetector", "gitlab_token", "gitlab_token", ("gl", "GR1348941"))
    out += _ds("IbmCloudIamDetector", "ibm_cloud_iam", "ibm_cloud_iam_key", ("ibm",))
    out += _ds("IbmCosHmacDetector", "ibm_cos_hmac", "ibm_cos_hmac_key", ("hmac", "ibm"))
    out += _ds("JwtTokenDetector", "jwt", "jwt", ("eyJ",), extend=r"[A-Za-z0-9_\-.+/=]", check=is_jwt)
    out += _ds("MailchimpDetector", "mailchimp", "mailchimp_key", ("-us",))
    out += _ds("NpmDetector", "npm", "npm_token", ("_authToken",))
    out += _ds("OpenAIDetector", "openai", "openai_key", ("T3BlbkFJ",))
    out += _ds("PypiTokenDetector", "pypi_token", "pypi_token", ("pypi-",))
    out += _ds("SendGridDetector", "sendgrid", "sendgrid_key", ("SG.",))
    out += _ds("SlackDetector", "slack", "slack_token", ("xox", "hooks.slack.com"))
    out += _ds("SoftlayerDetector", "softlayer", "softlayer_key", ("softlayer",))
    out += _ds("SquareOAuthDetector", "square_oauth", "square_oauth_secret", ("sq0csp-",))
    out += _ds("StripeDetector", "stripe", "stripe_key", ("k_live_",))
    out += _ds("TelegramBotTokenDetector", "telegram_token", "telegram_bot_token", (":",))
    out += _ds("TwilioKeyDetector", "twilio", "twilio_key", ("AC", "SK"))
    out = [_bounded(d) for d in out]
    # what detect-secrets lacks
    out += [
        Detector("hf_token", _re(B + r"(?:hf_[A-Za-z0-9]{30,64}|api_org_[A-Za-z0-9]{30,64})" + E), ("hf_", "api_org_")),
        Detector("anthropic_key", _re(B + r"sk-ant-[A-Za-z0-9_\-]{20,200}"), ("sk-ant-",)),
        Detector("openai_key", _re(B + r"sk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_\-]{20,200}"), ("sk-",)),
        Detector("openai_key", _re(B + r"sk-[A-Za-z0-9]{48}" + E), ("sk-",)),
        Detector("github_token", _re(B + r"github_pat_[A-Za-z0-9_]{22,255}"), ("github_pat_",)),
        Detector("google_api_key", _re(B + r"AIza[0-9A-Za-z_\-]{35}" + E), ("AIza",)),
        Detector("google_oauth_secret", _re(B + r"GOCSPX-[A-Za-z0-9_\-]{20,40}"), ("GOCSPX-",)),
        Detector("google_oauth_token", _re(B + r"ya29\.[0-9A-Za-z_\-]{20,2048}"), ("ya29.",)),
        Detector("stripe_key", _re(B + r"(?:sk|rk)_(?:live|test)_[0-9a-zA-Z]{10,99}" + E), ("k_live_", "k_test_")),
        Detector("stripe_webhook_secret", _re(B + r"whsec_[A-Za-z0-9]{24,64}" + E), ("whsec_",)),
        Detector("npm_token", _re(B + r"npm_[A-Za-z0-9]{36}" + E), ("npm_",)),
        Detector("digitalocean_token", _re(B + r"do[opr]_v1_[a-f0-9]{64}" + E), ("_v1_",)),
        Detector("databricks_token", _re(B + r"dapi[a-f0-9]{32}(?:-\d)?" + E), ("dapi",)),
        Detector("groq_key", _re(B + r"gsk_[A-Za-z0-9]{48,56}" + E), ("gsk_",)),
        Detector("replicate_token", _re(B + r"r8_[A-Za-z0-9]{37}" + E), ("r8_",)),
        Detector("slack_token", _re(B + r"xapp-\d-[A-Z0-9]{8,16}-\d{8,16}-[a-f0-9]{32,80}" + E), ("xapp-",)),
        Detector(
            "private_key",
            _re(
                r"-----BEGIN[A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----"
                r"(?:[\s\S]{0,16384}?-----END[A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\:,-]{0,16384})"
            ),
            ("PRIVATE KEY",),
        ),
        Detector("private_key", _re(r"PuTTY-User-Key-File-\d: [\s\S]{0,8192}?Private-MAC: [0-9a-f]+"), ("PuTTY",)),
        Detector(
            "bearer_token",
            _re(
                r"(?i)authorization[\"']?\s{0,4}[:=]\s{0,4}[\"']?(?:bearer|token|basic)\s{1,4}([A-Za-z0-9_\-.=+/~]{12,4096})"
            ),
            ("authorization",),
            group=1,
            priority=1,
        ),
        Detector(
            "url_credentials",
            _re(r"://([^\s:/?#@'\"<>{}\[\]]{1,128}:([^\s/?#@'\"<>{}\[\]]{1,256}))@"),
            ("://",),
            group=1,
            check=url_password,
            priority=1,
        ),
        Detector(
            "connection_string_password",
            _re(r"(?i)(?:password|pwd)\s{0,4}=\s{0,4}([^;'\"\s]{4,128});"),
            ("password", "pwd"),
            group=1,
            check=secret_value,
            priority=1,
        ),
        Detector(  # env dumps, .env files, shell: `export DB_PASSWORD=...`, YAML `API_TOKEN: ...` (capital names)
            "credential_assignment",
            _re(
                r"(?<![A-Za-z0-9_<])[A-Z0-9_]{0,40}(?:PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN"
                r"|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|AUTH_?KEY|CREDENTIALS?)[A-Z0-9_]{0,40}[ \t]{0,4}[=:][ \t]{0,4}"
                r"([\"']?)([^\s\"'#]{6,512})\1"
            ),
            ("PASS", "SECRET", "TOKEN", "KEY", "CREDENTIAL"),
            group=2,
            check=secret_value,
            priority=1,
        ),
        Detector(  # password = "...", "api_key": "...", token => '...'
            "credential_assignment",
            _re(
                r"(?i)" + KEYWORDS + r"[\w.-]{0,40}[\"']?\s{0,4}(?:=|:|=>|:=)\s{0,4}[@rb]?([\"'])([^\"'\s\\]{6,512})\1"
            ),
            KEY_TRIGGERS,
            group=2,
            check=secret_value,
            priority=1,
            anchors=KEY_TRIGGERS + ("pwd",),
            window=(12, 620),
        ),
        Detector(  # --password=..., --api-key ...
            "credential_assignment",
            _re(r"(?i)--" + KEYWORDS + r"[= ]([\"']?)([^\s\"']{6,512})\1"),
            KEY_TRIGGERS,
            group=2,
            check=secret_value,
            priority=1,
        ),
        # personal data
        Detector(
            "email",
            _re(
                r"(?<![\w.+%-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}"
                r"[A-Za-z]{2,24}(?![\w-]|\.[A-Za-z0-9])"
            ),
            ("@",),
            check=is_personal_email,
            priority=2,
            anchors=("@",),
            window=(70, 260),
        ),
        Detector(
            "public_ip",
            _re(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\w-]|\.\d)"),
            tuple(f"{digit}." for digit in "0123456789"),  # every match has one; '.' alone is in every text
            check=is_public_ip,
            priority=2,
        ),
        Detector("home_user", _re(r"/home/([A-Za-z0-9._-]{1,64})"), ("/home/",), 1, check=is_personal_user, priority=2),
        Detector(
            "home_user", _re(r"/Users/([A-Za-z0-9._-]{1,64})"), ("/Users/",), 1, check=is_personal_user, priority=2
        ),
        Detector(
            "home_user",
            _re(r"(?<![\w])[A-Za-z]:(?:\\\\?|/)Users(?:\\\\?|/)([A-Za-z0-9._-]{1,64})"),
            ("Users",),
            group=1,
            check=is_personal_user,
            priority=2,
        ),
    ]
    return tuple(out)


def _bounded(d: Detector) -> Detector:
    """Token-like plugin patterns extended over the rest of their token (so no tail of a secret is left)."""
    if d.extend or d.type in ("cloudant_credentials", "ibm_cloud_iam_key", "ibm_cos_hmac_key", "softlayer_key"):
        return d
    return replace(d, extend=f"[{TOKEN_CHARS}]")
