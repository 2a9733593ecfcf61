"""Raw writes become numbered lines: partial lines, carriage returns, long lines."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from flask_realtime.core.capture import RunCapture
from flask_realtime.core.output import Line, LineAssembler, line, take_fitting


def feed(*writes: str, max_chars: int = 100) -> list[Line]:
    assembler = LineAssembler("stdout", max_chars)
    out: list[Line] = []
    for w in writes:
        assembler.feed(w, 0.0, out)
    assembler.flush_partial(1.0, 0.1, out)
    return out


def test_print_writes_text_and_newline_separately() -> None:
    assert feed("hello", "\n", "world", "\n") == [line("stdout", "hello"),
                                                   line("stdout", "world")]


def test_a_partial_line_waits_for_its_newline_then_for_the_delay() -> None:
    assembler = LineAssembler("stdout")
    out: list[Line] = []
    assembler.feed("Loading", 0.0, out)
    assembler.flush_partial(0.05, 0.1, out)
    assert out == []
    assembler.flush_partial(0.2, 0.1, out)
    assert out == [line("stdout", "Loading", "")]
    assembler.feed(" done\n", 0.3, out)
    assert out[-1] == line("stdout", " done")  # continues the partial line


def test_progress_updates_with_carriage_return() -> None:
    # tqdm writes "\r" + bar for each update and "\n" when it closes.
    assert feed("\r 10%", "\r 50%", "\r100%", "\n") == [
        line("stdout", " 10%", "\r"), line("stdout", " 50%", "\r"), line("stdout", "100%")]


def test_a_carriage_return_inside_a_finished_line_still_ends_a_segment() -> None:
    # One write holding both an update and the newline, as tqdm's last one may be.
    assert feed(" 50%\r100%\n") == [line("stdout", " 50%", "\r"), line("stdout", "100%")]


def test_carriage_returns_before_a_newline_end_the_line_as_on_a_terminal() -> None:
    assert feed("one\r\r\n") == feed("one\r\r", "\n") == [line("stdout", "one")]


def test_crlf_is_a_newline_even_when_split_across_writes() -> None:
    assert feed("one\r\ntwo\r", "\nthree\n") == [
        line("stdout", "one"), line("stdout", "two"), line("stdout", "three")]


def test_a_long_line_is_cut_with_a_marker_and_the_rest_dropped() -> None:
    lines = feed("x" * 250, "y" * 250, "z\nnext\n", max_chars=100)
    assert len(lines) == 2
    assert lines[0][1].startswith("x" * 100)
    assert "line cut at 100 characters" in lines[0][1]
    assert lines[1] == line("stdout", "next")


def test_a_long_line_without_newline_is_cut_without_holding_it() -> None:
    assembler = LineAssembler("stdout", 1000)
    out: list[Line] = []
    for _ in range(1000):  # 10 MB, never a newline
        assembler.feed("a" * 10_000, 0.0, out)
    assert len(out) == 1 and len(assembler.pending) == 0


def test_unencodable_text_is_replaced_not_lost() -> None:
    assert feed("bad \udcff surrogate\n") == [line("stdout", "bad ? surrogate")]


def drained(*writes: str, max_chars: int = 100) -> list[Line]:
    """What the capture makes of the same writes, in one drain (its bulk paths included)."""
    capture = RunCapture("r", lambda: None, max_chars)
    for write in writes:
        capture.write_stdout(write)
    return capture.drain(1.0, 0.1) + capture.drain(2.0, 0.1)


def test_print_in_a_loop_is_assembled_in_bulk_with_the_same_result() -> None:
    prints = ["one", "\n", "", "\n", "x" * 150, "\n", "three", "\n"]
    assert drained(*prints) == feed(*prints) == [
        line("stdout", "one"), line("stdout", ""),
        line("stdout", "x" * 100 + " [flask-realtime: line cut at 100 characters]"),
        line("stdout", "three")]


# Texts a job prints: ordinary ones, and the ones the bulk path must hand back. (Not
# over-long ones: where such a line is cut depends on where the writes split it.)
_printed = st.one_of(
    st.sampled_from(["", "\n", "\r", "\r\n", "a\rb", "\r\r\n", "tail", "\udcff"]),
    st.text(alphabet="ab\r\n\t é", max_size=8))


@given(st.lists(st.tuples(_printed, st.sampled_from(["\n", "", "\r"])), max_size=30))
def test_the_capture_makes_the_same_lines_as_one_assembler_fed_write_by_write(
        prints: list[tuple[str, str]]) -> None:
    writes = [part for text, end in prints for part in (text, end)]
    assert drained(*writes) == feed(*writes)


# -- take_fitting: how every store's read_output fills a slice within its limits ---------

def fitted(lines: list[Line], total: int, max_lines: int, max_chars: int, *, start: int = 0,
           out: list[Line] | None = None, sizes: bool = False) -> tuple[list[Line], int, bool]:
    out = list(out or [])
    running = [0]
    for text in (t for _, t, _ in lines):
        running.append(running[-1] + len(text))
    total, cut = take_fitting(out, lines, total, max_lines, max_chars, start=start,
                              sizes=running if sizes else None)
    return out, total, cut


def texts(*sizes: int) -> list[Line]:
    return [line("stdout", "x" * n) for n in sizes]


def test_a_slice_takes_lines_until_the_line_limit() -> None:
    assert fitted(texts(1, 1, 1, 1), 0, 3, 100) == (texts(1, 1, 1), 3, True)


def test_a_slice_takes_lines_until_the_character_limit_counting_what_it_holds() -> None:
    assert fitted(texts(4, 4, 4), 0, 10, 9) == (texts(4, 4), 8, True)
    assert fitted(texts(4, 4, 4), 5, 10, 9, out=texts(5)) == (texts(5, 4), 9, True)


def test_an_empty_slice_always_takes_one_line_however_long() -> None:
    assert fitted(texts(50, 1), 0, 10, 9) == (texts(50), 50, True)
    assert fitted(texts(50), 0, 10, 9, out=texts(1)) == (texts(1), 0, True)


def test_a_slice_can_start_inside_the_lines_and_take_all_the_rest() -> None:
    assert fitted(texts(1, 2, 3), 0, 10, 100, start=1) == (texts(2, 3), 5, False)


def _reference(lines: list[Line], out: list[Line], total: int, max_lines: int,
               max_chars: int, start: int) -> tuple[list[Line], int, bool]:
    """The loop the stores had before take_fitting (one step per line)."""
    out = list(out)
    for item in lines[start:]:
        if len(out) >= max_lines or (total + len(item[1]) > max_chars and out):
            return out, total, True
        out.append(item)
        total += len(item[1])
    return out, total, False


@given(st.lists(st.integers(0, 20), max_size=30), st.integers(0, 3), st.integers(0, 40),
       st.integers(1, 40), st.data())
def test_a_slice_is_the_same_with_or_without_running_sizes_and_as_one_step_per_line(
        sizes: list[int], held: int, extra: int, max_lines: int, data: st.DataObject) -> None:
    lines, out = texts(*sizes), texts(*[3] * held)
    start = data.draw(st.integers(0, len(lines)))
    total = 3 * held + extra
    expected = _reference(lines, out, total, max_lines, 30, start)
    assert fitted(lines, total, max_lines, 30, start=start, out=out) == expected
    assert fitted(lines, total, max_lines, 30, start=start, out=out, sizes=True) == expected
