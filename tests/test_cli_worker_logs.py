"""The worker command's log lines: written a loop turn at a time, in order, never lost."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from typing import Any

import pytest

from jobwire.cli.worker_logs import _TurnHandler, _UtcSecondsFormatter
from jobwire.worker.execution import _LineRecords


class Stream:
    """A stderr stand-in that keeps each ``write`` call apart."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> None:
        self.writes.append(text)

    def flush(self) -> None:
        pass

    def lines(self) -> list[str]:
        return "".join(self.writes).splitlines()


def stopped_with_a_line_waiting(log: logging.Logger, line: str) -> asyncio.AbstractEventLoop:
    """A loop that logged ``line`` and stopped before the end-of-turn write ran."""
    loop = asyncio.new_event_loop()
    loop.call_soon(log.info, line)
    loop.call_soon(loop.stop)  # before the handler's own callback, queued after it
    loop.run_forever()
    return loop


@pytest.fixture
def logged() -> Any:
    stream = Stream()
    handler = _TurnHandler()
    handler.setStream(stream)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("tests.turn_handler")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    yield log, stream, handler
    log.removeHandler(handler)


def test_the_lines_of_one_loop_turn_go_out_in_one_write_in_order(logged: Any) -> None:
    log, stream, _ = logged

    async def main() -> list[str]:
        for i in range(5):
            log.info("job %d", i)
        before = list(stream.writes)  # nothing yet: the turn has not ended
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        log.info("next turn")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return before

    assert asyncio.run(main()) == []
    assert stream.writes == ["job 0\njob 1\njob 2\njob 3\njob 4\n", "next turn\n"]


def test_a_line_from_another_thread_comes_after_the_loops_waiting_lines(logged: Any) -> None:
    log, stream, _ = logged

    async def main() -> None:
        log.info("on the loop")
        thread = threading.Thread(target=log.info, args=("from a thread",))
        thread.start()
        thread.join()
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    asyncio.run(main())
    assert stream.lines() == ["on the loop", "from a thread"]


def test_lines_still_waiting_when_the_loop_is_gone_are_written_on_flush(logged: Any) -> None:
    log, stream, handler = logged
    loop = stopped_with_a_line_waiting(log, "stopped")
    assert stream.writes == []
    loop.close()  # the turn's flush never ran
    log.info("after the loop")  # no loop: at once, after the waiting line
    assert stream.lines() == ["stopped", "after the loop"]
    handler.flush()  # (as logging.shutdown does at exit): nothing is left, nothing repeats
    assert stream.lines() == ["stopped", "after the loop"]


def test_a_line_logged_on_another_loop_does_not_wait_for_the_first_loops_turn(
    logged: Any,
) -> None:
    log, stream, _ = logged
    first = stopped_with_a_line_waiting(log, "first loop")

    async def other() -> None:
        log.info("second loop")

    asyncio.run(other())
    assert stream.lines()[:2] == ["first loop", "second loop"]
    first.close()


def test_lines_with_no_loop_are_written_at_once(logged: Any) -> None:
    log, stream, _ = logged
    log.info("one")
    assert stream.writes == ["one\n"]


@pytest.mark.parametrize("process", ["", " [process 2]"])
def test_the_text_line_is_what_its_format_string_gives(process: str) -> None:
    ours = _UtcSecondsFormatter(process)
    standard = logging.Formatter(f"%(asctime)sZ %(levelname)-7s %(name)s{process}: %(message)s")
    standard.formatTime = ours.formatTime  # type: ignore[method-assign]
    for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR):
        record = logging.makeLogRecord(
            {"name": "jobwire.worker", "levelno": level, "levelname": logging.getLevelName(level),
             "msg": "job %s ran %.3fs: \x1b[31m%s", "args": ("a1", 0.25, "red")}
        )  # fmt: skip
        assert ours.format(record) == standard.format(record)
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.makeLogRecord({"msg": "failed", "exc_info": sys.exc_info()})
    text = ours.format(failed)
    assert text.startswith(standard.format(logging.makeLogRecord({"msg": "failed"})))
    assert "Traceback (most recent call last)" in text and "ValueError: boom" in text


def test_a_job_line_record_is_the_record_logging_would_make() -> None:
    records = _LineRecords()
    fields = {"job_id": "j1", "outcome": "success"}

    def both() -> tuple[logging.LogRecord, logging.LogRecord]:
        logger = logging.getLogger("jobwire.worker")
        ours = records.make(logging.INFO, "%s ran", ("j1",), fields)
        from jobwire.worker import execution

        theirs = logger.makeRecord(
            logger.name, logging.INFO, execution.__file__, execution._LOG_LINE, "%s ran",
            ("j1",), None, "_log_outcome", {"job": fields},
        )  # fmt: skip
        return ours, theirs

    for _ in range(2):  # the template's first use and a copy of it
        ours, theirs = both()
        timed = {"created", "msecs", "relativeCreated"}
        assert {k: v for k, v in vars(ours).items() if k not in timed} == {
            k: v for k, v in vars(theirs).items() if k not in timed
        }
        assert abs(ours.created - theirs.created) < 1
        assert abs(ours.relativeCreated - theirs.relativeCreated) < 1000
        assert ours.getMessage() == "j1 ran"

    seen: list[str] = []
    default = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = default(*args, **kwargs)
        seen.append(record.getMessage())
        return record

    logging.setLogRecordFactory(factory)
    try:
        records.make(logging.INFO, "%s ran", ("j2",), fields)
    finally:
        logging.setLogRecordFactory(default)
    assert seen == ["j2 ran"]  # an application's own factory makes the record
