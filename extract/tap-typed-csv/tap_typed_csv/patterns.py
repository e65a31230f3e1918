"""Regular expressions of field text that a declared SQL type accepts.

Each pattern accepts exactly the text that the type's converter accepts *and* that
is already in its output form (see :mod:`tap_typed_csv.batch`), range included: the
batch mode's fast path matches whole blocks of lines against them, so the range and
calendar checks cost no Python per row. Anything a pattern refuses still gets the
exact, per-field check, which then either accepts it or names the line.
"""

from __future__ import annotations

# Quoting: a field that is not quoted in output never starts or ends with white
# space and holds no delimiter, quote, line break, backslash or NUL (PostgreSQL's
# text cannot hold NUL at all).
_FIRST_OR_LAST = r'[^\s,"\\\x00]'
_INNER = r'[^,"\r\n\\\x00]'

# A calendar date: month lengths and leap years spelt out, years 0001-9999.
_MONTH_DAY = (
    r"(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    r"|02-(?:0[1-9]|1[0-9]|2[0-8])"
)
_LEAP_YEAR = r"[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00"
DATE = rf"(?!0000)(?:[0-9]{{4}}-(?:{_MONTH_DAY})|(?:{_LEAP_YEAR})-02-29)"
# Hours 00-23, minutes, optional seconds and fraction (PostgreSQL rounds past 6 digits).
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]+)?)?"
# PostgreSQL refuses a displacement of 16 hours or more.
_OFFSET = r"(?:Z|[+-](?:0[0-9]|1[0-5])(?::?[0-5][0-9])?)"
TIMESTAMP = rf"{DATE}(?:[ T]{_TIME})?"
TIMESTAMPTZ = rf"{DATE}[ T]{_TIME}{_OFFSET}"
BOOLEAN = "true|false"


def text(max_length: int | None = None) -> str:
    """Unquoted text of 1 to ``max_length`` characters (any length when None)."""
    if max_length == 1:
        return _FIRST_OR_LAST
    inner = "*" if max_length is None else f"{{0,{max_length - 2}}}"
    return f"{_FIRST_OR_LAST}(?:{_INNER}{inner}{_FIRST_OR_LAST})?"


def _up_to(bound: int) -> str:
    """The numbers 1..``bound`` without leading zeros, digit by digit (no arithmetic in a regex)."""
    digits = str(bound)
    width = len(digits)
    # Possessive: a shorter run of digits never helps, the field goes on with a digit.
    branches = [f"[1-9][0-9]{{0,{width - 2}}}+"] if width > 1 else []
    for index, digit in enumerate(digits):
        lowest = 1 if index == 0 else 0
        if int(digit) > lowest:
            branches.append(f"{digits[:index]}[{lowest}-{int(digit) - 1}][0-9]{{{width - index - 1}}}")
    branches.append(digits)
    return "|".join(branches)


def integer(low: int, high: int) -> str:
    """Integers from ``low`` (negative) to ``high`` in canonical form: no sign on 0, no leading zeros."""
    return f"0|(?:{_up_to(high)})|-(?:{_up_to(-low)})"


def decimal(integer_digits: int, fraction_digits: int | None) -> str:
    """Plain decimals with at most ``integer_digits`` before the point and ``fraction_digits`` after it.

    Only the form ``str(Decimal)`` gives back: no ``+``, no exponent, no leading zeros,
    no ``-0`` and nothing below 1e-6 (which ``str`` writes in scientific form).
    ``fraction_digits`` None: any number of them.
    """
    if fraction_digits == 0:
        fraction, small = "", ""
    else:
        count = "+" if fraction_digits is None else f"{{1,{fraction_digits}}}"
        fraction = rf"(?:\.[0-9]{count})?"
        small = rf"|-?0\.(?!0{{6}})[0-9]{count}"
    whole = f"|-?[1-9][0-9]{{0,{integer_digits - 1}}}+{fraction}" if integer_digits > 0 else ""
    return f"0{whole}{small}"
