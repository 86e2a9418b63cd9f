"""Which encoding an uploaded CSV file is in, and decoding that marks bytes that are not text.

The rules are docs/csv-import.md, "Encodings and delimiters". A byte order mark, or the zero
bytes of UTF-16 and UTF-32 without one, name the encoding from the file's start. Otherwise
the upload checks feed the whole file, decoded as UTF-8, through a LineCounter, and
choose_encoding decides from its counts: UTF-8, or the 8-bit code page that reads the file's
words best.
"""

from __future__ import annotations

import codecs
import re
import sys
import unicodedata
from dataclasses import dataclass, field

import charset_normalizer
from charset_normalizer.md import mess_ratio

# Decoding error handler of the upload checks and the reader (registered at the end of this
# module): bytes that are not text become lone surrogates, which UNDECODABLE finds.
MARK_UNDECODABLE = "jobsite-mark-undecodable"
UNDECODABLE = re.compile("[\udc00-\udcff]")
# A file is UTF-8 when at most 1 in UTF8_SHARE of its non-ASCII lines is not (see
# choose_encoding), and not UTF-8 when at most 1 in UTF8_SHARE of them is.
UTF8_SHARE = 10
WESTERN_ENCODINGS = ("cp1252", "mac_roman")
ENCODING_LABELS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16",
    "utf-16-be": "UTF-16",
    "utf-32": "UTF-32",
    "utf-32-le": "UTF-32",
    "utf-32-be": "UTF-32",
    "cp1252": "Windows-1252",
    "mac-roman": "Mac Roman",
    "latin-1": "Latin-1",
    "iso8859-1": "Latin-1",
}
# Raw bytes of undecodable lines kept for telling code pages apart (see LineCounter).
GUESS_SAMPLE_SIZE = 64 * 1024


class MixedEncodings(Exception):
    """UTF-8 mixed with another encoding; str(exc) is the message for the user."""


def encoding_label(encoding: str) -> str:
    """How an encoding is named to people: "Windows-1252", "UTF-16", "Mac Roman"."""
    name = codecs.lookup(encoding).name
    if name in ENCODING_LABELS:
        return ENCODING_LABELS[name]
    if re.fullmatch(r"cp125\d", name):
        return f"Windows-{name[2:]}"
    return name.upper()


