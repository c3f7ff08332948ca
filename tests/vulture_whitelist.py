# ruff: noqa
"""Names vulture cannot see used: `vulture datasync_cli tests/vulture_whitelist.py`.

Framework hooks called by name, and the few parts of the package's API that only the tests and
the benchmarks call (the simulator's ground truth and counters, the fake clock, state the
storage tests inspect). Not imported by anything; vulture only reads it.
"""

root  # Typer calls the root callback
_.__signature__  # read by Typer (cli/funnel.py)
_.__annotations__
frame  # a signal handler's argument
exc_type  # a context manager's __exit__ arguments
tb
protocol_version  # read by http.server
_.do_GET
_.do_POST
_.do_PUT
_.do_DELETE
_.do_PATCH
_.log_message
daemon_threads  # read by socketserver
block_on_close
request_queue_size
allow_reuse_address
_.itersize  # read by psycopg2's named cursors
_.pool_classes_by_scheme  # read by urllib3's pool manager
# Used by the tests and the benchmarks.
FakeClock
mock_process
_.feed_throttled
_.tokens_issued
_.connections
served_id
valid_count
valid_checksum
bad_count
served_valid_count
served_valid_checksum
_.iter_valid_ids
_.awkward_ids
_.duplicate_ids
_.is_running
_.save
_.held
_.reconnects
# Help hooks Click calls by name (cli/helpformat.py), and the parameter classes it swaps in.
_._usage_display_name
_.format_options
_.format_epilog
_.__class__
# Figures `check --json` prints through dataclasses.asdict().
supplied_token_refused
bytes_per_event
last_run_total
# Envelope fields msgspec fills by name (source/textpage.py), read back through getattr.
nextCursor
hasMore
