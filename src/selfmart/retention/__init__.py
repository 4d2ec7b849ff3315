"""Log retention: how long each log is kept, and the nightly job that prunes the older rows."""
