"""Which Postgres failures come back however often the same URL is tried, and which pass.

Permanent: the credentials are refused, the role or the database does not exist, the role may
not connect or lacks a right the journal needs, the schema is newer than this version
(`SchemaTooNewError`). Nothing but the operator fixes these: a worker retrying them every few
seconds forever only hides them. Everything else passes or may pass: connection refused (the
server is not up yet), "the database system is starting up", too many clients, a dropped
connection. Unknown means retried, as before.

A failure during a session carries its SQLSTATE; a refused connection does not (libpq keeps
the server's code to itself, psycopg#1188), so its message is read: the server's English
words. A server that answers in another language is retried, as before.
"""

from __future__ import annotations

import re

import psycopg

from ._pg_schema import SchemaTooNewError

#: SQLSTATE classes and codes that no retry fixes: invalid authorization (28000: no such role,
#: not allowed to log in; 28P01: wrong password), no such database (3D000), no right (42501).
PERMANENT_SQLSTATES = ("28", "3D", "42501")
#: How the server (and libpq) word those same refusals when the connection is refused.
_PERMANENT_REFUSAL = re.compile(
    r"authentication failed for user"  # password, scram, md5, ident, peer, ldap, cert...
    r'|role "[^"]*" does not exist'
    r'|database "[^"]*" does not exist'
    r'|role "[^"]*" is not permitted to log in'
    r"|permission denied for database"
    r"|no pg_hba\.conf entry for"
    r"|pg_hba\.conf rejects connection"
    r"|no password supplied"
)


def permanent_failure(error: BaseException) -> bool:
    """Whether `error` will recur on every retry with the same URL (see the module)."""
    if isinstance(error, SchemaTooNewError):
        return True
    if not isinstance(error, psycopg.Error):
        return False
    if error.sqlstate is not None:
        return error.sqlstate.startswith(PERMANENT_SQLSTATES)
    return _PERMANENT_REFUSAL.search(str(error)) is not None
