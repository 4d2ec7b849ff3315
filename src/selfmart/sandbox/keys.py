"""Where the payment sandboxes keep their merchant accounts and keys: under
`payment_sandbox_dir/<platform>/`, generated on first use and kept owner-only, so `make run`
keeps one merchant per platform across restarts."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

#: One generation at a time: two first requests at once must not make two merchants.
_LOCK = threading.RLock()


def random_digits(n: int) -> str:
    """`n` random decimal digits (merchant numbers, app ids, key ids)."""
    return "".join(secrets.choice("0123456789") for _ in range(n))


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only, atomically (a reader never sees half
    a key)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    tmp.replace(path)


def account(directory: Path, generate: Callable[[], dict[str, str]]) -> dict[str, str]:
    """The account stored in `directory/account.json`; `generate()` makes it (and may write
    key files of its own beside it) the first time."""
    with _LOCK:
        directory.mkdir(parents=True, exist_ok=True)
        account_file = directory / "account.json"
        if account_file.is_file():
            stored: dict[str, str] = json.loads(account_file.read_text())
            return stored
        made = generate()
        write_private(account_file, json.dumps(made, indent=2))
        return made
