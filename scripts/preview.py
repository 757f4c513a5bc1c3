"""Preview every message a route would send for some events, without sending anything.

    python scripts/preview.py [--routes FILE] [--out DIR] PATH...

For each event (PATH: event JSON files or folders, as for replay.py) and each route that takes it,
every action is rendered as it would go out: the email's subject, text and HTML; the Teams Adaptive
Card; the Slack Block Kit message; the webhook's headers (its signature as it would be) and body;
the Azure ML job's name, inputs and tags. The files go to DIR (default `preview/`), with `index.html`
showing them as a person would see them: the email in a sandboxed frame, the card drawn by
Microsoft's Adaptive Cards renderer, the Slack blocks laid out. Open it in a browser; it loads
nothing from the network.

Nothing is sent, no ledger is written and no storage is needed. Exit status: 0, or 1 when a routes
file or an event could not be read or an action could not be rendered.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.cli import parser_from_doc
from scripts.local_host import event_files, events_in

ROOT = Path(__file__).resolve().parent.parent

PAGE_ASSETS = ROOT / "scripts" / "preview_page"
ADAPTIVE_CARDS_JS = ROOT / "node_modules" / "adaptivecards" / "dist" / "adaptivecards.min.js"
MARKER = ".aml-event-actions-preview"  # a folder holding this file may be emptied and rewritten
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class ActionPreview:
    route: str
    position: int
    kind: str
    target: str
    preview: Any = None  # shared.actions.Preview, or None when it could not be rendered
    problem: str = ""
    folder: str = ""  # where its files were written, relative to the preview folder

    @property
    def label(self) -> str:
        return f"{self.route}/{self.kind}#{self.position}"


@dataclass
class EventPreview:
    source: str
    event: Any = None  # the parsed AmlEvent, or None when the input was rejected
    rejected: str = ""
    explanations: list[Any] = field(default_factory=list)  # shared.explain.Explanation per route
    actions: list[ActionPreview] = field(default_factory=list)

    @property
    def heading(self) -> str:
        return self.event.title if self.event is not None else f"Rejected input from {self.source}"


def preview_event(table: Any, event: Any, source: str, settings: Any) -> EventPreview:
    """The explanation of every route and the preview of every action of the routes that take `event`."""
    from shared.actions import ActionContext
    from shared.ledger.records import LedgerRecord
    from shared.routing.explain import explain

    result = EventPreview(source, event, explanations=explain(table, event))
    for route in table.matching(event):
        for action in route.actions:
            key = LedgerRecord(event.id, route.name, action.position, action.kind, action.target, "").key
            ctx = ActionContext(event, route.name, action.position, key, time.monotonic() + 30, settings)
            item = ActionPreview(route.name, action.position, action.kind, action.target)
            try:
                item.preview = action.action.preview(ctx)
            except Exception as error:  # a template that fails for this event: the preview shows it
                item.problem = f"{type(error).__name__}: {error}"
            result.actions.append(item)
    return result


def preview_files(paths: list[str], table: Any, settings: Any) -> list[EventPreview]:
    from shared.events.monitoring import derived_events

    previews = []
    for path in event_files(paths):
        for item in events_in(path):
            if isinstance(item, str):
                previews.append(EventPreview(str(path), rejected=item))
                continue
            for event in (item, *derived_events(item)):
                previews.append(preview_event(table, event, str(path), settings))
    return previews


# ---- the folder ------------------------------------------------------------------------------------


def prepare_folder(out: Path) -> None:
    """An empty folder to write into: created, or emptied if an earlier preview wrote it."""
    if out.exists():
        if not (out / MARKER).is_file() and any(out.iterdir()):
            raise SystemExit(f"preview: {out} exists and was not written by preview.py; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("written by scripts/preview.py; emptied on the next run\n", encoding="utf-8")


def write_preview(out: Path, previews: list[EventPreview]) -> Path:
    """Each action's parts as files, the page's scripts, and index.html; returns index.html."""
    prepare_folder(out)
    for number, item in enumerate(previews, 1):
        folder = f"{number:02d}-" + _safe((item.event.short_type + "-" + item.event.id) if item.event else "rejected")
        for action in item.actions:
            if action.preview is None:
                continue
            action_folder = out / folder / _safe(f"{action.route}-{action.position}-{action.kind}")
            action_folder.mkdir(parents=True)
            for part in action.preview.parts:
                (action_folder / _safe(part.name)).write_text(part.content, encoding="utf-8")
            action.folder = f"{folder}/{action_folder.name}"
    for name in ("preview.js", "preview.css"):
        shutil.copyfile(PAGE_ASSETS / name, out / name)
    has_renderer = ADAPTIVE_CARDS_JS.is_file()
    if has_renderer:
        shutil.copyfile(ADAPTIVE_CARDS_JS, out / ADAPTIVE_CARDS_JS.name)
    index = out / "index.html"
    index.write_text(page(previews, has_renderer), encoding="utf-8")
    return index


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name)[:80] or "_"


# ---- the page ---------------------------------------------------------------------------------------

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-src 'self' about:; base-uri 'none'; form-action 'none'"
)


def _script_json(value: Any) -> str:
    """JSON safe inside <script type="application/json">: no `</script>`, no `<!--`."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def page(previews: list[EventPreview], has_renderer: bool) -> str:
    actions = sum(len(item.actions) for item in previews)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        "<title>Preview of routed messages</title>",
        '<link rel="stylesheet" href="preview.css">',
        '<script src="adaptivecards.min.js"></script>' if has_renderer else "",
        '<script src="preview.js"></script>',
        "</head><body>",
        f"<h1>Preview: {len(previews)} event(s), {actions} action(s)</h1>",
        '<p class="note">Nothing was sent. Each action is rendered as it would go out for this event.</p>',
    ]
    if not has_renderer:
        parts.append('<p class="render-error">Teams cards are shown as JSON only: the adaptivecards package is '
                     "not installed (run scripts/setup_env.sh).</p>")  # fmt: skip
    for item in previews:
        parts.append(_event_section(item))
    parts.append("</body></html>")
    return "\n".join(part for part in parts if part) + "\n"