def bom_encoding(head: bytes) -> str | None:
    """The encoding a byte order mark at the start of the file names, if there is one."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    # The UTF-32 marks first: the little-endian one begins with the UTF-16 one.
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def zero_byte_encoding(head: bytes) -> str | None:
    """UTF-16 or UTF-32 without a byte order mark, told by where its zero bytes are.

    The header is mostly ASCII, so in UTF-16 little-endian every second byte is zero (the odd
    ones), in big-endian the even ones; in UTF-32 three of every four.
    """
    size = min(len(head), 4096)
    sample = head[: size - size % 4]
    if len(sample) < 4:
        return None
    quarter = len(sample) // 4
    mostly = [sample[position::4].count(0) >= quarter * 0.6 for position in range(4)]
    rarely = [sample[position::4].count(0) <= quarter * 0.05 for position in range(4)]
    patterns = {
        "utf-16-le": (rarely[0], mostly[1], rarely[2], mostly[3]),
        "utf-16-be": (mostly[0], rarely[1], mostly[2], rarely[3]),
        "utf-32-le": (rarely[0], mostly[1], mostly[2], mostly[3]),
        "utf-32-be": (mostly[0], mostly[1], mostly[2], rarely[3]),
    }
    for encoding, pattern in patterns.items():
        if all(pattern):
            return encoding
    return None


@dataclass
class LineCounts:
    """What a LineCounter found in the lines of a file."""

    line_breaks: int = 0
    ends_with_newline: bool = False
    undecodable_lines: int = 0  # lines with bytes that are not text in the encoding
    first_undecodable: list[int] = field(default_factory=list)  # their line numbers (a few)
    non_ascii_lines: int = 0  # lines with non-ASCII text that decodes
    sample: bytearray = field(default_factory=bytearray)  # raw bytes of undecodable lines


class LineCounter:
    """Follows decoded text chunk by chunk and counts its lines (CR, LF or CRLF endings) into
    `counts`: all of them, those with undecodable bytes, those with other non-ASCII text. With
    `keep_sample` it keeps the raw bytes of undecodable lines for telling code pages apart."""

    def __init__(self, counts: LineCounts, keep_sample: bool):
        self.counts = counts
        self.keep_sample = keep_sample
        self.line = 1
        self.undecodable = False
        self.non_ascii = False
        self.pending_cr = ""

    def feed(self, text: str, final: bool = False) -> None:
        text = self.pending_cr + text
        self.pending_cr = ""
        if text.endswith("\r") and not final:  # its LF may start the next chunk
            text, self.pending_cr = text[:-1], "\r"
        if not text:
            return
        counts = self.counts
        counts.ends_with_newline = text[-1] in "\r\n"
        if text.isascii():
            breaks = text.count("\n") + text.count("\r") - text.count("\r\n")
            if breaks:
                self._end_line()
                self.line += breaks - 1
                counts.line_breaks += breaks - 1
            return
        # Sorted with list operations rather than a loop: a file has millions of lines.
        parts = _split_lines(text)
        plain = list(map(str.isascii, parts))
        if _has_marks(text):
            bad = [
                not ascii and bool(UNDECODABLE.search(part))
                for part, ascii in zip(parts, plain, strict=True)
            ]
        else:
            bad = [False] * len(parts)
        # The first part continues the current line; the last may go on in the next chunk.
        self._note(parts[0], plain[0], bad[0])
        if len(parts) == 1:
            return
        self._end_line()
        middle = len(parts) - 2
        bad_lines = bad[1:-1].count(True)
        counts.undecodable_lines += bad_lines
        counts.non_ascii_lines += plain[1:-1].count(False) - bad_lines
        index = 0
        while bad_lines and (len(counts.first_undecodable) < 3 or self._wants_sample()):
            try:
                index = bad.index(True, index + 1, len(parts) - 1)
            except ValueError:
                break
            if len(counts.first_undecodable) < 3:
                counts.first_undecodable.append(self.line + index - 1)
            self._sample(parts[index])
        self.line += middle
        counts.line_breaks += middle
        self._note(parts[-1], plain[-1], bad[-1])

    def _note(self, part: str, plain: bool, bad: bool) -> None:
        if bad:
            self.undecodable = True
            self._sample(part)
        elif not plain:
            self.non_ascii = True

    def _wants_sample(self) -> bool:
        return self.keep_sample and len(self.counts.sample) < GUESS_SAMPLE_SIZE

    def _sample(self, part: str) -> None:
        if self._wants_sample():
            self.counts.sample += part.encode("utf-8", "surrogateescape") + b"\n"

    def _end_line(self) -> None:
        counts = self.counts
        counts.line_breaks += 1
        if self.undecodable:
            counts.undecodable_lines += 1
            if len(counts.first_undecodable) < 3:
                counts.first_undecodable.append(self.line)
        elif self.non_ascii:
            counts.non_ascii_lines += 1
        self.line += 1
        self.undecodable = self.non_ascii = False

    def close(self) -> None:
        self.feed("", final=True)
        if self.undecodable or self.non_ascii:  # the last line, without a line break
            self._end_line()
            self.counts.line_breaks -= 1


def _split_lines(text: str) -> list[str]:
    """The text cut at its line breaks (LF, CRLF, CR), as re.split(r"\r\n|\r|\n") but faster."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _has_marks(text: str) -> bool:
    """Whether the text holds marks of undecodable bytes (lone surrogates; decoded text never
    does), as UNDECODABLE.search but faster."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def choose_encoding(counts: LineCounts) -> tuple[str, list[str]]:
    """UTF-8 unless the file as a whole is not (docs/csv-import.md, "Encodings and delimiters").

    Only lines with non-ASCII text tell encodings apart. When at most one in ten of them is
    not valid UTF-8, the file is UTF-8 and those rows become parse errors. When at most one in
    ten is valid UTF-8 (8-bit text forms a valid UTF-8 sequence now and then by chance), the
    file is 8-bit text in another encoding. Anything in between is a mixture no single
    encoding reads right, and is refused.
    """
    bad, good = counts.undecodable_lines, counts.non_ascii_lines
    if bad == 0:
        return "utf-8", []
    lines = "line" if bad == 1 else "lines"
    if bad * UTF8_SHARE <= bad + good:
        if bad == 1:
            return "utf-8", [
                "1 line of the file is not valid UTF-8; its row is listed as an error."
            ]
        return "utf-8", [
            f"{bad} lines of the file are not valid UTF-8; their rows are listed as errors."
        ]
    if good * UTF8_SHARE <= bad + good:
        encoding = _guess_8bit_encoding(bytes(counts.sample))
        return encoding, [f"Read as {encoding_label(encoding)}: the file is not UTF-8."]
    first = ", ".join(str(line) for line in counts.first_undecodable)
    raise MixedEncodings(
        f"The file mixes UTF-8 with another encoding: {bad} {lines} (the first at line {first}) "
        f"{'is' if bad == 1 else 'are'} not valid UTF-8, {good} other lines with accents or "
        "symbols are. Save the file again as CSV UTF-8 and upload it."
    )


def _guess_8bit_encoding(sample: bytes) -> str:
    """Windows-1252 or Mac Roman, whichever reads the sample's words better (Windows-1252 on a
    tie); the detector's guess instead when the text is of another script it reads far better.
    """
    western = max(WESTERN_ENCODINGS, key=lambda encoding: _word_fit(sample, encoding))
    if _word_fit(sample, western) > 0:
        return western
    best = charset_normalizer.from_bytes(sample).best()
    if best is None:
        return western
    try:
        guess = codecs.lookup(best.encoding).name
        as_western = sample.decode(western, MARK_UNDECODABLE)
    except LookupError:
        return western
    # UTF-16 and UTF-32 were ruled out by their zero bytes; a guess of them here is wrong.
    if not guess.startswith("utf") and mess_ratio(str(best)) + 0.2 < mess_ratio(as_western):
        return guess
    return western


def _word_fit(sample: bytes, encoding: str) -> int:
    """How well the non-ASCII characters of the decoded sample sit inside words.

    +1 for a letter between two ASCII letters; -1 for an upper-case letter right after a
    lower-case one, a symbol (not punctuation) between two letters, a character text hardly
    ever holds, or an undecodable byte.
    A wrong Western code page turns accented letters into symbols and capitals.
    """
    text = sample.decode(encoding, MARK_UNDECODABLE)
    score = 0
    for index, char in enumerate(text):
        if char.isascii():
            continue
        if UNDECODABLE.match(char) or _unlikely_in_text(char):
            score -= 1
            continue
        before = text[index - 1] if index else " "
        after = text[index + 1] if index + 1 < len(text) else " "
        letter_before = before.isascii() and before.isalpha()
        letter_after = after.isascii() and after.isalpha()
        if char.isalpha():
            if char.isupper() and before.isascii() and before.islower():
                score -= 1
            elif letter_before and letter_after:
                score += 1
        elif letter_before and letter_after and not unicodedata.category(char).startswith("P"):
            score -= 1
    return score


def _unlikely_in_text(char: str) -> bool:
    """Characters text hardly ever holds but a wrong code page often makes: spacing accents
    (¯ ¸ ˆ ˜), math symbols, private use (Apple's logo), ligatures, the dotless i."""
    category = unicodedata.category(char)
    if category == "Sm":
        return char not in "±×÷"
    return category in ("Sk", "Co", "Cc") or char in "ﬁﬂı◊"


def decode_head(head: bytes, encoding: str) -> str:
    """The start of the file as text, bytes that are not text in `encoding` marked."""
    decoder = codecs.getincrementaldecoder(encoding)(errors=MARK_UNDECODABLE)
    return decoder.decode(head)


def undecodable_errors(encoding: str) -> str:
    """The decoding error handler for `encoding` that marks bytes that are not text.

    Python's own surrogateescape marks them as MARK_UNDECODABLE does and, written in C, keeps
    a file with a million bad bytes fast; it can mark bytes from 0x80 up only, which are all
    the bytes UTF-8 and single-byte code pages cannot decode. Other encodings get the mark.
    """
    info = codecs.lookup(encoding)
    module = sys.modules.get(info.incrementaldecoder.__module__ or "")
    if info.name in ("utf-8", "utf-8-sig") or hasattr(module, "decoding_table"):
        return "surrogateescape"
    return MARK_UNDECODABLE


def _mark_undecodable(error: UnicodeError) -> tuple[str, int]:
    """Decoding error handler: each byte that is not text becomes a lone surrogate (U+DC00 plus
    the byte), which no valid text contains, so the reader can tell which rows to refuse."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    marks = "".join(chr(0xDC00 + byte) for byte in error.object[error.start : error.end])
    return marks, error.end


codecs.register_error(MARK_UNDECODABLE, _mark_undecodable)
