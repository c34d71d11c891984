"""errand's daemon: one per user and data folder; it owns the engine and serves every
front end (editor windows, the CLI) over a Unix socket."""
