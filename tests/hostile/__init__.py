"""Acceptance tests for a broken or hostile source (issue 10): real `datasync` processes against
a small test-only server that speaks the DataSync protocol but answers with crafted data.

- `stream.py`: the entries a server serves (newest first, ids, mixed timestamps, raw JSON text
  for records Python could not write), paging, cursors and the envelope.
- `service.py`: the protocol as the documented service answers it, one overridable method per
  endpoint and per page; every request is recorded with its headers.
- `server.py`: the socket layer (ThreadingHTTPServer, keep-alive, bodies sent whole or trickled).
- `cli.py`: runs `datasync` as a child bounded in time and in requests, measures its peak RSS,
  and the checks most tests share (exit 0, no crash, the summary adds up).
- `test_*.py`: one file per item of the issue; each test builds its hostile `Service`.
"""
