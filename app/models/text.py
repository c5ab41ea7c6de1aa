"""Text a client writes freely (a note, a reason, a comment, a name): the one
rule for what characters it may hold, used by every such field of every
request body.

PostgreSQL cannot store NUL in `text` or `jsonb` at all: a note with one
was a 500 from the database driver. The other C0 control characters can be
stored, but have no place in a note or a name and only serve to garble a
dispatcher's screen or a log line, so they are refused too; tab, line feed
and carriage return are ordinary text. Lone surrogates (a JSON `\\ud800`),
which cannot be encoded to UTF-8, are refused by pydantic itself once a
string has any constraint. A refusal is 422 `validation_error` naming the
field, like any other invalid value, and the pattern is in the OpenAPI
document, so clients can check before they send.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$"

Text = Annotated[str, StringConstraints(pattern=TEXT_PATTERN)]
