"""Post event files to a running Functions host (`func start`), as Event Grid would.

    python scripts/send_event.py [--host http://localhost:7071] PATH...

Each event goes to `/runtime/webhooks/EventGrid?functionName=NAME` of the function that takes its
type, with the `aeg-event-type: Notification` header the Event Grid extension requires. An event that
the Python worker's converter will refuse (an `eventTime` it cannot parse) is still sent, with a line
saying that its invocation will fail before the app runs. Exit status is 1 when the host answered
anything but 202 for some event.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from scripts.local_host import WorkerRefused, binding_for, event_files, function_for


def main(argv: list[str] | None = None) -> int:
    import httpx

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", metavar="PATH")
    parser.add_argument("--host", default="http://localhost:7071", help="the Functions host (default %(default)s)")
    parser.add_argument("--code", help="the eventgrid_extension system key (only needed for a host in Azure)")
    args = parser.parse_args(argv)
    try:
        return send(args, httpx.Client(timeout=60))
    except httpx.ConnectError:
        print(f"send_event: no Functions host answers at {args.host}: start one with `func start` "
              "(or try scripts/replay.py, which needs none)", file=sys.stderr)  # fmt: skip
        return 1


def send(args: argparse.Namespace, http: Any) -> int:
    failures = 0
    with http as client:
        for path in event_files(args.paths):
            try:
                decoded = json.loads(path.read_bytes())
            except ValueError as error:
                print(f"{path}: not JSON ({error}); skipped")
                failures += 1
                continue
            for item in decoded if isinstance(decoded, list) else [decoded]:
                function = function_for(item)
                if function is None:
                    from shared.events.parse import envelope_problem

                    print(f"{path}: skipped, no function takes it: {envelope_problem(item)}")
                    failures += 1
                    continue
                try:
                    binding_for(item)
                except WorkerRefused as refused:  # still sent: the host shows what Azure would do
                    print(f"{path.name}: {item.get('id')}: expect a failed invocation: {refused}")
                cloud = "specversion" in item
                params = {"functionName": function} | ({"code": args.code} if args.code else {})
                response = client.post(
                    f"{args.host.rstrip('/')}/runtime/webhooks/EventGrid",
                    params=params,
                    json=item if cloud else [item],  # Event Grid posts an array; a CloudEvent alone
                    headers={
                        "aeg-event-type": "Notification",
                        "Content-Type": "application/cloudevents+json" if cloud else "application/json",
                    },
                )
                print(f"{path.name}: {item.get('id')} -> {function}: HTTP {response.status_code} {response.text[:200]}")
                failures += response.status_code != 202
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
