
_engine: Engine | None = None
_engine_lock = threading.Lock()


def current_engine() -> Engine:
    """Built on first use: routes and storage clients are created once per worker, not per event."""
    global _engine
    with _engine_lock:
        if _engine is None:
            from shared.ledger import TableLedger

            settings = current_settings()
            _engine = Engine(
                settings, lambda: routes_for(settings.routes_file, settings.environ), TableLedger(settings),
                gate=Gate(settings), enricher=Enricher(settings.enrich_timeout_seconds),
            )  # fmt: skip
        return _engine


def use_engine(engine: Engine | None) -> None:
    """Replace the worker's engine (replay --dry-run, tests); None rebuilds it from settings."""
    global _engine
    with _engine_lock:
        _engine = engine


def dispatch(function: str, raw: Any) -> None:
    """Entry point of every Event Grid function: raises only to make Event Grid redeliver."""
    try:
        reports = current_engine().handle(function, raw)
    except LedgerUnavailable as error:
        raise DeliveryFailed(f"{error}; no action ran without its claim, Event Grid will redeliver") from error
    except RoutesError as error:
        raise DeliveryFailed(f"{error}\nFix routes.yaml and redeploy; Event Grid will redeliver") from error
    failed = [report for report in reports if report.status == FAILED]
    # An action another delivery is running is not finished: answering success would let Event Grid
    # forget the event, and if that other worker dies the action would never complete.
    busy = [report for report in reports if report.in_progress]
    if failed or busy:
        problems = [f"{len(failed)} of {len(reports)} actions failed"] if failed else []
        if busy:
            problems.append(f"{len(busy)} in progress in another delivery")
        summary = "; ".join(f"{r.route}/{r.action}#{r.position}: {r.detail}" for r in failed + busy)
        raise DeliveryFailed(f"{', '.join(problems)}, Event Grid will redeliver: {summary}")


def flush_digests() -> None:
    """Entry point of the flush_digests timer: deliver every due digest."""
    flush_due(current_engine())
