"""Secrets never reach the store, and store_code = full | hashed | none is honoured.

The secrets below have the real formats. They are assembled at run time (and the key material is
random) so that this file is not itself a secret scanner's finding.
"""

from __future__ import annotations

import base64
import hashlib
import random
import socket
import textwrap
from pathlib import Path

import pytest

from hintwise.telemetry import Privacy, Writer, open_db, redact
from hintwise.telemetry.privacy import logprob_numbers

rng = random.Random(3)
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def rand(n: int, alphabet: str = ALNUM) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


AWS_KEY_ID = "AKIA" + "IOSFODNN7EXAMPLE"  # AWS's documented example key id
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"  # and its example secret
GITHUB = "ghp_" + rand(36)
GITHUB_FINE = "github_pat_" + rand(22) + "_" + rand(59)
SLACK = "xoxb-" + "263594206564" + "-" + "2343594206574" + "-" + rand(24).lower()
STRIPE = "sk_" + "live_" + rand(24)
JWT = ".".join(
    [
        base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("="),
        base64.urlsafe_b64encode(b'{"sub":"1234567890","name":"Ada","iat":1516239022}')
        .decode()
        .rstrip("="),
        base64.urlsafe_b64encode(rng.randbytes(32)).decode().rstrip("="),
    ]
)
PEM_BODY = textwrap.wrap(base64.b64encode(rng.randbytes(600)).decode(), 64)
PEM = "\n".join(
    ["-----BEGIN RSA " + "PRIVATE KEY-----", *PEM_BODY, "-----END RSA " + "PRIVATE KEY-----"]
)
URL_PASSWORD = "hunter2"

# (code holding a secret, the secret, the type named in its marker)
CASES = [
    (f'aws_access_key_id = "{AWS_KEY_ID}"', AWS_KEY_ID, "AWS Access Key"),
    (f'aws_secret_access_key = "{AWS_SECRET}"', AWS_SECRET, "AWS Access Key"),
    (f"export AWS_SECRET_ACCESS_KEY={AWS_SECRET}", AWS_SECRET, "AWS Access Key"),  # extra rule
    (f'headers = {{"Authorization": f"token {GITHUB}"}}', GITHUB, "GitHub Token"),
    (f"GITHUB_TOKEN={GITHUB_FINE}", GITHUB_FINE, "GitHub Token"),  # extra rule
    (f'client = WebClient(token="{SLACK}")', SLACK, "Slack Token"),
    (f'stripe.api_key = "{STRIPE}"', STRIPE, "Stripe Access Key"),
    (f"charge(key={STRIPE})", STRIPE, "Stripe Access Key"),
    (f'DB = "postgres://user:{URL_PASSWORD}@host/db"', URL_PASSWORD, "Basic Auth Credentials"),
    (f'r = Redis.from_url("redis://:{URL_PASSWORD}@cache:6379")', URL_PASSWORD, "Basic Auth"),
    (f'requests.get(url, headers={{"Authorization": "Bearer {JWT}"}})', JWT, "JSON Web Token"),
    (f'KEY = """{PEM}"""\nsign(KEY)', PEM, "Private Key"),
]


@pytest.mark.parametrize(("code", "secret", "kind"), CASES, ids=[c[2] for c in CASES])
def test_secret_formats_are_redacted(code: str, secret: str, kind: str) -> None:
    out = redact(code, path="app.py")
    assert f"[REDACTED:{kind}" in out
    for piece in [secret, *secret.split(".")]:  # a JWT's parts one by one too
        if len(piece) >= 6:
            assert piece not in out
    # Only the secret goes: the code around it stays.
    first_line = code.split("\n")[0]
    assert out.split("[REDACTED:")[0] == first_line[: first_line.index(secret.split("\n")[0])]


def test_private_key_block_cut_by_the_prompt_window() -> None:
    """A prefix window can start inside a key block, a suffix window can end inside one."""
    tail = "\n".join([*PEM_BODY[3:], "-----END RSA " + "PRIVATE KEY-----", "sign(KEY)"])
    head = "\n".join(["x = 1", "KEY = '''-----BEGIN RSA " + "PRIVATE KEY-----", *PEM_BODY[:4]])
    assert redact(tail) == "[REDACTED:Private Key]\nsign(KEY)"
    assert redact(head) == "x = 1\n[REDACTED:Private Key]"


def test_dotenv_file_is_read_as_config() -> None:
    env = "DEBUG=1\nDATABASE_PASSWORD=s3cr3t-P4ss!\nLOG_LEVEL=info"
    assert redact(env, path="/srv/app/.env") == (
        "DEBUG=1\nDATABASE_PASSWORD=[REDACTED:Secret Keyword]\nLOG_LEVEL=info"
    )


