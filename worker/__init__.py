"""jobwire's worker: runs queued jobs (``jobwire worker dotted.path.Settings``)."""
