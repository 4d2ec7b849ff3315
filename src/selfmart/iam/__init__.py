"""Identity and access: users, roles, permissions, sessions, login log."""
