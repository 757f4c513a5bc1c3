"""`email`: a message worth reading about the event, to people, through Azure Communication
Services; with no ACS configured, an .eml file in the outbox folder (a real email you can open).

    - email:
        to: [mlops@contoso.com, "On call <oncall@contoso.com>"]   # cc, bcc, reply_to likewise
        subject: "..."          # optional template; default: the template's own subject
        template: run_failed    # optional: a shipped template or a file; default: one per event type
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import jinja2

from handlers.email import acs, outbox
from handlers.email.message import Mailbox, OutgoingEmail, Recipients, id_for
from handlers.email.templates import DEFAULT_TEMPLATE, DIGEST_TEMPLATE, EmailContent, EmailTemplate
from shared.actions import Action, ActionContext, ActionFailed, ActionOutcome, Preview, PreviewPart
from shared.events.digest import DigestEvent
from shared.problems import Problems
from shared.templates import TemplateProblem, check_template, compile_template

# ACS accepts at most 50 recipients per message.
MAX_RECIPIENTS = 50
OUTBOX_SENDER = "aml-event-actions@outbox.local"  # From of outbox files when EMAIL_SENDER is unset


class EmailAction(Action):
    kind = "email"
    OPTIONS: ClassVar[Mapping[str, bool]] = {
        "to": True, "cc": False, "bcc": False, "reply_to": False, "subject": False, "template": False,
    }  # fmt: skip

    def configure(self, problems: Problems, line: int) -> None:
        mailboxes = {name: self._mailboxes(name, problems, line) for name in ("to", "cc", "bcc", "reply_to")}
        self.recipients = Recipients(**mailboxes)
        if self.recipients.count > MAX_RECIPIENTS:
            problems.add(line, f"email: {self.recipients.count} recipients; ACS takes at most {MAX_RECIPIENTS}")
        self.subject = self._subject(problems, line)
        self.templates = self._templates(problems, line)

    def _mailboxes(self, option: str, problems: Problems, line: int) -> tuple[Mailbox, ...]:
        written = self.options.get(option) or []
        if isinstance(written, str):
            written = [written]
        if not isinstance(written, list):
            problems.add(line, f"email: {option} must be an address or a list of addresses")
            return ()
        mailboxes = []
        for item in written:
            try:
                mailboxes.append(Mailbox.parse(str(item)))
            except ValueError as error:
                problems.add(line, f"email: {option}: {error}")
        return tuple(mailboxes)

    def _subject(self, problems: Problems, line: int) -> jinja2.Template | None:
        source = self.options.get("subject")
        if source in (None, ""):
            return None
        try:
            template = compile_template(str(source))
        except TemplateProblem as problem:
            problems.add(line, f"email: subject: {problem}")
            return None
        if problem := check_template(template, self.event_types):
            problems.add(line, f"email: subject: {problem}")
            return None
        return template

    def _templates(self, problems: Problems, line: int) -> dict[str, EmailTemplate]:
        """The template for each of the route's event types, loaded and checked against examples."""
        chosen = self.options.get("template")
        templates: dict[str, EmailTemplate] = {}
        for event_type in self.event_types:
            reference = str(chosen) if chosen else DEFAULT_TEMPLATE[event_type]
            try:
                template = EmailTemplate(reference)
            except TemplateProblem as problem:
                where = f"{problem.file}:{problem.line}: " if problem.file else ""
                problems.add(line, f"email: template: {where}{problem}")
                return {}
            if problem := template.check((event_type,), self.subject):
                problems.add(line, f"email: template: {problem}")
                return {}
            templates[event_type] = template
        return templates

    @property
    def target(self) -> str:
        return ", ".join(mailbox.address for mailbox in self.recipients.to)

    def content(self, ctx: ActionContext) -> EmailContent:
        """Subject, text and HTML for this event; ActionFailed when the template cannot render it."""
        if isinstance(ctx.event, DigestEvent) and not self.options.get("template"):
            template = EmailTemplate(DIGEST_TEMPLATE)
        else:
            template = self.templates.get(ctx.event.event_type) or EmailTemplate(DEFAULT_TEMPLATE[ctx.event.event_type])
        try:
            return template.render(ctx.event, ctx.route, self.subject)
        except TemplateProblem as problem:  # checked at load; an unusual event can still miss a field
            raise ActionFailed(f"template {template.name}: {problem}") from None

    def preview(self, ctx: ActionContext) -> Preview:
        content = self.content(ctx)
        boxes = (("To", self.recipients.to), ("Cc", self.recipients.cc), ("Bcc", self.recipients.bcc),
                 ("Reply-To", self.recipients.reply_to))  # fmt: skip
        head = [f"{name}: {', '.join(box.address for box in found)}" for name, found in boxes if found]
        return Preview("email", f"email to {self.target}: {content.subject}", (
            PreviewPart("headers.txt", "\n".join([*head, f"Subject: {content.subject}"]) + "\n"),
            PreviewPart("body.txt", content.text),
            PreviewPart("body.html", content.html),
        ))  # fmt: skip

    def run(self, ctx: ActionContext) -> ActionOutcome:
        content = self.content(ctx)
        settings = acs.AcsSettings.of(ctx.settings)
        sender = ctx.settings.email_sender
        if settings is None:
            return self._write_to_outbox(ctx, OutgoingEmail(_sender(sender or OUTBOX_SENDER), self.recipients, content))
        if not sender:
            raise ActionFailed("EMAIL_SENDER is not set: the ACS sender address, e.g. DoNotReply@<domain>")
        message = OutgoingEmail(_sender(sender), self.recipients, content)
        operation_id = id_for(ctx.key)  # the same on every attempt, so a resend is recognisable
        result = acs.send(settings, message.to_acs(), operation_id, ctx.remaining())
        confirmed = "" if result.status == "Succeeded" else " (accepted, not yet confirmed)"
        return ActionOutcome(
            detail=f"sent via ACS to {self.recipients.count} recipient(s): operation {result.operation_id} "
            f"{result.status}{confirmed}",
            record=dict(operation_id=result.operation_id, acs_status=result.status, subject=content.subject),
        )

    def _write_to_outbox(self, ctx: ActionContext, message: OutgoingEmail) -> ActionOutcome:
        try:
            path = outbox.write_eml(ctx.settings.email_outbox, ctx.key, message)
        except OSError as error:
            raise ActionFailed(
                f"cannot write to the outbox ({error.strerror}: {error.filename}); "
                "set ACS_ENDPOINT to send through Communication Services"
            ) from None
        return ActionOutcome(
            detail=f"written to outbox {path} (no ACS configured)",
            record=dict(outbox_path=str(path), subject=message.content.subject),
        )


def _sender(written: str) -> Mailbox:
    try:
        return Mailbox.parse(written)
    except ValueError as error:
        raise ActionFailed(f"EMAIL_SENDER: {error}") from None
