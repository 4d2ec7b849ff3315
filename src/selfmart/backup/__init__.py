"""Backups that restore: the database and uploaded files in one verified archive.

See docs/operations.md."""
