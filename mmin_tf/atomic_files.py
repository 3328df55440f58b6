"""Writing files so that a reader never sees a partial one: write beside, then rename."""

import contextlib
import json
import os


@contextlib.contextmanager
def replacing(path: str, suffix: str = ""):
    """Yields a temporary path beside `path`; it replaces `path` when the block completes.

    If the block raises, the temporary file is removed and `path` is left as it was. `suffix`
    keeps an extension that a writer needs (e.g. ".keras"). The process id in the name keeps
    concurrent writers (experiment shards) apart.
    """
    temporary = f"{path}.{os.getpid()}.incomplete{suffix}"
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_text(path: str, text: str) -> None:
    with replacing(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(text)


def write_json(path: str, payload) -> None:
    write_text(path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