ORDINARY_CODE = [
    (
        "app.py",
        '''
        import hashlib
        import os

        API_URL = "https://api.example.com/v1/users"
        EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()  # e3b0c44298fc1c149afbf4c8996fb924


        def connect(password: str | None = None) -> Connection:
            """Open a connection; the token comes from the environment."""
            token = os.environ["API_TOKEN"]
            password = password or input("Password: ")
            url = f"postgres://{user}@{host}/{name}"
            session_id = "123e4567-e89b-12d3-a456-426614174000"
            return Connection(url, token=token, password=password, timeout=30)


        class TokenBucket:
            def __init__(self, rate: float, capacity: int) -> None:
                self.rate, self.capacity = rate, capacity
                self.tokens = float(capacity)

            def take(self, n: int = 1) -> bool:
                if self.tokens >= n:
                    self.tokens -= n
                    return True
                return False
        ''',
    ),
    (
        "client.ts",
        """
        const apiKey = process.env.API_KEY ?? "";
        export async function fetchUser(id: string): Promise<User> {
          const response = await fetch(`${BASE_URL}/users/${id}`, {
            headers: { Authorization: `Bearer ${apiKey}` },
          });
          if (!response.ok) throw new Error(`HTTP ${response.status}`);
          return (await response.json()) as User;
        }
        """,
    ),
    (
        "main.go",
        """
        func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
            secret := r.Header.Get("X-Secret")
            if !hmac.Equal([]byte(secret), s.key) {
                http.Error(w, "forbidden", http.StatusForbidden)
                return
            }
            fmt.Fprintf(w, "hello %s\\n", r.URL.Path)
        }
        """,
    ),
]


@pytest.mark.parametrize(("path", "code"), ORDINARY_CODE, ids=[c[0] for c in ORDINARY_CODE])
def test_ordinary_code_is_left_untouched(path: str, code: str) -> None:
    code = textwrap.dedent(code)
    assert redact(code, path=path) == code


def test_store_code_modes() -> None:
    secret_prompt = f'key = "{STRIPE}"\ndef f():\n    return'

    def row() -> dict:
        return {
            "id": "x",
            "file": "/home/ada/project/app.py",
            "prompt": secret_prompt,
            "prefix": "def f():\n",
            "suffix": "\n",
            "text": "    return 1",
            "detail": {"note": f"see {STRIPE}"},
            "token_logprobs": [["    return", -0.2], [" 1", -0.01]],
            "scores": {"pre": 0.5},
        }

    full = Privacy("full").apply("suggestions", row())
    assert full["prompt"] == 'key = "[REDACTED:Stripe Access Key]"\ndef f():\n    return'
    assert full["file"] == "/home/ada/project/app.py" and full["text"] == "    return 1"
    assert full["detail"] == {"note": "see [REDACTED:Stripe Access Key]"}
    assert full["token_logprobs"] == [-0.2, -0.01]  # token strings never stored
    assert full["scores"] == {"pre": 0.5}

    hashed = Privacy("hashed").apply("suggestions", row())
    sha = hashlib.sha256
    assert hashed["prompt"] == sha(full["prompt"].encode()).hexdigest()  # hashed after redaction
    assert hashed["file"] == sha(b"/home/ada/project/app.py").hexdigest()
    assert hashed["text"] == sha(b"    return 1").hexdigest()
    assert hashed["detail"] == full["detail"]  # not code: redacted, not hashed

    none = Privacy("none").apply("suggestions", row())
    assert all(none[name] is None for name in ("prompt", "prefix", "suffix", "text", "file"))
    assert none["scores"] == {"pre": 0.5}

    event = Privacy("none").apply("events", {"kind": "replacement", "text": "return 2"})
    assert event["text"] is None

    with pytest.raises(ValueError, match="store_code"):
        Privacy("some")  # type: ignore[arg-type]


def test_logprob_shapes() -> None:
    assert logprob_numbers([-1, -0.5]) == [-1.0, -0.5]
    assert logprob_numbers([{"token": "a", "logprob": -0.3}, ("b", -0.1)]) == [-0.3, -0.1]


def test_no_secret_reaches_the_file_and_no_socket_is_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end through the writer, with every way to open a network connection disabled:
    detect-secrets can verify secrets with their providers; that must never happen here."""

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)

    path = tmp_path / "t.db"
    writer = Writer.start(path)
    everything = "\n".join(code for code, _, _ in CASES)
    writer.enqueue(
        "suggestions",
        {
            "id": "s1",
            "prompt": everything,
            "prefix": everything,
            "suffix": everything,
            "text": CASES[3][0],
            "detail": {"quote": everything},
        },
    )
    writer.enqueue("events", {"suggestion_id": "s1", "kind": "replacement", "text": everything})
    writer.enqueue("events", {"suggestion_id": "s1", "kind": "shown", "data": {"x": everything}})
    assert writer.close()
    assert writer.stats().written == 3 and writer.ok

    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for _, secret, _ in CASES:
        for piece in [secret, *secret.split("\n"), *secret.split(".")]:
            if len(piece) >= 6:
                assert piece.encode() not in stored, piece
    db = open_db(path)
    assert "[REDACTED:Slack Token]" in db["suggestions"].get("s1")["prompt"]