def _event_section(item: EventPreview) -> str:
    e = html.escape
    if item.event is None:
        return (f'<section class="event rejected"><h2>{e(item.heading)}</h2>'
                f'<p class="meta">{e(item.rejected)}</p></section>')  # fmt: skip
    event = item.event
    lines = [
        f'<section class="event" data-event-id="{e(event.id)}">',
        f"<h2>{e(event.title)}</h2>",
        f'<p class="meta">{e(event.short_type)} · id {e(event.id)} · from {e(item.source)}</p>',
        "<details open><summary>Routes</summary><ul>",
    ]
    for explanation in item.explanations:
        state = "matched" if explanation.matched else "missed"
        text = "\n".join(explanation.lines())
        lines.append(f'<li class="{state}"><pre>{e(text)}</pre></li>')
    lines.append("</ul></details>")
    if not item.actions:
        lines.append("<p>No route takes this event: nothing would be sent.</p>")
    for action in item.actions:
        lines.append(_action_article(action))
    lines.append("</section>")
    return "\n".join(lines)


def _action_article(action: ActionPreview) -> str:
    e = html.escape
    preview = action.preview
    view = preview.view if preview is not None else "problem"
    head = [
        f'<article class="action" data-view="{e(view)}" data-route="{e(action.route)}" data-kind="{e(action.kind)}">',
        f"<h3>{e(action.route)} · {e(action.kind)}#{action.position} → {e(action.target or '-')}</h3>",
    ]
    if preview is None:
        return "\n".join([*head, f'<p class="render-error">Cannot render: {e(action.problem)}</p>', "</article>"])
    body = [f'<p class="summary">{e(preview.summary)}</p>']
    if view == "email":
        body += [
            f'<pre class="email-head">{e(preview.part("headers.txt") or "")}</pre>',
            f'<iframe class="email" sandbox title="email body" srcdoc="{e(preview.part("body.html") or "")}"></iframe>',
            f"<details><summary>Plain-text body</summary><pre>{e(preview.part('body.txt') or '')}</pre></details>",
        ]
    elif view in ("adaptive-card", "slack"):
        payload = preview.parts[0].content
        body += [
            '<div class="rendered"></div>',
            f'<script type="application/json" class="payload">{_script_json(json.loads(payload))}</script>',
            f"<details><summary>{e(preview.parts[0].name)}</summary><pre>{e(payload)}</pre></details>",
        ]
    elif preview.parts:  # the first part says it all (a webhook's request); the rest are files
        body.append(f"<pre>{e(preview.parts[0].content)}</pre>")
    if action.folder and preview.parts:
        links = " ".join(f'<a href="{e(action.folder)}/{e(_safe(p.name))}">{e(p.name)}</a>' for p in preview.parts)
        body.append(f'<p class="files">Files: {links}</p>')
    return "\n".join([*head, *body, "</article>"])


# ---- command line -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = parser_from_doc(__doc__)
    parser.add_argument("paths", nargs="+", metavar="PATH", help="event JSON files or folders")
    parser.add_argument("--routes", help="routes file (default: the ROUTES_FILE setting, else routes.yaml)")
    parser.add_argument("--out", default="preview", metavar="DIR", help="where to write (default: %(default)s)")
    args = parser.parse_args(argv)

    from shared.routing.routes import RoutesError
    from shared.settings import Settings
    from shared.worker import load_routes

    settings = Settings.from_environ()
    routes_file = Path(args.routes) if args.routes else settings.routes_file
    try:
        table = load_routes(routes_file, settings.environ)
    except RoutesError as error:
        print(error, file=sys.stderr)
        return 1
    previews = preview_files(args.paths, table, settings)
    index = write_preview(Path(args.out), previews)
    failed = False
    for item in previews:
        if item.event is None:
            print(f"{item.source}: rejected: {item.rejected}")
            failed = True
            continue
        print(f"{item.source}: {item.event.short_type} {item.event.id}: {len(item.actions)} action(s)")
        for action in item.actions:
            if action.preview is None:
                print(f"  {action.label}: CANNOT RENDER: {action.problem}")
                failed = True
            else:
                print(f"  {action.label}: {action.preview.summary}")
    print(f"\nopen {index.resolve().as_uri()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
