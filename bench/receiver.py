"""A webhook receiver for the benchmarks, in its own process: `python bench/receiver.py DELAY`.

Prints its URL, then answers commands on stdin with one JSON line each: `stats` (requests and
Idempotency-Keys received) and `reset`. Every POST is answered 200 after DELAY seconds.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.receiver import Receiver, Reply


def main() -> None:
    receiver = Receiver()
    receiver.default = Reply(delay=float(sys.argv[1]) if len(sys.argv) > 1 else 0.0)
    print(receiver.url, flush=True)
    for command in sys.stdin:
        if command.strip() == "reset":
            receiver.requests.clear()
            answer: dict[str, object] = {}
        else:
            keys = Counter(request.headers.get("idempotency-key") for request in list(receiver.requests))
            answer = {"requests": sum(keys.values()), "keys": len(keys), "repeated": sum(n > 1 for n in keys.values())}
        print(json.dumps(answer), flush=True)
    receiver.close()


if __name__ == "__main__":
    main()
